//! Subcommands that talk to fwseald: sign, fetch, list, keys export.

use crate::client::{query_pairs, with_query, ApiError, Client};
use crate::names;
use anyhow::{bail, Context, Result};
use clap::Args;
use fwseal_api::{
    mode_name, ArtifactList, ArtifactListQuery, ArtifactView, BatchBody, BatchResponse, JobView,
    Links, Mode, ProductKeys, SignOutcome, SignQuery, SignResponse,
};
use std::path::{Path, PathBuf};

/// `fwseal sign`.
#[derive(Args)]
pub struct SignArgs {
    /// Product to sign for.
    #[arg(long, short = 'p')]
    pub product: String,
    /// Images to sign (several: one `sign-batch` request, one result each).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output file (only with a single input). Default: IN with `.signed` before the extension
    /// (embedded) or IN.sig.json (detached).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Return the signatures detached instead of embedding them.
    #[arg(long)]
    pub detached: bool,
    /// Override format detection (raw, mcuboot, ihex, dfu, efi).
    #[arg(long)]
    pub format: Option<String>,
    /// Image version (major.minor.revision+build).
    #[arg(long)]
    pub image_version: Option<String>,
    /// Build metadata (recorded in the provenance as client-asserted).
    #[arg(long)]
    pub source_uri: Option<String>,
    /// Source commit.
    #[arg(long)]
    pub commit: Option<String>,
    /// Source ref.
    #[arg(long = "ref")]
    pub git_ref: Option<String>,
    /// CI run URL.
    #[arg(long)]
    pub ci_run_url: Option<String>,
    /// CI builder id.
    #[arg(long)]
    pub builder_id: Option<String>,
    /// Compute the format-aware digest here and send only the digest (and the messages to
    /// sign) to the server; the signatures are embedded locally by the same format engine.
    /// All inputs go in one request (two for MCUboot embedded hybrid images).
    #[arg(long)]
    pub hash_locally: bool,
    /// For products that need approvals: wait until the job is signed (then fetch as usual),
    /// rejected or expired. Without it a pending job's id is printed and the exit code is 5.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds (exit 5; the job stays pending).
    #[arg(long, value_name = "SECS")]
    pub wait_timeout: Option<u64>,
    /// With --wait: seconds between polls.
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    pub poll_interval: u64,
    /// Also write each artifact's bundle (record, inclusion proof, signed tree head, timestamp
    /// tokens; for `fwseal verify --bundle`) next to the output: `OUT.bundle.json` (detached:
    /// `IN.bundle.json`).
    #[arg(long, conflicts_with = "hash_locally")]
    pub bundle: bool,
    /// Server URL (default: $FWSEAL_URL).
    #[arg(long)]
    pub url: Option<String>,
}

/// Download artifact `id`'s bundle (`GET /v1/artifacts/{id}/bundle`) to `out`, checking that
/// it is one.
pub(crate) fn write_bundle(client: &Client, id: &str, out: &Path) -> Result<()> {
    let path = format!("/v1/artifacts/{id}/bundle");
    let text = client.get_text(&path)?;
    serde_json::from_str::<fwseal_api::Bundle>(&text)
        .with_context(|| format!("unexpected answer to {path}"))?;
    crate::client::write_atomic(out, text.as_bytes())
}

/// Where `sign` writes its main output for `input` (see [`crate::names`]): the detached
/// document `IN.sig.json`, or the signed image `stem.signed.ext`.
pub(crate) fn default_output(input: &Path, detached: bool) -> PathBuf {
    if detached {
        names::detached_for(input)
    } else {
        names::signed_image_for(input)
    }
}

/// Where `sign` writes the provenance for its main output `out` (see [`crate::names`]): next to
/// the image the output is (`X.intoto.jsonl`), also in detached mode.
pub(crate) fn provenance_output(out: &Path, detached: bool) -> PathBuf {
    if detached {
        names::provenance_for_detached(out)
    } else {
        names::provenance_for(out)
    }
}

