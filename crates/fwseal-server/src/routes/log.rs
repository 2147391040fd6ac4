//! `GET /v1/log/checkpoint`, `GET /v1/log/inclusion`, `GET /v1/log/consistency` (the
//! transparency log; `GET /v1/artifacts/{id}/bundle` is in `artifacts`).

use super::{blocking, identify, problem, query, reply, Credentials, Shared};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use fwseal_store::Action;
use serde::Deserialize;

/// `?seq=N[&size=M]`.
#[derive(Debug, Deserialize)]
pub(super) struct InclusionQuery {
    seq: u64,
    size: Option<u64>,
}

/// `?old=A&new=B`.
#[derive(Debug, Deserialize)]
pub(super) struct ConsistencyQuery {
    old: u64,
    new: u64,
}

/// The newest signed tree head, as the exact note bytes.
pub(super) async fn checkpoint(State(st): State<Shared>, creds: Credentials) -> Response {
    let who = match identify(&st, creds, Action::AuditRead, None).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match blocking(move || st.log_checkpoint(&who)).await {
        Ok(note) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response(),
        Err(e) => problem(&e),
    }
}

/// An inclusion proof of one record.
pub(super) async fn inclusion(
    State(st): State<Shared>,
    q: Result<Query<InclusionQuery>, QueryRejection>,
    creds: Credentials,
) -> Response {
    let who = match identify(&st, creds, Action::AuditRead, None).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let q = match query(&st, &who, Action::AuditRead, None, q) {
        Ok(q) => q,
        Err(e) => return problem(&e),
    };
    reply(blocking(move || st.log_inclusion(&who, q.seq, q.size)).await)
}

/// A consistency proof between two tree sizes.
pub(super) async fn consistency(
    State(st): State<Shared>,
    q: Result<Query<ConsistencyQuery>, QueryRejection>,
    creds: Credentials,
) -> Response {
    let who = match identify(&st, creds, Action::AuditRead, None).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let q = match query(&st, &who, Action::AuditRead, None, q) {
        Ok(q) => q,
        Err(e) => return problem(&e),
    };
    reply(blocking(move || st.log_consistency(&who, q.old, q.new)).await)
}
