//! API-token authentication and per-product roles.

use crate::config::{Config, Role};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// An authenticated client.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Client name (recorded in the audit log).
    pub name: String,
}

/// Find the client whose token hash matches `token`. Compares every configured hash in
/// constant time so timing does not reveal which prefix matched.
pub fn authenticate(cfg: &Config, token: &str) -> Option<Identity> {
    let h = Sha256::digest(token.as_bytes());
    let mut found = None;
    for c in &cfg.clients {
        let Ok(want) = hex::decode(&c.token_sha256) else {
            continue;
        };
        if bool::from(want.as_slice().ct_eq(&h[..])) {
            found = Some(Identity {
                name: c.name.clone(),
            });
        }
    }
    found
}

/// Whether `who` holds `role` (or admin) on `product`. Unknown products are simply not allowed,
/// so callers answer both cases the same way.
pub fn allowed(cfg: &Config, who: &Identity, product: &str, role: Role) -> bool {
    if cfg.product(product).is_none() {
        return false;
    }
    let Some(c) = cfg.clients.iter().find(|c| c.name == who.name) else {
        return false;
    };
    [product, "*"].iter().any(|p| {
        c.roles
            .get(*p)
            .is_some_and(|rs| rs.contains(&role) || rs.contains(&Role::Admin))
    })
}

/// Parse `Authorization: Bearer <token>`.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}