/// Sign each input; write the signed image (or detached document), the detached document where
/// the format cannot carry every signature (.efi's PQ half), and `OUT.intoto.jsonl`.
pub fn sign(a: &SignArgs, json: bool) -> Result<serde_json::Value> {
    if a.output.is_some() && a.inputs.len() > 1 {
        bail!("--output only works with one input");
    }
    let client = Client::from_env(a.url.as_deref())?;
    if a.hash_locally {
        return crate::hashlocal::sign(a, &client, json);
    }
    let mut results = Vec::new();
    let mut pending = Vec::new();
    let query = SignQuery {
        mode: Some(if a.detached {
            Mode::Detached
        } else {
            Mode::Embedded
        }),
        format: a.format.clone(),
        name: None,
        version: a.image_version.clone(),
        source_uri: a.source_uri.clone(),
        commit: a.commit.clone(),
        git_ref: a.git_ref.clone(),
        ci_run_url: a.ci_run_url.clone(),
        builder_id: a.builder_id.clone(),
    };
    // One image: `sign`. Several: one `sign-batch` request, one result per image.
    let answers: Vec<Result<SignOutcome, ApiError>> = if a.inputs.len() == 1 {
        let q = SignQuery {
            name: a.inputs[0]
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
            ..query
        };
        vec![Ok(client.post_file::<SignOutcome>(
            &format!("/v1/products/{}/sign", a.product),
            &query_pairs(&q)?,
            &a.inputs[0],
            json,
        )?)]
    } else {
        let r: BatchResponse = client.post_files(
            &format!("/v1/products/{}/sign-batch", a.product),
            &query_pairs(&query)?,
            &a.inputs,
            json,
        )?;
        let n = r.results.len();
        if n != a.inputs.len() {
            // The server stopped early (e.g. an unreadable part): report what it said.
            let last = r.results.last();
            let problem = last.and_then(|it| match &it.body {
                BatchBody::Problem(p) => Some(p),
                _ => None,
            });
            return Err(ApiError {
                status: last.map_or(400, |it| it.status),
                code: problem
                    .map_or("bad-request", |p| p.code.as_str())
                    .to_string(),
                detail: format!(
                    "batch answered {n} results for {} images: {}",
                    a.inputs.len(),
                    problem.map_or("", |p| p.detail.as_str())
                ),
            }
            .into());
        }
        r.results
            .into_iter()
            .map(|it| match it.body {
                BatchBody::Signed(s) if (200..300).contains(&it.status) => {
                    Ok(SignOutcome::Signed(s))
                }
                BatchBody::Pending(j) if (200..300).contains(&it.status) => {
                    Ok(SignOutcome::Pending(j))
                }
                BatchBody::Problem(p) => Err(ApiError::from_problem(it.status, &p)),
                // A success status with a problem body, or an error status without one.
                _ => Err(ApiError {
                    status: it.status,
                    code: "unknown".into(),
                    detail: String::new(),
                }),
            })
            .collect()
    };
    let mut failed = None;
    for (input, answer) in a.inputs.iter().zip(answers) {
        let outcome = match answer {
            Ok(r) => r,
            Err(e) => {
                eprintln!("fwseal: {}: {e}", input.display());
                failed.get_or_insert(e);
                continue;
            }
        };
        // `shown` is what --json prints for this image.
        let (resp, mut shown) = match outcome {
            SignOutcome::Signed(resp) => {
                let shown = serde_json::to_value(&resp)?;
                (*resp, shown)
            }
            SignOutcome::Pending(job) => {
                // 202: an M-of-N product; the image is a pending job.
                if !json {
                    crate::jobs::print_submitted(input, &job);
                }
                if !a.wait {
                    pending.push(serde_json::to_value(&job)?);
                    continue;
                }
                let id = job.id.clone();
                let Some(done) = crate::jobs::wait_signed(&client, &id, a, json)? else {
                    pending.push(serde_json::to_value(&job)?);
                    continue;
                };
                let art = done.artifact_id.clone().unwrap_or_default();
                let meta: ArtifactView = client.get(&format!("/v1/artifacts/{art}"))?;
                released(&art, &id, meta, &done)?
            }
        };
        let links = &resp.links;
        let out = a
            .output
            .clone()
            .unwrap_or_else(|| default_output(input, a.detached));
        if a.detached {
            client.download(&links.detached, &out, json)?;
        } else {
            client.download(&links.image, &out, json)?;
            // Formats that cannot carry the PQ half (.efi) get the detached document as well.
            if !resp.format.spec().carries_pq {
                client.download(&links.detached, &names::detached_for(&out), json)?;
            }
        }
        let prov = provenance_output(&out, a.detached);
        client.download(&links.provenance, &prov, json)?;
        if a.bundle {
            let b = if a.detached {
                names::bundle_for_detached(&out)
            } else {
                names::bundle_for(&out)
            };
            write_bundle(&client, &resp.artifact_id, &b)?;
            shown["bundle_file"] = serde_json::Value::String(b.display().to_string());
            if !json {
                println!("{} bundle -> {}", input.display(), b.display());
            }
        }
        if !json {
            let algs: Vec<&str> = resp.signatures.iter().map(|s| s.alg.name()).collect();
            println!(
                "{} -> {} ({}, {}{}{}) artifact {}{}",
                input.display(),
                out.display(),
                resp.format,
                mode_name(resp.mode),
                if algs.is_empty() { "" } else { ", " },
                algs.join(" + "),
                resp.artifact_id,
                if resp.approvers.is_empty() {
                    String::new()
                } else {
                    format!(", approved by {}", resp.approvers.join(", "))
                }
            );
        }
        shown["output_file"] = serde_json::Value::String(out.display().to_string());
        shown["provenance_file"] = serde_json::Value::String(prov.display().to_string());
        results.push(shown);
    }
    if let Some(e) = failed {
        // Every image that could be signed was written; the exit status reports the refusal.
        return Err(e.into());
    }
    if !pending.is_empty() {
        results.extend(pending);
        return Err(crate::client::PendingJobs(serde_json::Value::Array(results)).into());
    }
    Ok(serde_json::Value::Array(results))
}

