//! Reading what the appliance made: artifact metadata and parts, the artifact list, a
//! product's public keys, and the audit log export. Every read is audited.

use super::{entry_by, ServiceError, SigningService};
use crate::auth::{allowed, Identity};
use crate::config::Role;
use fwseal_api::{ArtifactList, ArtifactView, KeyView, ProductKeys};
use fwseal_store::Blob;
use fwseal_store::{Action, ArtifactMeta, ArtifactQuery, Decision};

/// A part of an artifact, ready to stream.
pub struct ArtifactPart {
    /// The content.
    pub blob: Blob,
    /// Its media type.
    pub content_type: &'static str,
    /// The file name a download should get.
    pub file_name: String,
}

/// Filters of the artifact list (as in the query string).
#[derive(Debug, Default)]
pub struct ListFilter {
    /// Exact image version.
    pub version: Option<String>,
    /// Input or output SHA-256 (hex).
    pub digest: Option<String>,
    /// Created at or after (RFC 3339).
    pub since: Option<String>,
    /// Created before (RFC 3339).
    pub until: Option<String>,
    /// At most this many (default 100, capped).
    pub limit: Option<u32>,
}

impl SigningService {
    /// An artifact the caller may fetch (factory or submitter role on its product); a missing
    /// and a forbidden artifact look the same.
    pub(super) fn fetchable(&self, who: &Identity, id: &str) -> Result<ArtifactMeta, ServiceError> {
        let missing = |reason: String| ServiceError::NoSuchArtifact {
            id: id.to_string(),
            reason,
        };
        let meta = self.audited(who, Action::Fetch, None, || {
            self.store
                .artifact(id)?
                .ok_or_else(|| missing(format!("no artifact {id}")))
        })?;
        let cfg = self.config();
        self.audited(who, Action::Fetch, Some(&meta.product), || {
            if allowed(&cfg, who, &meta.product, Role::Factory)
                || allowed(&cfg, who, &meta.product, Role::Submitter)
            {
                Ok(())
            } else {
                Err(missing(format!("artifact {id}: no factory role")))
            }
        })?;
        Ok(meta)
    }

    /// `GET /v1/artifacts/{id}`.
    pub fn artifact(&self, who: &Identity, id: &str) -> Result<ArtifactView, ServiceError> {
        artifact_view(&self.fetchable(who, id)?)
    }

    /// `GET /v1/artifacts/{id}/{part}` with part `image`, `detached` or `provenance` (audited).
    pub fn artifact_part(
        &self,
        who: &Identity,
        id: &str,
        part: &str,
    ) -> Result<ArtifactPart, ServiceError> {
        let meta = self.fetchable(who, id)?;
        let no_part = || ServiceError::NoSuchArtifact {
            id: format!("{id}/{part}"),
            reason: format!("artifact {id} has no part {part:?}"),
        };
        let ext = fwseal_formats::Format::from_name(&meta.format)
            .map_or("bin", |f| f.spec().extensions[0]);
        let (sha, content_type, file_name) = match part {
            "image" => (
                Some(meta.output_sha256),
                "application/octet-stream",
                format!("{id}.{ext}"),
            ),
            "detached" => (
                meta.detached_sha256,
                "application/json",
                format!("{id}.sig.json"),
            ),
            "provenance" => (
                meta.provenance_sha256,
                "application/vnd.in-toto+json",
                format!("{id}.intoto.jsonl"),
            ),
            _ => (None, "", String::new()),
        };
        let sha = sha.ok_or_else(no_part)?;
        let mut ev = entry_by(who, Action::Fetch, Some(&meta.product), Decision::Allow);
        ev.output_sha256 = Some(sha);
        self.audit(&ev.with_extra(&serde_json::json!({"artifact": id, "part": part})))?;
        let blob = self
            .blobs
            .open(&sha)?
            .ok_or_else(|| ServiceError::internal("artifact content missing from the store"))?;
        Ok(ArtifactPart {
            blob,
            content_type,
            file_name,
        })
    }

    /// `GET /v1/products/{p}/artifacts`: newest first.
    pub fn list_artifacts(
        &self,
        who: &Identity,
        product: &str,
        f: ListFilter,
    ) -> Result<ArtifactList, ServiceError> {
        self.audited(who, Action::List, Some(product), || {
            self.product_for(who, product, Role::Factory)?;
            for (what, t) in [("since", &f.since), ("until", &f.until)] {
                if let Some(t) = t {
                    if fwseal_store::time::utc_sort_key(t).is_none() {
                        return Err(ServiceError::BadRequest(format!(
                            "{what} {t:?} is not an RFC 3339 UTC time (e.g. 2026-05-01T10:00:00Z)"
                        )));
                    }
                }
            }
            let digest = match f.digest.as_deref() {
                None => None,
                Some(d) => Some(fwseal_store::record::hash_from_hex(d).ok_or_else(|| {
                    ServiceError::BadRequest("digest must be 64 hex digits (SHA-256)".into())
                })?),
            };
            // Versions are stored normalised (`1.2.3` as `1.2.3+0`); compare them the same way.
            let version = super::intake::parse_version(f.version.as_deref())?;
            let q = ArtifactQuery {
                version: version.map(|v| v.to_string()),
                digest,
                since: f.since,
                until: f.until,
                limit: Some(
                    f.limit
                        .map_or(100, |l| l as usize)
                        .min(fwseal_store::meta::MAX_LIST),
                ),
            };
            Ok(ArtifactList {
                product: product.to_string(),
                artifacts: self
                    .store
                    .list_artifacts(product, &q)?
                    .iter()
                    .map(artifact_view)
                    .collect::<Result<_, _>>()?,
            })
        })
    }

