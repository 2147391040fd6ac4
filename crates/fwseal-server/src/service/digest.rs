//! Client-side hashing: [`SigningService::sign_params`] tells the client how the product signs
//! a format; [`SigningService::sign_digest`] signs the messages the client computed with the
//! same format engine. The appliance never sees the image: the audit record says so
//! (`hash_locally`, no input/output hash of its own, the client's claims in `extra`), and the
//! provenance records `hashLocally: true` and lists the SHA-256 of every signature, which is
//! how it binds to the signed image. Signers, provenance and the audit record come from the
//! same builders as an uploaded image's ([`super::signing`]).

use super::intake::{algorithms, check_format, parse_version};
use super::signing::{client_claims, sign_entry, Seen, Signing};
use super::{now_rfc3339, ServiceError, SigningService};
use crate::auth::Identity;
use crate::config::{ProductConfig, Role};
use base64::Engine as _;
use fwseal_api::digest::{
    BuildClaims, DigestItem, DigestItemResult, DigestSignRequest, DigestSignResponse, SignParams,
    MAX_ITEMS,
};
use fwseal_crypto::{Family, SigAlg, Signature, SignedMessage};
use fwseal_formats::Format;
use fwseal_store::Action;
use sha2::{Digest, Sha256};

/// One checked item: what to sign now, what was signed before.
struct Checked {
    sign: Vec<(SigAlg, SignedMessage)>,
    carried: Vec<(SignedMessage, Signature)>,
    input_sha256: [u8; 32],
    digest: (fwseal_crypto::DigestAlg, Vec<u8>),
}

fn hex32(s: &str, what: &str) -> Result<[u8; 32], String> {
    let v = hex::decode(s).map_err(|e| format!("{what}: {e}"))?;
    v.try_into()
        .map_err(|_| format!("{what}: expected 32 bytes of hex"))
}