/// A released job's result as a sign response, from the artifact's metadata and the signed
/// job, and what `--json` shows for it: the sign response without `signatures` (the metadata
/// has key ids, not algorithms), with `approvers` and the `job` id.
fn released(
    art: &str,
    job_id: &str,
    meta: ArtifactView,
    job: &JobView,
) -> Result<(SignResponse, serde_json::Value)> {
    let resp = SignResponse {
        artifact_id: art.to_string(),
        product: meta.product,
        format: meta.format,
        mode: meta.mode,
        input_sha256: meta.input_sha256,
        output_sha256: meta.output_sha256,
        digest: job.digest.clone(),
        signatures: Vec::new(),
        approvers: job.approvers(),
        links: Links::for_artifact(art),
    };
    let mut shown = serde_json::to_value(&resp)?;
    if let Some(o) = shown.as_object_mut() {
        o.remove("signatures");
        o.insert("approvers".into(), serde_json::json!(resp.approvers));
        o.insert("job".into(), serde_json::json!(job_id));
    }
    Ok((resp, shown))
}

/// `fwseal fetch`.
#[derive(Args)]
pub struct FetchArgs {
    /// Artifact id.
    pub id: String,
    /// Directory to write into.
    #[arg(long, short = 'o', default_value = ".")]
    pub dir: PathBuf,
    /// Also write the artifact's bundle (`fwseal-bundle/v1`: record, inclusion proof, signed
    /// tree head) to this file, for `fwseal verify --bundle`.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Server URL (default: $FWSEAL_URL).
    #[arg(long)]
    pub url: Option<String>,
}

