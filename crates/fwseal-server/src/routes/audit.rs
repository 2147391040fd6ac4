//! `GET /v1/audit/export`.

use super::{blocking, identify, problem, Credentials, Shared};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use fwseal_store::Action;

/// The whole audit log as JSON Lines.
pub(super) async fn export(State(st): State<Shared>, creds: Credentials) -> Response {
    let who = match identify(&st, creds, Action::AuditRead, Some("*")).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match blocking(move || st.audit_export(&who)).await {
        Ok(s) => ([(header::CONTENT_TYPE, "application/jsonl")], s).into_response(),
        Err(e) => problem(&e),
    }
}
