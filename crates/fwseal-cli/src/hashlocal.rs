//! `fwseal sign --hash-locally`: prepare every image here with the format engine the daemon
//! uses, send only digests and messages (`POST /v1/products/{p}/sign-digest`), check the
//! returned signatures, and embed them (or write the detached document) locally.

use crate::client::{self, Client};
use crate::names;
use crate::online::{default_output, provenance_output, SignArgs};
use anyhow::{anyhow, Context, Result};
use fwseal_api::digest::{
    sign_remote, BuildClaims, DigestSignRequest, DigestSignResponse, LocalItem, RemoteError,
    SignParams,
};
use fwseal_api::SignParamsQuery;
use fwseal_formats::files;
use fwseal_formats::{Format, Mode};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Largest .hex / .efi image prepared here (they are held in memory).
const RANDOM_ACCESS_LIMIT: u64 = 1 << 30;

/// The transport failed; the real error is kept aside so exit codes still tell an unreachable
/// server from a refusal.
#[derive(Debug)]
struct SendFailed;
impl std::fmt::Display for SendFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request failed")
    }
}
impl std::error::Error for SendFailed {}

pub fn sign(a: &SignArgs, client: &Client, json: bool) -> Result<serde_json::Value> {
    let mode = if a.detached {
        Mode::Detached
    } else {
        Mode::Embedded
    };
    let forced = match &a.format {
        Some(f) => Some(
            Format::from_name(f)
                .ok_or_else(|| anyhow!("unknown format {f:?} ({})", Format::names()))?,
        ),
        None => None,
    };
    let mut params: HashMap<Format, SignParams> = HashMap::new();
    let mut items = Vec::new();
    for input in &a.inputs {
        let len = std::fs::metadata(input)
            .with_context(|| format!("open {}", input.display()))?
            .len();
        let ext = input.extension().and_then(|e| e.to_str());
        let format = match forced {
            Some(f) => f,
            None => files::detect_file(input, len, ext)
                .with_context(|| format!("{}", input.display()))?,
        };
        let p = match params.entry(format) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                if let Some(v) = &a.image_version {
                    if !v
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.' || c == '+')
                    {
                        anyhow::bail!("--image-version {v:?}: expected major.minor.revision+build");
                    }
                }
                let query = SignParamsQuery {
                    format: format.name().to_string(),
                    version: a.image_version.clone(),
                };
                let path =
                    client::with_query(&format!("/v1/products/{}/sign-params", a.product), &query)?;
                e.insert(client.get::<SignParams>(&path)?)
            }
        };
        let req = p.request(mode);
        let mut sha = Sha256::new();
        let plan =
            files::prepare_file_with(format, input, &req, RANDOM_ACCESS_LIMIT, |c| sha.update(c))
                .with_context(|| format!("{}", input.display()))?;
        items.push(LocalItem {
            name: input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into()),
            input_sha256: sha.finalize().into(),
            version: a.image_version.clone(),
            plan,
        });
    }
    let claims = BuildClaims {
        source_uri: a.source_uri.clone(),
        commit: a.commit.clone(),
        git_ref: a.git_ref.clone(),
        ci_run_url: a.ci_run_url.clone(),
        builder_id: a.builder_id.clone(),
    };
    let path = format!("/v1/products/{}/sign-digest", a.product);
    let mut failure: Option<anyhow::Error> = None;
    let signed = sign_remote(&items, &claims, |req: &DigestSignRequest| {
        client
            .post_json::<_, DigestSignResponse>(&path, req)
            .map_err(|e| {
                failure = Some(e);
                SendFailed
            })
    });
    let signed = match signed {
        Ok(s) => s,
        Err(RemoteError::Send(_)) => {
            return Err(failure.unwrap_or_else(|| anyhow!("request failed")))
        }
        Err(e) => return Err(e.into()),
    };

    let mut results = Vec::new();
    for ((input, item), rs) in a.inputs.iter().zip(&items).zip(signed) {
        let out = a
            .output
            .clone()
            .unwrap_or_else(|| default_output(input, a.detached));
        let plan = item.plan.as_ref();
        let doc = plan.detached(&rs.set)?.to_json();
        match mode {
            Mode::Detached => client::write_atomic(&out, doc.as_bytes())?,
            Mode::Embedded => {
                let parts = plan.embed(&rs.set)?;
                let mut tmp = client::temp_beside(&out)?;
                files::write_parts(&parts, input, tmp.as_file_mut())
                    .with_context(|| format!("write {}", out.display()))?;
                client::persist(tmp, &out)?;
                // Formats that cannot carry the PQ half (.efi) get the detached document too.
                if !plan.format().spec().carries_pq {
                    client::write_atomic(&names::detached_for(&out), doc.as_bytes())?;
                }
            }
        }
        let prov = provenance_output(&out, a.detached);
        if let Some(p) = &rs.provenance {
            client::write_atomic(&prov, p.as_bytes())?;
        }
        let algs: Vec<&str> = rs.set.signatures.iter().map(|s| s.alg.name()).collect();
        if !json {
            println!(
                "{} -> {} ({}, {}, {}) hashed locally",
                input.display(),
                out.display(),
                plan.format(),
                match mode {
                    Mode::Embedded => "embedded",
                    Mode::Detached => "detached",
                },
                algs.join(" + "),
            );
        }
        let (da, dv) = plan.digest();
        results.push(serde_json::json!({
            "input": input.display().to_string(),
            "format": plan.format(),
            "mode": mode,
            "hash_locally": true,
            "input_sha256": hex::encode(item.input_sha256),
            "digest": {"alg": da, "value": hex::encode(dv)},
            "signatures": rs.set.signatures.iter().map(|s| serde_json::json!({
                "alg": s.alg, "key_id": s.key_id.to_hex()
            })).collect::<Vec<_>>(),
            "output_file": out.display().to_string(),
            "provenance_file": rs.provenance.as_ref().map(|_| prov.display().to_string()),
        }));
    }
    Ok(serde_json::Value::Array(results))
}