/// Fetch an artifact into `dir` as `fwseal sign` would have written it, so that
/// `fwseal verify DIR/IMAGE` picks up exactly the right companions (see [`crate::names`]):
///
/// - embedded: the signed image `stem.signed.ext`, its provenance, and — only for formats that
///   cannot carry the PQ half (`.efi`) — its detached document. The detached document of an
///   embedded artifact otherwise describes the unsigned input, which is not fetched, so it is
///   not written (it stays available at `GET /v1/artifacts/{id}/detached`);
/// - detached: the unchanged image, `IMAGE.sig.json` and `IMAGE.intoto.jsonl`.
///
/// `stem.ext` is the input name recorded by the appliance (its last path component), or
/// `image.EXT` (the format's extension) for artifacts stored without one.
pub fn fetch(a: &FetchArgs, json: bool) -> Result<serde_json::Value> {
    let client = Client::from_env(a.url.as_deref())?;
    let meta: ArtifactView = client.get(&format!("/v1/artifacts/{}", a.id))?;
    std::fs::create_dir_all(&a.dir).with_context(|| format!("create {}", a.dir.display()))?;
    let ext = meta.format.spec().extensions[0];
    let input = match meta.name.as_deref().and_then(names::safe_file_name) {
        Some(n) if Path::new(&n).extension().is_some() => n,
        Some(n) => format!("{n}.{ext}"),
        None => format!("image.{ext}"),
    };
    let image = a.dir.join(match meta.mode {
        Mode::Detached => PathBuf::from(&input),
        Mode::Embedded => names::signed_image_for(Path::new(&input)),
    });
    client.download(&format!("/v1/artifacts/{}/image", a.id), &image, json)?;
    let doc = (meta.mode == Mode::Detached || !meta.format.spec().carries_pq)
        .then(|| names::detached_for(&image));
    if let Some(doc) = &doc {
        client.download(&format!("/v1/artifacts/{}/detached", a.id), doc, json)?;
    }
    let prov = names::provenance_for(&image);
    client.download(&format!("/v1/artifacts/{}/provenance", a.id), &prov, json)?;
    if let Some(out) = &a.bundle {
        write_bundle(&client, &a.id, out)?;
        if !json {
            println!("{}", out.display());
        }
    }
    if !json {
        println!("{}", image.display());
        if let Some(doc) = &doc {
            println!("{}", doc.display());
        }
        println!("{}", prov.display());
    }
    Ok(serde_json::json!({
        "artifact": meta, "image": image, "detached": doc, "provenance": prov,
        "bundle": a.bundle,
    }))
}

/// `fwseal list`.
#[derive(Args)]
pub struct ListArgs {
    /// Product.
    #[arg(long, short = 'p')]
    pub product: String,
    /// Only this image version.
    #[arg(long)]
    pub image_version: Option<String>,
    /// Only artifacts whose input or output has this sha256.
    #[arg(long)]
    pub digest: Option<String>,
    /// Created at or after (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Created at or before (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Server URL (default: $FWSEAL_URL).
    #[arg(long)]
    pub url: Option<String>,
}

/// List a product's artifacts.
pub fn list(a: &ListArgs, json: bool) -> Result<serde_json::Value> {
    let client = Client::from_env(a.url.as_deref())?;
    let query = ArtifactListQuery {
        version: a.image_version.clone(),
        digest: a.digest.clone(),
        since: a.since.clone(),
        until: a.until.clone(),
        limit: None,
    };
    let path = with_query(&format!("/v1/products/{}/artifacts", a.product), &query)?;
    let v: ArtifactList = client.get(&path)?;
    if !json {
        for x in &v.artifacts {
            println!(
                "{}  {}  {:<8} {:<8} {:<10} {}",
                x.id,
                x.created,
                x.format.name(),
                mode_name(x.mode),
                x.version.as_deref().unwrap_or("-"),
                // A client-supplied name: no control characters reach the terminal.
                x.name.as_deref().map_or_else(
                    || "-".to_string(),
                    |n| n
                        .chars()
                        .map(|c| if c.is_control() { '?' } else { c })
                        .collect()
                ),
            );
        }
    }
    Ok(serde_json::to_value(&v)?)
}

/// `fwseal keys export`.
#[derive(Args)]
pub struct KeysExportArgs {
    /// Product, or `fwseal-appliance` for the appliance's provenance keys (what `verify
    /// --provenance-key` and `audit verify -k` need; any authenticated client may fetch them).
    #[arg(long, short = 'p')]
    pub product: String,
    /// Directory to write the key files into.
    #[arg(long, short = 'o', default_value = ".")]
    pub dir: PathBuf,
    /// Server URL (default: $FWSEAL_URL).
    #[arg(long)]
    pub url: Option<String>,
}

