//! `/v1/artifacts/{id}[/{part}]` and `/v1/products/{product}/artifacts`.

use super::{blocking, download, identify, problem, query, reply, Credentials, Shared};
use crate::service::artifacts::ListFilter;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use fwseal_store::Action;
use serde::Deserialize;

/// Filters of the artifact list.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    version: Option<String>,
    digest: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/products/{product}/artifacts`.
pub(super) async fn list(
    State(st): State<Shared>,
    Path(product): Path<String>,
    q: Result<Query<ListQuery>, QueryRejection>,
    creds: Credentials,
) -> Response {
    let who = match identify(&st, creds, Action::List, Some(&product)).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let q = match query(&st, &who, Action::List, Some(&product), q) {
        Ok(q) => q,
        Err(e) => return problem(&e),
    };
    let f = ListFilter {
        version: q.version,
        digest: q.digest,
        since: q.since,
        until: q.until,
        limit: q.limit,
    };
    reply(blocking(move || st.list_artifacts(&who, &product, f)).await)
}

/// `GET /v1/artifacts/{id}`.
pub(super) async fn meta(
    State(st): State<Shared>,
    Path(id): Path<String>,
    creds: Credentials,
) -> Response {
    let who = match identify(&st, creds, Action::Fetch, None).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    reply(blocking(move || st.artifact(&who, &id)).await)
}

/// `GET /v1/artifacts/{id}/{image|detached|provenance}`, and `.../bundle` (JSON,
/// `fwseal-bundle/v1`).
pub(super) async fn part(
    State(st): State<Shared>,
    Path((id, part)): Path<(String, String)>,
    creds: Credentials,
) -> Response {
    let who = match identify(&st, creds, Action::Fetch, None).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if part == "bundle" {
        return reply(blocking(move || st.artifact_bundle(&who, &id)).await);
    }
    match blocking(move || st.artifact_part(&who, &id, &part)).await {
        Ok(p) => download(p.blob, p.content_type, &p.file_name),
        Err(e) => problem(&e),
    }
}
