//! `/healthz`, `/readyz`, `/metrics`, `/v1/openapi.json`.

use super::{blocking, problem, Shared};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

pub(super) async fn readyz(State(st): State<Shared>) -> Response {
    match blocking(move || st.health()).await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => problem(&e),
    }
}

pub(super) async fn metrics(State(st): State<Shared>) -> Response {
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