/// Export a product's public material: SPKI PEM and DER, key ids, a C array for bootloader
/// sources, an imgtool-style public key, and the certificate where there is one.
pub fn keys_export(a: &KeysExportArgs, json: bool) -> Result<serde_json::Value> {
    let client = Client::from_env(a.url.as_deref())?;
    // The reserved name addresses the appliance's own provenance / checkpoint keys.
    let path = if a.product == fwseal_api::APPLIANCE {
        "/v1/appliance/keys".to_string()
    } else {
        format!("/v1/products/{}/keys", a.product)
    };
    let v: ProductKeys = client.get(&path)?;
    std::fs::create_dir_all(&a.dir)?;
    let mut written = Vec::new();
    for k in &v.keys {
        let alg = k.alg.name();
        let pem = k.spki_pem.as_str();
        let (_, der) =
            fwseal_crypto::verify::spki_pem_decode(pem).map_err(|e| anyhow::anyhow!("{e}"))?;
        let base = a.dir.join(format!("{}-{alg}", a.product));
        let w = |ext: &str, data: &[u8]| -> Result<PathBuf> {
            let p = base.with_extension(ext);
            std::fs::write(&p, data)?;
            Ok(p)
        };
        written.push(w("pem", pem.as_bytes())?);
        written.push(w("der", &der)?);
        written.push(w("keyid", format!("{}\n", k.key_id).as_bytes())?);
        written.push(w(
            "h",
            c_array(&format!("{}_{}", a.product, alg), &der).as_bytes(),
        )?);
        // imgtool getpub prints the key in the form MCUboot's keys.c expects: for ECDSA the SPKI
        // DER, for RSA the PKCS#1 RSAPublicKey.
        if alg.starts_with("ecdsa") || alg.starts_with("rsa") {
            let body = if alg.starts_with("rsa") {
                let spki = <spki::SubjectPublicKeyInfoOwned as der::Decode>::from_der(&der)?;
                spki.subject_public_key.raw_bytes().to_vec()
            } else {
                der.clone()
            };
            let var = if alg.starts_with("rsa") {
                "rsa_pub_key"
            } else {
                "ecdsa_pub_key"
            };
            written.push(w("mcuboot.c", imgtool_c(var, &body).as_bytes())?);
        }
    }
    if let Some(c) = &v.certificate_pem {
        let p = a.dir.join(format!("{}-cert.pem", a.product));
        std::fs::write(&p, c)?;
        written.push(p);
    }
    if !json {
        for p in &written {
            println!("{}", p.display());
        }
    }
    Ok(serde_json::json!({"product": a.product, "files": written}))
}

fn c_array(name: &str, der: &[u8]) -> String {
    let ident: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut s = format!(
        "/* {name}: DER SubjectPublicKeyInfo, {} bytes. Generated by fwseal keys export. */\n",
        der.len()
    );
    s.push_str(&format!("const unsigned char {ident}[] = {{"));
    for (i, b) in der.iter().enumerate() {
        if i % 12 == 0 {
            s.push_str("\n   ");
        }
        s.push_str(&format!(" 0x{b:02x},"));
    }
    s.push_str(&format!(
        "\n}};\nconst unsigned int {ident}_len = {};\n",
        der.len()
    ));
    s
}

fn imgtool_c(var: &str, body: &[u8]) -> String {
    let mut s = String::from(
        "/* Autogenerated by fwseal keys export, in the form of `imgtool getpub`. */\n\n",
    );
    s.push_str(&format!("const unsigned char {var}[] = {{"));
    for (i, b) in body.iter().enumerate() {
        if i % 8 == 0 {
            s.push_str("\n   ");
        }
        s.push_str(&format!(" 0x{b:02x},"));
    }
    s.push_str(&format!(
        "\n}};\nconst unsigned int {var}_len = {};\n",
        body.len()
    ));
    s
}