/// Check one item against the product's policy: known algorithms only, at most one message per
/// algorithm across `sign` and `carried`, well-formed messages and digests.
fn check_item(it: &DigestItem, pcfg: &ProductConfig) -> Result<Checked, String> {
    check_format(pcfg, it.format).map_err(|e| e.to_string())?;
    let (classical, pq) = algorithms(pcfg, it.format);
    let mut seen: Vec<SigAlg> = Vec::new();
    let mut use_alg = |alg: SigAlg| -> Result<(), String> {
        if ![classical, pq].contains(&Some(alg)) {
            return Err(format!(
                "{alg} is not what product {} signs {} images with",
                pcfg.name, it.format
            ));
        }
        if seen.contains(&alg) {
            return Err(format!("{alg} appears twice"));
        }
        seen.push(alg);
        Ok(())
    };
    let mut sign = Vec::new();
    for m in &it.sign {
        use_alg(m.alg)?;
        sign.push((m.alg, m.decode()?));
    }
    let mut carried = Vec::new();
    for c in &it.carried {
        use_alg(c.message.alg)?;
        if c.signature.alg != c.message.alg {
            return Err(format!(
                "carried {} signature is for {}",
                c.message.alg, c.signature.alg
            ));
        }
        carried.push((c.message.decode()?, c.signature.clone()));
    }
    if sign.is_empty() {
        return Err("nothing to sign".into());
    }
    let digest = hex::decode(&it.digest.value).map_err(|e| format!("digest: {e}"))?;
    if digest.len() != it.digest.alg.len() {
        return Err(format!(
            "digest must be {} bytes of {}",
            it.digest.alg.len(),
            it.digest.alg
        ));
    }
    Ok(Checked {
        sign,
        carried,
        input_sha256: hex32(&it.input_sha256, "input_sha256")?,
        digest: (it.digest.alg, digest),
    })
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn message_bytes(m: &SignedMessage) -> &[u8] {
    match m {
        SignedMessage::Prehashed { digest, .. } => digest,
        SignedMessage::Bytes(b) => b,
    }
}

impl SigningService {
    /// `GET /v1/products/{p}/sign-params`: the algorithms and options `product` signs `format`
    /// with.
    pub fn sign_params(
        &self,
        who: &Identity,
        product: &str,
        format: &str,
        version: Option<&str>,
    ) -> Result<SignParams, ServiceError> {
        self.audited(who, Action::Sign, Some(product), || {
            let (_, p) = self.product_for(who, product, Role::Submitter)?;
            let format = Format::from_name(format)
                .ok_or_else(|| ServiceError::BadRequest(format!("unknown format {format:?}")))?;
            check_format(&p, format)?;
            let version = parse_version(version)?;
            let (classical, pq) = algorithms(&p, format);
            Ok(SignParams {
                format,
                classical,
                pq,
                options: p.sign_options(version),
            })
        })
    }

    /// `POST /v1/products/{p}/sign-digest`: sign the messages of every item (refusing the whole
    /// request if any item is invalid), then commit every item's audit record before any
    /// signature is returned.
    pub fn sign_digest(
        &self,
        who: &Identity,
        product: &str,
        body: &[u8],
    ) -> Result<DigestSignResponse, ServiceError> {
        let started = now_rfc3339();
        let (_, pcfg) = self.audited(who, Action::Sign, Some(product), || {
            self.product_for(who, product, Role::Submitter)
        })?;
        let (items, entries) =
            self.audited_in("hash-locally", who, Action::Sign, Some(product), || {
                // Approvals bind to an image the appliance stores and re-hashes; a digest-only
                // request cannot give it one, so products under an approval policy refuse it.
                let needs_approval = match &pcfg.approvals {
                    None => false,
                    Some(a) if a.key_versions.is_empty() => true,
                    Some(a) => a.applies_to(self.keys.current_version(&pcfg.name).ok().flatten()),
                };
                if needs_approval {
                    return Err(ServiceError::ApprovalRequired(format!(
                    "product {product} requires M-of-N approval of the image itself; submit the \
                     image (fwseal sign without --hash-locally)"
                )));
                }
                let req: DigestSignRequest = serde_json::from_slice(body)
                    .map_err(|e| ServiceError::BadRequest(format!("request body: {e}")))?;
                super::signing::check_claims(who, &req.claims)?;
                if req.items.is_empty() || req.items.len() > MAX_ITEMS {
                    return Err(ServiceError::BadRequest(format!(
                        "1..={MAX_ITEMS} items per request"
                    )));
                }
                let mut checked = Vec::new();
                for (i, it) in req.items.iter().enumerate() {
                    checked.push(check_item(it, &pcfg).map_err(|e| {
                        ServiceError::BadRequest(format!("item {i} ({}): {e}", it.name))
                    })?);
                }
                let mut results = Vec::new();
                let mut entries = Vec::new();
                for (it, c) in req.items.iter().zip(checked) {
                    let (r, e) = self.sign_item(who, &pcfg, &req.claims, &started, it, c)?;
                    results.push(r);
                    entries.push(e);
                }
                Ok((results, entries))
            })?;
        // Every record is durably committed BEFORE any signature leaves.
        for e in &entries {
            self.store.commit(e, None).map_err(|e| {
                ServiceError::Internal(format!("audit log: {e}; signatures withheld"))
            })?;
        }
        for r in &items {
            self.count_signatures(product, &r.signatures.iter().collect::<Vec<_>>());
        }
        Ok(DigestSignResponse { items })
    }

    /// Sign one item's messages, check carried signatures, and when the item is complete sign
    /// its provenance. Returns the result and its audit record (not yet committed).
    fn sign_item(
        &self,
        who: &Identity,
        pcfg: &ProductConfig,
        claims: &BuildClaims,
        started: &str,
        it: &DigestItem,
        c: Checked,
    ) -> Result<(DigestItemResult, fwseal_store::AuditEntry), ServiceError> {
        let signers = self.signers(pcfg, it.format)?;
        let signer_for = |alg: SigAlg| {
            match alg.family() {
                Family::Classical => signers.classical.as_ref(),
                Family::PostQuantum => signers.pq.as_ref(),
            }
            .filter(|s| s.alg() == alg)
            .ok_or_else(|| {
                ServiceError::Unsupported(format!("no {alg} key for product {}", pcfg.name))
            })
        };
        // A carried signature must be ours: made by the product's current key over that message.
        for (m, s) in &c.carried {
            let pk = signer_for(s.alg)?.public_key();
            if s.key_id != pk.key_id() || pk.verify(m, s).is_err() {
                return Err(ServiceError::BadRequest(format!(
                    "carried {} signature was not made by product {}'s current key over that message",
                    s.alg, pcfg.name
                )));
            }
        }
        // Post-quantum first, the order the format engine signs in.
        let mut order: Vec<&(SigAlg, SignedMessage)> = c.sign.iter().collect();
        order.sort_by_key(|(a, _)| a.family() == Family::Classical);
        let mut made: Vec<(Signature, Vec<u8>)> = Vec::new();
        for (alg, m) in order {
            let signer = signer_for(*alg)?;
            let sig = signer.sign(m).map_err(|e| {
                self.metrics.hsm_errors.inc();
                ServiceError::Signing(e.to_string())
            })?;
            made.push((sig, signer.public_key().spki_der().to_vec()));
        }
        // Answer in request order.
        let mut signatures = Vec::new();
        let mut public_keys = Vec::new();
        for w in &it.sign {
            if let Some((s, pk)) = made.iter().find(|(s, _)| s.alg == w.alg) {
                signatures.push(s.clone());
                public_keys.push(b64(pk));
            }
        }
        let made_classical = made
            .iter()
            .any(|(s, _)| s.alg.family() == Family::Classical);
        let certificate = signers.certificate.as_deref().filter(|_| made_classical);
        // Timestamps over the signatures made now, as for an uploaded image (`[tsa]`; required
        // mode refuses here, before anything is recorded or released).
        let made_refs: Vec<&Signature> = made.iter().map(|(s, _)| s).collect();
        let image_ts = self.timestamp("image", &made_refs)?;
        let mut all: Vec<&Signature> = c.carried.iter().map(|(_, s)| s).collect();
        all.extend(made.iter().map(|(s, _)| s));
        // Classical first, as in an uploaded signing's provenance.
        all.sort_by_key(|s| s.alg.family() == Family::PostQuantum);
        let (classical, pq) = algorithms(pcfg, it.format);
        let complete = [classical, pq]
            .into_iter()
            .flatten()
            .all(|want| all.iter().any(|s| s.alg == want));

        let invocation = fwseal_store::new_artifact_id()?;
        let signing = Signing {
            requester: &who.name,
            pcfg,
            format: it.format,
            mode: it.mode,
            name: &it.name,
            signatures: all,
            certificate,
            seen: Seen::DigestOnly {
                claimed_input_sha256: c.input_sha256,
            },
            approvers: &[],
            invocation: &invocation,
            started,
            claims: client_claims(claims),
            verified: who.verified(),
        };
        let (provenance, prov_ts) = match complete.then(|| self.provenance(&signing)) {
            Some(made) => {
                let (p, sigs) = made?;
                let ts = self.timestamp("provenance", &sigs.iter().collect::<Vec<_>>())?;
                (Some(p), ts)
            }
            None => (None, None),
        };
        let timestamps = image_ts
            .as_ref()
            .map(|st| st.tokens.clone())
            .unwrap_or_default();
        let sha_hex = |b: &[u8]| hex::encode(Sha256::digest(b));
        let mut extra = serde_json::json!({
            "hash_locally": true,
            "seen": "digest only: the appliance did not see the image",
            "invocation": invocation,
            "name": it.name,
            "version": it.version,
            "claimed_input_sha256": hex::encode(c.input_sha256),
            "claimed_digest": {"alg": c.digest.0, "value": hex::encode(&c.digest.1)},
            "messages_sha256": c.sign.iter().map(|(a, m)| serde_json::json!({
                "alg": a, "sha256": sha_hex(message_bytes(m))
            })).collect::<Vec<_>>(),
            "signature_sha256": made_refs.iter().map(|s| sha_hex(&s.bytes)).collect::<Vec<_>>(),
            "carried_signature_sha256": c.carried.iter().map(|(_, s)| sha_hex(&s.bytes)).collect::<Vec<_>>(),
            "complete": complete,
            "provenance_sha256": provenance.as_ref().map(|p| sha_hex(p.as_bytes())),
        });
        super::signing::record_timestamps(&mut extra, image_ts, prov_ts);
        let ev = sign_entry(&signing, &made_refs, extra);
        Ok((
            DigestItemResult {
                name: it.name.clone(),
                signatures,
                public_keys,
                certificates: certificate.map(b64).into_iter().collect(),
                complete,
                provenance,
                timestamps,
            },
            ev,
        ))
    }
}
