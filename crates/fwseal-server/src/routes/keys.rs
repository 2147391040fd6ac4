//! `GET /v1/products/{product}/keys` and `GET /v1/appliance/keys`.

use super::{blocking, identify, reply, Credentials, Shared};
use axum::extract::{Path, State};
use axum::response::Response;
use fwseal_store::Action;

/// The product's current public keys.
pub(super) async fn product_keys(
    State(st): State<Shared>,
    Path(product): Path<String>,
    creds: Credentials,
) -> Response {
    let who = match identify(&st, creds, Action::KeysRead, Some(&product)).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    reply(blocking(move || st.product_keys(&who, &product)).await)
}

/// The appliance's provenance public keys (any authenticated client).
pub(super) async fn appliance_keys(State(st): State<Shared>, creds: Credentials) -> Response {
    let product = Some(fwseal_api::APPLIANCE);
    let who = match identify(&st, creds, Action::KeysRead, product).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    reply(blocking(move || st.appliance_keys(&who)).await)
}
