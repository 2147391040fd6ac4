//! Client-side hashing: `GET /v1/products/{p}/sign-params` tells the client how the product
//! signs a format; `POST /v1/products/{p}/sign-digest` signs the messages the client computed
//! with the same format engine (wire types in `fwseal_api::digest`). The appliance never sees
//! the image: the audit record says so (`hash_locally`, no input/output hash of its own, the
//! client's claims in `extra`), and the provenance records `hashLocally: true` and lists the
//! SHA-256 of every signature, which is how it binds to the signed image.

use super::*;
use fwseal_api::digest::{
    DigestItem, DigestItemResult, DigestSignRequest, DigestSignResponse, SignParams, MAX_ITEMS,
};
use fwseal_crypto::{Family, KeyId, SigAlg, Signature, SignedMessage};

/// Query of `sign-params`.
#[derive(Debug, Deserialize)]
pub(super) struct ParamsQuery {
    format: String,
    version: Option<String>,
}

pub(super) async fn sign_params(
    State(st): State<Shared>,
    Path(product): Path<String>,
    Query(q): Query<ParamsQuery>,
    headers: HeaderMap,
) -> Response {
    let (_, _, p) = match submitter(&st, &headers, &product).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let p = &p;
    let Some(format) = Format::from_name(&q.format) else {
        return Problem::bad_request(format!("unknown format {:?}", q.format)).into_response();
    };
    if !p.allows(format) {
        return Problem::unsupported(format!("product {product} does not accept {format} images"))
            .into_response();
    }
    let version = match q.version.as_deref().map(str::parse::<ImageVersion>) {
        Some(Err(e)) => return Problem::bad_request(format!("version: {e}")).into_response(),
        Some(Ok(v)) => Some(v),
        None => None,
    };
    let (classical, pq) = requested_algs(p, format);
    Json(SignParams {
        format,
        classical,
        pq,
        options: p.sign_options(version),
    })
    .into_response()
}

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
fn check_item(
    it: &DigestItem,
    pcfg: &ProductConfig,
) -> Result<(Checked, Option<SigAlg>, Option<SigAlg>), String> {
    if !pcfg.allows(it.format) {
        return Err(format!(
            "product {} does not accept {} images",
            pcfg.name, it.format
        ));
    }
    let (classical, pq) = requested_algs(pcfg, it.format);
    let allowed = [classical, pq];
    let mut seen: Vec<SigAlg> = Vec::new();
    let mut use_alg = |alg: SigAlg| -> Result<(), String> {
        if !allowed.contains(&Some(alg)) {
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
    Ok((
        Checked {
            sign,
            carried,
            input_sha256: hex32(&it.input_sha256, "input_sha256")?,
            digest: (it.digest.alg, digest),
        },
        classical,
        pq,
    ))
}

/// What one item produced (before the audit commit).
struct ItemOut {
    result: DigestItemResult,
    audit: AuditEntry,
}

pub(super) async fn sign_digest(
    State(st): State<Shared>,
    Path(product): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match sign_digest_inner(&st, &product, &headers, body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn sign_digest_inner(
    st: &Shared,
    product: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let started = now_rfc3339();
    let (who, cfg, pcfg) = submitter(st, headers, product).await?;
    let deny = |reason: String| {
        let st = st.clone();
        let who = who.name.clone();
        let product = product.to_string();
        async move {
            audit_denied(
                &st,
                &who,
                "sign",
                &product,
                &format!("hash-locally: {reason}"),
            )
            .await;
            Problem::bad_request(reason).into_response()
        }
    };
    // Approvals bind to an image the appliance stores and re-hashes; a digest-only request
    // cannot give it one, so products under an approval policy refuse it.
    let needs_approval = match &pcfg.approvals {
        None => false,
        Some(a) if a.key_versions.is_empty() => true,
        Some(a) => {
            let keys = st.keys.clone();
            let name = pcfg.name.clone();
            let v = tokio::task::spawn_blocking(move || keys.current_version(&name))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            a.applies_to(v)
        }
    };
    if needs_approval {
        let m = format!(
            "product {product} requires M-of-N approval of the image itself; submit the image \
             (fwseal sign without --hash-locally)"
        );
        audit_denied(
            st,
            &who.name,
            "sign",
            product,
            &format!("hash-locally: {m}"),
        )
        .await;
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "approval-required",
            "Approval required",
            m,
        )
        .into_response());
    }
    let req: DigestSignRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return Err(deny(format!("request body: {e}")).await),
    };
    if req.items.is_empty() || req.items.len() > MAX_ITEMS {
        return Err(deny(format!("1..={MAX_ITEMS} items per request")).await);
    }
    let mut checked = Vec::new();
    for (i, it) in req.items.iter().enumerate() {
        match check_item(it, &pcfg) {
            Ok(c) => checked.push(c),
            Err(e) => return Err(deny(format!("item {i} ({}): {e}", it.name)).await),
        }
    }

    let st2 = st.clone();
    let pcfg2 = pcfg.clone();
    let who2 = who.name.clone();
    let identity = cfg.identity.clone();
    let items = req.items.clone();
    let claims = fwseal_provenance::ClientClaims {
        source_uri: req.claims.source_uri.clone(),
        commit: req.claims.commit.clone(),
        git_ref: req.claims.git_ref.clone(),
        ci_run_url: req.claims.ci_run_url.clone(),
        builder_id: req.claims.builder_id.clone(),
    };
    let work = tokio::task::spawn_blocking(move || -> Result<Vec<ItemOut>, (String, Problem)> {
        let mut outs = Vec::new();
        for (it, (c, classical, pq)) in items.iter().zip(checked) {
            outs.push(sign_item(
                &st2, &pcfg2, &who2, &identity, &claims, &started, it, c, classical, pq,
            )?);
        }
        Ok(outs)
    })
    .await;
    let outs = match work {
        Ok(Ok(o)) => o,
        Ok(Err((reason, p))) => {
            audit_denied(
                st,
                &who.name,
                "sign",
                product,
                &format!("hash-locally: {reason}"),
            )
            .await;
            return Err(p.into_response());
        }
        Err(e) => return Err(Problem::internal(e.to_string()).into_response()),
    };

    // Every record is durably committed BEFORE any signature leaves.
    let store = st.store.clone();
    let entries: Vec<AuditEntry> = outs.iter().map(|o| o.audit.clone()).collect();
    let committed = tokio::task::spawn_blocking(move || -> Result<(), String> {
        for e in &entries {
            store.commit(e, None).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .await;
    match committed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(
                Problem::internal(format!("audit log: {e}; signatures withheld")).into_response(),
            )
        }
        Err(e) => return Err(Problem::internal(e.to_string()).into_response()),
    }
    for o in &outs {
        for s in &o.result.signatures {
            st.metrics
                .signatures
                .get_or_create(&crate::metrics::SigLabels {
                    product: product.to_string(),
                    alg: s.alg.name().to_string(),
                })
                .inc();
        }
    }
    let resp = DigestSignResponse {
        items: outs.into_iter().map(|o| o.result).collect(),
    };
    Ok((StatusCode::OK, Json(resp)).into_response())
}

/// Sign one item's messages (blocking: HSM), check carried signatures, and when the item is
/// complete sign its provenance. Returns the result and its audit record (not yet committed).
#[allow(clippy::too_many_arguments)]
fn sign_item(
    st: &Shared,
    pcfg: &ProductConfig,
    who: &str,
    identity: &str,
    claims: &fwseal_provenance::ClientClaims,
    started: &str,
    it: &DigestItem,
    c: Checked,
    classical: Option<SigAlg>,
    pq: Option<SigAlg>,
) -> Result<ItemOut, (String, Problem)> {
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
    let signers = st
        .keys
        .product_signers(&pcfg.name, classical, pq)
        .map_err(|e| {
            st.metrics.hsm_errors.inc();
            match e {
                KeyError::Missing { .. } => (e.to_string(), Problem::unsupported(e.to_string())),
                KeyError::Unavailable(_) => {
                    (e.to_string(), Problem::hsm_unavailable(e.to_string()))
                }
            }
        })?;
    let signer_for = |alg: SigAlg| -> Result<&Arc<dyn Signer>, (String, Problem)> {
        let s = match alg.family() {
            Family::Classical => signers.classical.as_ref(),
            Family::PostQuantum => signers.pq.as_ref(),
        };
        s.filter(|s| s.alg() == alg).ok_or_else(|| {
            let m = format!("no {alg} key for product {}", pcfg.name);
            (m.clone(), Problem::unsupported(m))
        })
    };
    // A carried signature must be ours: made by the product's current key over that message.
    for (m, s) in &c.carried {
        let signer = signer_for(s.alg)?;
        let pk = signer.public_key();
        if s.key_id != pk.key_id() || pk.verify(m, s).is_err() {
            let m = format!(
                "carried {} signature was not made by product {}'s current key over that message",
                s.alg, pcfg.name
            );
            return Err((m.clone(), Problem::bad_request(m)));
        }
    }
    // Post-quantum first, the order the format engine signs in.
    let mut order: Vec<&(SigAlg, SignedMessage)> = c.sign.iter().collect();
    order.sort_by_key(|(a, _)| a.family() == Family::Classical);
    let mut made: Vec<(SigAlg, Signature, Vec<u8>)> = Vec::new();
    for (alg, m) in order {
        let signer = signer_for(*alg)?;
        let sig = signer.sign(m).map_err(|e| {
            st.metrics.hsm_errors.inc();
            (e.to_string(), Problem::hsm_unavailable(e.to_string()))
        })?;
        made.push((*alg, sig, signer.public_key().spki_der().to_vec()));
    }
    // Answer in request order.
    let mut signatures = Vec::new();
    let mut public_keys = Vec::new();
    for w in &it.sign {
        if let Some((_, s, pk)) = made.iter().find(|(a, _, _)| *a == w.alg) {
            signatures.push(s.clone());
            public_keys.push(b64(pk));
        }
    }
    let made_classical = made.iter().any(|(a, _, _)| a.family() == Family::Classical);
    let certificates = match (&signers.certificate, made_classical) {
        (Some(cert), true) => vec![b64(cert)],
        _ => vec![],
    };
    let mut all: Vec<&Signature> = c.carried.iter().map(|(_, s)| s).collect();
    all.extend(made.iter().map(|(_, s, _)| s));
    // Classical first, as in an uploaded signing's provenance.
    all.sort_by_key(|s| s.alg.family() == Family::PostQuantum);
    let complete = [classical, pq]
        .into_iter()
        .flatten()
        .all(|want| all.iter().any(|s| s.alg == want));

    let input_hex = hex::encode(c.input_sha256);
    let invocation = fwseal_store::new_artifact_id().map_err(internal)?;
    let provenance = if complete {
        let rec = fwseal_provenance::SigningRecord {
            artifact_name: it.name.clone(),
            artifact_sha256: input_hex.clone(),
            input_name: it.name.clone(),
            input_sha256: input_hex.clone(),
            detached_sha256: None,
            product: pcfg.name.clone(),
            format: it.format.name().to_string(),
            mode: mode_name(it.mode).to_string(),
            hash_locally: true,
            key_ids: all
                .iter()
                .map(|s| (s.alg.name().to_string(), s.key_id.to_hex()))
                .collect(),
            signature_sha256: all
                .iter()
                .map(|s| hex::encode(Sha256::digest(&s.bytes)))
                .collect(),
            policy: policy_name(pcfg.policy).to_string(),
            approvers: vec![],
            builder_id: identity.to_string(),
            invocation_id: invocation.clone(),
            started_on: started.to_string(),
            finished_on: now_rfc3339(),
            client_claims: claims.clone(),
        };
        let keys = st.keys.appliance_signers().map_err(|e| {
            let m = format!("provenance signing failed: {e}");
            (m.clone(), Problem::hsm_unavailable(m))
        })?;
        let env = fwseal_provenance::sign_record(&rec, keys.classical.as_ref(), keys.pq.as_ref())
            .map_err(|e| {
            let m = format!("provenance signing failed: {e}");
            (m.clone(), Problem::hsm_unavailable(m))
        })?;
        Some(env.to_jsonl())
    } else {
        None
    };

    let mut ev = entry(who, "sign", &pcfg.name, Decision::Allow);
    ev.key_ids = made
        .iter()
        .map(|(_, s, _)| s.key_id)
        .collect::<Vec<KeyId>>();
    ev.cert_sha256 = match (&signers.certificate, made_classical) {
        (Some(cert), true) => Some(Sha256::digest(cert).into()),
        _ => None,
    };
    ev.format = Some(it.format.name().to_string());
    ev.mode = Some(mode_name(it.mode).to_string());
    let ev = ev.with_extra(&serde_json::json!({
        "hash_locally": true,
        "seen": "digest only: the appliance did not see the image",
        "invocation": invocation,
        "name": it.name,
        "version": it.version,
        "claimed_input_sha256": input_hex,
        "claimed_digest": {"alg": c.digest.0, "value": hex::encode(&c.digest.1)},
        "messages_sha256": c.sign.iter().map(|(a, m)| serde_json::json!({
            "alg": a, "sha256": hex::encode(Sha256::digest(message_bytes(m)))
        })).collect::<Vec<_>>(),
        "signature_sha256": made.iter().map(|(_, s, _)| hex::encode(Sha256::digest(&s.bytes))).collect::<Vec<_>>(),
        "carried_signature_sha256": c.carried.iter().map(|(_, s)| hex::encode(Sha256::digest(&s.bytes))).collect::<Vec<_>>(),
        "complete": complete,
        "provenance_sha256": provenance.as_ref().map(|p| hex::encode(Sha256::digest(p.as_bytes()))),
    }));
    Ok(ItemOut {
        result: DigestItemResult {
            name: it.name.clone(),
            signatures,
            public_keys,
            certificates,
            complete,
            provenance,
        },
        audit: ev,
    })
}

fn message_bytes(m: &SignedMessage) -> &[u8] {
    match m {
        SignedMessage::Prehashed { digest, .. } => digest,
        SignedMessage::Bytes(b) => b,
    }
}
