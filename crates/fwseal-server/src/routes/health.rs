//! `/healthz`, `/readyz`, `/metrics`, `/v1/openapi.json`.

use super::{blocking, identify, problem, Credentials, Shared};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use fwseal_store::Action;

pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

pub(super) async fn readyz(State(st): State<Shared>) -> Response {
    match blocking(move || st.health()).await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => problem(&e),
    }
}

/// `GET /metrics`: needs a client holding the `metrics` (or `admin`) role on `"*"`: the
/// metrics name every product. Refusals are audited (`denied`); scrapes are not.
pub(super) async fn metrics(State(st): State<Shared>, creds: Credentials) -> Response {
    let who = match identify(&st, creds, Action::Denied, None).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (s, w) = (st.clone(), who.clone());
    if let Err(e) = blocking(move || s.may_read_metrics(&w)).await {
        return problem(&e);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
        .into_response()
}

pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::SPEC,
    )
        .into_response()
}