    /// `GET /v1/products/{p}/keys`: the product's current public keys (and certificate).
    pub fn product_keys(&self, who: &Identity, product: &str) -> Result<ProductKeys, ServiceError> {
        self.audited(who, Action::KeysRead, Some(product), || {
            let cfg = self.config();
            let p = cfg
                .product(product)
                .filter(|_| {
                    [Role::Factory, Role::Submitter, Role::Auditor]
                        .iter()
                        .any(|r| allowed(&cfg, who, product, *r))
                })
                .ok_or_else(|| ServiceError::NoSuchProduct("no role on product".into()))?;
            // The product's keys under its own algorithms (what `classical`/`pq` configure).
            let s = self
                .keys
                .product_signers(&p.name, p.classical_alg(), p.pq_alg())
                .map_err(|e| match e {
                    crate::keys::KeyError::Missing { .. } => {
                        ServiceError::Unsupported(e.to_string())
                    }
                    e => ServiceError::Keys(e),
                })?;
            let keys = [s.classical, s.pq]
                .into_iter()
                .flatten()
                .map(|signer| key_view(signer.as_ref()))
                .collect();
            Ok(ProductKeys {
                product: product.to_string(),
                keys,
                certificate_pem: s
                    .certificate
                    .map(|c| fwseal_crypto::verify::pem_encode("CERTIFICATE", &c)),
            })
        })
    }

    /// `GET /v1/appliance/keys`: the appliance's current provenance / checkpoint public keys
    /// (ECDSA P-256, then ML-DSA-65), for any authenticated client: whoever verifies a
    /// provenance envelope or an audit checkpoint needs them, and they open no product.
    pub fn appliance_keys(&self, who: &Identity) -> Result<ProductKeys, ServiceError> {
        self.audited(who, Action::KeysRead, Some(fwseal_api::APPLIANCE), || {
            let s = self.keys.appliance_signers()?;
            let keys = [s.classical, s.pq]
                .iter()
                .map(|signer| key_view(signer.as_ref()))
                .collect();
            Ok(ProductKeys {
                product: fwseal_api::APPLIANCE.to_string(),
                keys,
                certificate_pem: None,
            })
        })
    }

    /// `GET /v1/audit/export`: the whole log as JSON Lines (auditor or admin on `*`).
    pub fn audit_export(&self, who: &Identity) -> Result<Vec<u8>, ServiceError> {
        self.audited(who, Action::AuditRead, Some("*"), || {
            let cfg = self.config();
            let ok = cfg.clients.iter().any(|c| {
                c.name == who.name
                    && c.roles
                        .get("*")
                        .is_some_and(|r| r.contains(&Role::Auditor) || r.contains(&Role::Admin))
            });
            if !ok {
                return Err(ServiceError::Forbidden(
                    "the audit log needs the auditor role on \"*\"".into(),
                ));
            }
            self.audit(&entry_by(who, Action::AuditRead, None, Decision::Allow))?;
            let mut out = Vec::new();
            self.store.export(&mut out)?;
            Ok(out)
        })
    }
}

/// An artifact's metadata as the API shows it.
fn artifact_view(m: &ArtifactMeta) -> Result<ArtifactView, ServiceError> {
    let h = |x: &[u8; 32]| hex::encode(x);
    let corrupt =
        |what: &str| ServiceError::internal(format!("artifact {}: stored {what} is invalid", m.id));
    Ok(ArtifactView {
        id: m.id.clone(),
        product: m.product.clone(),
        format: fwseal_formats::Format::from_name(&m.format).ok_or_else(|| corrupt("format"))?,
        mode: serde_json::from_value(serde_json::Value::String(m.mode.clone()))
            .map_err(|_| corrupt("mode"))?,
        name: m.name.clone(),
        version: m.version.clone(),
        input_sha256: h(&m.input_sha256),
        output_sha256: h(&m.output_sha256),
        detached_sha256: m.detached_sha256.as_ref().map(h),
        provenance_sha256: m.provenance_sha256.as_ref().map(h),
        key_ids: m.key_ids.iter().map(|k| k.to_hex()).collect(),
        client: m.client.clone(),
        created: m.created.clone(),
    })
}

/// The wire view of one signer's public key (product and appliance keys alike).
fn key_view(signer: &dyn fwseal_crypto::Signer) -> KeyView {
    let pk = signer.public_key();
    KeyView {
        alg: pk.alg(),
        key_id: pk.key_id().to_hex(),
        spki_pem: pk.spki_pem(),
    }
}
