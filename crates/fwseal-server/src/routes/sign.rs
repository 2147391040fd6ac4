//! `sign`, `sign-batch`, `sign-params`, `sign-digest`.

use super::{blocking, identify, is_length_limit, problem, spool, Credentials, Shared};
use crate::service::{now_rfc3339, ServiceError};
use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fwseal_api::{BatchBody, BatchItem, BatchResponse, SignOutcome, SignQuery};
use fwseal_store::Action;
use serde::Deserialize;

/// Most images in one batch.
const MAX_PARTS: usize = 256;

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

fn body_error(e: axum::Error, limit: u64) -> ServiceError {
    if is_length_limit(&e) {
        ServiceError::TooLarge { limit }
    } else {
        ServiceError::BadRequest(format!("reading the upload: {e}"))
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
    Query(q): Query<SignQuery>,
    creds: Credentials,
    body: Body,
) -> Response {
    let started = now_rfc3339();
    let who = match identify(&st, creds, Action::Sign, Some(&product)).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (s, w, q2) = (st.clone(), who.clone(), q.clone());
    let ticket = match blocking(move || s.begin_sign(&w, &product, &q2)).await {
        Ok(t) => t,
        Err(e) => return problem(&e),
    };
    let limit = st.config().max_upload_bytes;
    let upload = match spool(&st, body.into_data_stream(), |e| body_error(e, limit)).await {
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
    Query(q): Query<SignQuery>,
    creds: Credentials,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let who = match identify(&st, creds, Action::Sign, Some(&product)).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (s, w, q2, p) = (st.clone(), who.clone(), q.clone(), product.clone());
    let ticket = match blocking(move || s.begin_sign(&w, &p, &q2)).await {
        Ok(t) => t,
        Err(e) => return problem(&e),
    };
    let refuse = |e: ServiceError| {
        st.upload_refused(&who, &ticket, &ServiceError::BadRequest(format!("batch: {e}")));
        e
    };
    let mut multipart = match multipart {
        Ok(m) => m,
        Err(e) => {
            let e = refuse(ServiceError::BadRequest(format!(
                "expected multipart/form-data: {e}"
            )));
            return problem(&e);
        }
    };
    let limit = st.config().max_upload_bytes;
    let mut results: Vec<BatchItem> = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                // The rest of the body is unreadable; what was signed so far stays signed
                // (and audited), and the answer says where the batch stopped.
                let e = refuse(ServiceError::BadRequest(format!("part {}: {e}", results.len())));
                results.push(batch_item(None, Err(e)));
                break;
            }
        };
        if results.len() == MAX_PARTS {
            let e = refuse(ServiceError::BadRequest(format!(
                "a batch holds at most {MAX_PARTS} images"
            )));
            results.push(batch_item(None, Err(e)));
            break;
        }
        let name = field.file_name().map(str::to_string);
        let mut q = q.clone();
        if name.is_some() {
            q.name = name.clone();
        }
        let upload = spool(&st, field, |e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ServiceError::TooLarge { limit }
            } else {
                ServiceError::BadRequest(format!("reading the upload: {e}"))
            }
        })
        .await;
        let outcome = match upload {
            Ok(upload) => {
                let (s, w) = (st.clone(), who.clone());
                let t = ticket.clone();
                blocking(move || s.sign_upload(&w, &t, q, upload, now_rfc3339())).await
            }
            Err(e) => {
                st.upload_refused(&who, &ticket, &e);
                Err(e)
            }
        };
        results.push(batch_item(name, outcome));
    }
    if results.is_empty() {
        return problem(&refuse(ServiceError::BadRequest(
            "the batch holds no image".into(),
        )));
    }
    Json(BatchResponse { product, results }).into_response()
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
    Query(q): Query<ParamsQuery>,
    creds: Credentials,
) -> Response {
    let who = match identify(&st, creds, Action::Sign, Some(&product)).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match blocking(move || st.sign_params(&who, &product, &q.format, q.version.as_deref())).await {
        Ok(p) => Json(p).into_response(),
        Err(e) => problem(&e),
    }
}

/// `POST /v1/products/{product}/sign-digest`.
pub(super) async fn sign_digest(
    State(st): State<Shared>,
    Path(product): Path<String>,
    creds: Credentials,
    body: Bytes,
) -> Response {
    let who = match identify(&st, creds, Action::Sign, Some(&product)).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match blocking(move || st.sign_digest(&who, &product, &body)).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => problem(&e),
    }
}
