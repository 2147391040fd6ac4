//! `POST /v1/tsa` (RFC 3161 over HTTP: `application/timestamp-query` in,
//! `application/timestamp-reply` out) and `GET /v1/tsa/certificate`: the built-in
//! Time-Stamping Authority. `404` without `[tsa_server]`; without an API token only when
//! `anonymous = true`.

use super::{blocking, identify, problem, read_body, Credentials, Shared};
use crate::auth::Identity;
use crate::service::ServiceError;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use fwseal_api::TSA_PRODUCT;
use fwseal_store::Action;

/// Largest `TimeStampReq` read (`fwseal_tsa::MAX_DER`).
const MAX_QUERY: u64 = fwseal_tsa::MAX_DER as u64;

/// The request's identity: a valid token's client, or `anonymous` when the TSA serves
/// unauthenticated callers and none was sent.
async fn who(st: &Shared, creds: Credentials, action: Action) -> Result<Identity, Response> {
    if creds.token.is_none() && st.tsa_anonymous() {
        return Ok(Identity::named("anonymous"));
    }
    identify(st, creds, action, Some(TSA_PRODUCT)).await
}

/// Whether `headers` name `want` as the body's media type (parameters and case ignored).
fn media_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(want))
}

/// `POST /v1/tsa`.
pub(super) async fn timestamp(
    State(st): State<Shared>,
    headers: HeaderMap,
    creds: Credentials,
    body: axum::body::Body,
) -> Response {
    if let Err(e) = st.tsa_server() {
        return problem(&e);
    }
    let source = creds.source.clone();
    let who = match who(&st, creds, Action::Timestamp).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if !media_type_is(&headers, "application/timestamp-query") {
        let e = ServiceError::UnsupportedMediaType(
            "POST /v1/tsa takes an RFC 3161 TimeStampReq as application/timestamp-query".into(),
        );
        st.refused(&who, Action::Timestamp, Some(TSA_PRODUCT), &e);
        return problem(&e);
    }
    let body = match read_body(
        &st,
        &who,
        Action::Timestamp,
        Some(TSA_PRODUCT),
        body,
        MAX_QUERY,
    )
    .await
    {
        Ok(b) => b,
        Err(r) => return r,
    };
    match blocking(move || st.tsa_timestamp(&who, source.as_deref(), &body)).await {
        Ok(der) => ([(header::CONTENT_TYPE, "application/timestamp-reply")], der).into_response(),
        Err(e) => problem(&e),
    }
}

/// `GET /v1/tsa/certificate`.
pub(super) async fn certificate(State(st): State<Shared>, creds: Credentials) -> Response {
    if let Err(e) = st.tsa_server() {
        return problem(&e);
    }
    let who = match who(&st, creds, Action::KeysRead).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match blocking(move || st.tsa_certificate(&who)).await {
        Ok(pem) => (
            [(header::CONTENT_TYPE, "application/pem-certificate-chain")],
            pem,
        )
            .into_response(),
        Err(e) => problem(&e),
    }
}
