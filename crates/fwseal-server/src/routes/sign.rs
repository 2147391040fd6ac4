//! `sign`, `sign-batch`, `sign-params`, `sign-digest`.

use super::{
    blocking, body_error, identify, problem, query, read_body, reply, spool, Credentials, Shared,
};
use crate::service::{now_rfc3339, ServiceError};
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fwseal_api::{BatchBody, BatchItem, BatchResponse, SignOutcome, SignQuery};
use fwseal_store::Action;
use serde::Deserialize;

/// Most images in one batch.
const MAX_PARTS: usize = 256;

/// Largest `sign-digest` body: 256 items (the most one request holds) of up to 8 KiB each (a
/// carried ML-DSA-87 signature with its message is about 6.3 KiB in base64).
pub(super) const SIGN_DIGEST_BODY_LIMIT: u64 = 2 << 20;

fn outcome_response(o: SignOutcome) -> Response {
    match o {
        SignOutcome::Signed(r) => (StatusCode::CREATED, Json(r)).into_response(),
        SignOutcome::Pending(j) => (
            StatusCode::ACCEPTED,
            [(header::LOCATION, j.links.self_.clone())],
            Json(j),
        )
            .into_response(),
    }
}

/// One part's answer: the status and body it would have had alone.
fn batch_item(name: Option<String>, r: Result<SignOutcome, ServiceError>) -> BatchItem {
    let (status, body) = match r {
        Ok(SignOutcome::Signed(r)) => (StatusCode::CREATED, BatchBody::Signed(r)),
        Ok(SignOutcome::Pending(j)) => (StatusCode::ACCEPTED, BatchBody::Pending(j)),
        Err(e) => {
            let p = crate::problem::Problem::from(&e);
            (p.status(), BatchBody::Problem(p.into()))
        }
    };
    BatchItem {
        name,
        status: status.as_u16(),
        body,
    }
}

/// `POST /v1/products/{product}/sign`: the body is the image.
pub(super) async fn sign(
    State(st): State<Shared>,
    Path(product): Path<String>,
    q: Result<Query<SignQuery>, QueryRejection>,
    creds: Credentials,
    body: Body,
) -> Response {
    let started = now_rfc3339();
    let who = match identify(&st, creds, Action::Sign, Some(&product)).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let q = match query(&st, &who, Action::Sign, Some(&product), q) {
        Ok(q) => q,
        Err(e) => return problem(&e),
    };
    let (s, w, q2) = (st.clone(), who.clone(), q.clone());
    let ticket = match blocking(move || s.begin_sign(&w, &product, &q2)).await {
        Ok(t) => t,
        Err(e) => return problem(&e),
    };
    let limit = st.config().max_upload_bytes;
    let too_large = move || ServiceError::TooLarge { limit };
    let upload = match spool(&st, body.into_data_stream(), |e| body_error(&e, too_large)).await {
        Ok(u) => u,
        Err(e) => {
            st.upload_refused(&who, &ticket, &e);
            return problem(&e);
        }
    };
    let s = st.clone();
    match blocking(move || s.sign_upload(&who, &ticket, q, upload, started)).await {
        Ok(o) => outcome_response(o),
        Err(e) => problem(&e),
    }
}

/// `POST /v1/products/{product}/sign-batch`: several images in one `multipart/form-data`
/// request, one file part per image (its filename the image name). Every part goes through
/// exactly the pipeline of a single `sign`; the answer lists, per part in order, the status it
/// would have had alone and its body.
pub(super) async fn sign_batch(
    State(st): State<Shared>,
    Path(product): Path<String>,
    q: Result<Query<SignQuery>, QueryRejection>,
    creds: Credentials,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let who = match identify(&st, creds, Action::Sign, Some(&product)).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let q = match query(&st, &who, Action::Sign, Some(&product), q) {
        Ok(q) => q,
        Err(e) => return problem(&e),
    };
    let (s, w, q2, p) = (st.clone(), who.clone(), q.clone(), product.clone());
    let ticket = match blocking(move || s.begin_sign(&w, &p, &q2)).await {
        Ok(t) => t,
        Err(e) => return problem(&e),
    };
    let batch = Batch { st, who, ticket };
    let mut multipart = match multipart {
        Ok(m) => m,
        Err(e) => return problem(&batch.refuse(format!("expected multipart/form-data: {e}"))),
    };
    let mut results: Vec<BatchItem> = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            // Not multipart/form-data at all: the request fails as a whole.
            Err(e) if results.is_empty() => {
                return problem(&batch.refuse(format!("unreadable multipart body: {e}")))
            }
            Err(e) => {
                // The rest of the body is unreadable; what was signed so far stays signed
                // (and audited), and the answer says where the batch stopped.
                let e = batch.refuse(format!("part {}: {e}", results.len()));
                results.push(batch_item(None, Err(e)));
                break;
            }
        };
        if results.len() == MAX_PARTS {
            let e = batch.refuse(format!("a batch holds at most {MAX_PARTS} images"));
            results.push(batch_item(None, Err(e)));
            break;
        }
        results.push(batch.sign_part(&q, field).await);
    }
    if results.is_empty() {
        return problem(&batch.refuse("the batch holds no image".into()));
    }
    Json(BatchResponse { product, results }).into_response()
}

