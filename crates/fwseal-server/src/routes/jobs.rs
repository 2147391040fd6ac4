//! `/v1/jobs…`: M-of-N approvals.

use super::{
    blocking, download, identify, json_body, problem, query, read_body, reply, Credentials, Shared,
};
use crate::service::ServiceError;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fwseal_api::{ApproveBody, JobList, RejectBody};
use fwseal_store::Action;
use serde::Deserialize;

/// Largest approve / reject body (a digest, or a reason of a few lines).
pub(super) const DECISION_BODY_LIMIT: u64 = 4 << 10;

/// Filters of `GET /v1/jobs`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct JobsQuery {
    product: Option<String>,
    /// `pending` (default) or `all`.
    state: Option<String>,
}

/// `GET /v1/jobs`.
pub(super) async fn list(
    State(st): State<Shared>,
    q: Result<Query<JobsQuery>, QueryRejection>,
    creds: Credentials,
) -> Response {
    let product = q.as_ref().ok().and_then(|q| q.product.clone());
    let who = match identify(&st, creds, Action::List, product.as_deref()).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let q = match query(&st, &who, Action::List, None, q) {
        Ok(q) => q,
        Err(e) => return problem(&e),
    };
    let all = match q.state.as_deref() {
        None | Some("pending") => false,
        Some("all") => true,
        Some(other) => {
            let e =
                ServiceError::BadRequest(format!("state must be pending or all, not {other:?}"));
            st.refused(&who, Action::List, q.product.as_deref(), &e);
            return problem(&e);
        }
    };
    reply(
        blocking(move || st.list_jobs(&who, q.product.as_deref(), all))
            .await
            .map(|jobs| JobList { jobs }),
    )
}

/// `GET /v1/jobs/{id}`.
pub(super) async fn show(
    State(st): State<Shared>,
    Path(id): Path<String>,
    creds: Credentials,
) -> Response {
    let who = match identify(&st, creds, Action::List, None).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    reply(blocking(move || st.show_job(&who, &id)).await)
}

/// `GET /v1/jobs/{id}/input`: the unsigned image.
pub(super) async fn input(
    State(st): State<Shared>,
    Path(id): Path<String>,
    creds: Credentials,
) -> Response {
    let who = match identify(&st, creds, Action::Fetch, None).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let name = format!("{id}.input");
    match blocking(move || st.job_input(&who, &id)).await {
        Ok(blob) => download(blob, "application/octet-stream", &name),
        Err(e) => problem(&e),
    }
}

/// `POST /v1/jobs/{id}/approve` with `{"digest": "<hex>"}` (read after authentication, at most
/// [`DECISION_BODY_LIMIT`] bytes).
pub(super) async fn approve(
    State(st): State<Shared>,
    Path(id): Path<String>,
    creds: Credentials,
    body: Body,
) -> Response {
    let who = match identify(&st, creds, Action::Approve, None).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let body = match read_body(&st, &who, Action::Approve, None, body, DECISION_BODY_LIMIT).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // On its own task: a client that disconnects must not abandon a job in `signing`.
    let work = tokio::task::spawn_blocking(move || {
        let b: ApproveBody = json_body(&body, "approve")
            .inspect_err(|e| st.refused(&who, Action::Approve, None, e))?;
        st.approve(&who, &id, &b.digest)
    });
    match work
        .await
        .unwrap_or_else(|e| Err(ServiceError::internal(e)))
    {
        Ok(j) => Json(j).into_response(),
        Err(e) => problem(&e),
    }
}

/// `POST /v1/jobs/{id}/reject` with `{"reason": "..."}`.
pub(super) async fn reject(
    State(st): State<Shared>,
    Path(id): Path<String>,
    creds: Credentials,
    body: Body,
) -> Response {
    let who = match identify(&st, creds, Action::Reject, None).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let body = match read_body(&st, &who, Action::Reject, None, body, DECISION_BODY_LIMIT).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let r = blocking(move || {
        let b: RejectBody = json_body(&body, "reject")
            .inspect_err(|e| st.refused(&who, Action::Reject, None, e))?;
        st.reject(&who, &id, &b.reason)
    });
    reply(r.await)
}
