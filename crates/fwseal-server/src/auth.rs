//! Authentication (static API tokens, OIDC workload tokens) and per-product roles.
//!
//! A bearer token is first compared with every static client's token hash, in constant time
//! ([`authenticate`]); only if none matches, and it has the shape of a JWS
//! ([`crate::oidc::looks_like_jwt`]), is it verified as an OIDC token. Static tokens that
//! happen to contain dots therefore keep working, and a wrong static token and a refused OIDC
//! token get the same answer.
//!
//! Roles come from the configuration in force when they are checked: a static client's from
//! its `[[client]]`, an OIDC identity's from the first `[[oidc.rules]]` entry its (stored,
//! verified) claims match now.

use crate::config::{Config, Role};
use crate::oidc::OidcIdentity;
use fwseal_provenance::VerifiedClaims;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// An authenticated client.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Client name (recorded in the audit log): the `[[client]]` name, or the matched rule's
    /// `client` for an OIDC identity.
    pub name: String,
    /// Set when the request was authenticated by an OIDC token.
    pub oidc: Option<Arc<OidcIdentity>>,
}

impl Identity {
    /// A static-token client (or an internal actor: `fwseald`, `anonymous`).
    pub fn named(name: &str) -> Self {
        Identity {
            name: name.to_string(),
            oidc: None,
        }
    }

    /// The verified claims of an OIDC identity.
    pub fn verified(&self) -> Option<&VerifiedClaims> {
        self.oidc.as_deref().map(|o| o.verified.as_ref())
    }

    /// The identity as the job queue knows it (identities compare by issuer + subject for
    /// OIDC, by name otherwise).
    pub fn principal(&self) -> fwseal_store::Principal {
        match &self.oidc {
            None => fwseal_store::Principal::named(&self.name),
            Some(o) => fwseal_store::Principal {
                name: self.name.clone(),
                oidc: Some(fwseal_store::OidcSubject {
                    issuer: o.verified.issuer.clone(),
                    subject: o.verified.subject.clone(),
                }),
                claims: Some(serde_json::Value::Object(o.claims.clone())),
            },
        }
    }

    /// The identity for a stored principal (a job's approver, re-checked against the current
    /// configuration).
    pub fn from_principal(p: &fwseal_store::Principal) -> Self {
        let oidc = match (&p.oidc, &p.claims) {
            (Some(s), Some(serde_json::Value::Object(c))) => Some(Arc::new(OidcIdentity {
                issuer_name: String::new(),
                verified: Arc::new(VerifiedClaims {
                    issuer: s.issuer.clone(),
                    subject: s.subject.clone(),
                    ..Default::default()
                }),
                claims: c.clone(),
            })),
            _ => None,
        };
        Identity {
            name: p.name.clone(),
            oidc,
        }
    }

    /// `{"oidc": {"issuer", "subject", "jti"}}` for an OIDC identity's audit records.
    pub fn audit_extra(&self) -> Option<serde_json::Value> {
        self.verified().map(oidc_audit)
    }
}

/// The audit block of verified claims: issuer, subject, `jti`.
pub fn oidc_audit(v: &VerifiedClaims) -> serde_json::Value {
    serde_json::json!({"oidc": {"issuer": v.issuer, "subject": v.subject, "jti": v.jti}})
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
            found = Some(Identity::named(&c.name));
        }
    }
    found
}

/// The roles `who` holds in `cfg` (per product, `"*"` = every product).
pub fn roles<'a>(cfg: &'a Config, who: &Identity) -> Option<&'a BTreeMap<String, Vec<Role>>> {
    match &who.oidc {
        None => cfg
            .clients
            .iter()
            .find(|c| c.name == who.name)
            .map(|c| &c.roles),
        Some(o) => cfg
            .oidc
            .rule_for(&o.verified.issuer, &o.claims)
            .filter(|(_, r)| r.client == who.name)
            .map(|(_, r)| &r.roles),
    }
}

/// Whether `role` on a `require_oidc` product is one only OIDC identities may use: those that
/// make or release signatures (submitting, approving), not reads.
fn needs_oidc(cfg: &Config, product: &str, role: Role) -> bool {
    cfg.product(product).is_some_and(|p| {
        p.require_oidc
            && (matches!(role, Role::Submitter | Role::ReleaseApprover | Role::Admin)
                || p.approvals.as_ref().is_some_and(|a| a.of_role == role))
    })
}

/// Whether `who` holds `role` (or admin) on `product` by its configured roles, ignoring
/// `require_oidc`.
pub fn holds(cfg: &Config, who: &Identity, product: &str, role: Role) -> bool {
    if cfg.product(product).is_none() {
        return false;
    }
    let Some(roles) = roles(cfg, who) else {
        return false;
    };
    [product, "*"].iter().any(|p| {
        roles
            .get(*p)
            .is_some_and(|rs| rs.contains(&role) || rs.contains(&Role::Admin))
    })
}

/// Whether `who` is refused `role` on `product` only because the product requires OIDC and
/// `who` used a static token (so the refusal can say so: the client holds the role).
pub fn refused_for_static(cfg: &Config, who: &Identity, product: &str, role: Role) -> bool {
    who.oidc.is_none() && needs_oidc(cfg, product, role) && holds(cfg, who, product, role)
}

/// Whether `who` holds `role` (or admin) on `product`. Unknown products are simply not allowed,
/// so callers answer both cases the same way. A static-token client is not allowed to submit
/// or approve on a `require_oidc` product.
pub fn allowed(cfg: &Config, who: &Identity, product: &str, role: Role) -> bool {
    holds(cfg, who, product, role) && !(who.oidc.is_none() && needs_oidc(cfg, product, role))
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