/// One authorised batch request.
struct Batch {
    st: Shared,
    who: crate::auth::Identity,
    ticket: crate::service::signing::SignTicket,
}

impl Batch {
    /// A refusal of the batch itself (audited as `batch: …`).
    fn refuse(&self, why: String) -> ServiceError {
        let e = ServiceError::BadRequest(why);
        let audited = ServiceError::BadRequest(format!("batch: {e}"));
        self.st.upload_refused(&self.who, &self.ticket, &audited);
        e
    }

    /// Spool and sign one part, exactly as a single `sign`.
    async fn sign_part(
        &self,
        q: &SignQuery,
        field: axum::extract::multipart::Field<'_>,
    ) -> BatchItem {
        let limit = self.st.config().max_upload_bytes;
        // Only file parts are images: a plain form field (`version=1.2.3`) is refused, never
        // signed as a tiny raw image. Parameters go in the query string.
        let Some(name) = field.file_name().map(str::to_string) else {
            let field_name = field.name().unwrap_or_default();
            let e = ServiceError::BadRequest(format!(
                "multipart field {:?} is not a file part (no filename): only file parts are \
                 images; pass parameters such as version in the query string",
                field_name.chars().take(64).collect::<String>()
            ));
            self.st.upload_refused(&self.who, &self.ticket, &e);
            return batch_item(None, Err(e));
        };
        let mut q = q.clone();
        q.name = Some(name.clone());
        let name = Some(name);
        let too_large = move || ServiceError::TooLarge { limit };
        let upload = spool(&self.st, field, |e| body_error(&e, too_large)).await;
        let outcome = match upload {
            Ok(upload) => {
                let (s, w, t) = (self.st.clone(), self.who.clone(), self.ticket.clone());
                blocking(move || s.sign_upload(&w, &t, q, upload, now_rfc3339())).await
            }
            Err(e) => {
                self.st.upload_refused(&self.who, &self.ticket, &e);
                Err(e)
            }
        };
        batch_item(name, outcome)
    }
}

/// Query of `sign-params`.
#[derive(Debug, Deserialize)]
pub(super) struct ParamsQuery {
    format: String,
    version: Option<String>,
}

/// `GET /v1/products/{product}/sign-params?format=F`.
pub(super) async fn sign_params(
    State(st): State<Shared>,
    Path(product): Path<String>,
    q: Result<Query<ParamsQuery>, QueryRejection>,
    creds: Credentials,
) -> Response {
    let who = match identify(&st, creds, Action::Sign, Some(&product)).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let q = match query(&st, &who, Action::Sign, Some(&product), q) {
        Ok(q) => q,
        Err(e) => return problem(&e),
    };
    reply(blocking(move || st.sign_params(&who, &product, &q.format, q.version.as_deref())).await)
}

/// `POST /v1/products/{product}/sign-digest`: the body is read only once the client is
/// authenticated, and only up to [`SIGN_DIGEST_BODY_LIMIT`].
pub(super) async fn sign_digest(
    State(st): State<Shared>,
    Path(product): Path<String>,
    creds: Credentials,
    body: Body,
) -> Response {
    let who = match identify(&st, creds, Action::Sign, Some(&product)).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let limit = SIGN_DIGEST_BODY_LIMIT;
    let body = match read_body(&st, &who, Action::Sign, Some(&product), body, limit).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    reply(blocking(move || st.sign_digest(&who, &product, &body)).await)
}
