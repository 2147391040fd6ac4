//! Subcommands that talk to fwseald: sign, fetch, list, keys export.

use crate::client::Client;
use anyhow::{bail, Context, Result};
use clap::Args;
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
    /// Server URL (default: $FWSEAL_URL).
    #[arg(long)]
    pub url: Option<String>,
}

pub(crate) fn default_output(input: &Path, detached: bool) -> PathBuf {
    if detached {
        let mut s = input.as_os_str().to_owned();
        s.push(".sig.json");
        return PathBuf::from(s);
    }
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let name = match input.extension() {
        Some(e) => format!("{stem}.signed.{}", e.to_string_lossy()),
        None => format!("{stem}.signed"),
    };
    input.with_file_name(name)
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
    let mut q: Vec<(&str, String)> = vec![(
        "mode",
        if a.detached {
            "detached".into()
        } else {
            "embedded".into()
        },
    )];
    for (k, v) in [
        ("format", &a.format),
        ("version", &a.image_version),
        ("source_uri", &a.source_uri),
        ("commit", &a.commit),
        ("ref", &a.git_ref),
        ("ci_run_url", &a.ci_run_url),
        ("builder_id", &a.builder_id),
    ] {
        if let Some(v) = v {
            q.push((k, v.clone()));
        }
    }
    // One image: `sign`. Several: one `sign-batch` request, one result per image.
    let answers: Vec<Result<serde_json::Value, crate::client::ApiError>> = if a.inputs.len() == 1 {
        let mut q = q.clone();
        if let Some(n) = a.inputs[0].file_name() {
            q.push(("name", n.to_string_lossy().into_owned()));
        }
        vec![Ok(client.post_file(
            &format!("/v1/products/{}/sign", a.product),
            &q,
            &a.inputs[0],
            json,
        )?)]
    } else {
        let r = client.post_files(
            &format!("/v1/products/{}/sign-batch", a.product),
            &q,
            &a.inputs,
            json,
        )?;
        let items = r["results"].as_array().cloned().unwrap_or_default();
        if items.len() != a.inputs.len() {
            // The server stopped early (e.g. an unreadable part): report what it said.
            let last = items.last().cloned().unwrap_or_default();
            return Err(crate::client::ApiError {
                status: u16::try_from(last["status"].as_u64().unwrap_or(400)).unwrap_or(400),
                code: last["body"]["code"]
                    .as_str()
                    .unwrap_or("bad-request")
                    .to_string(),
                detail: format!(
                    "batch answered {} results for {} images: {}",
                    items.len(),
                    a.inputs.len(),
                    last["body"]["detail"].as_str().unwrap_or("")
                ),
            }
            .into());
        }
        items
            .into_iter()
            .map(|it| {
                let status = it["status"].as_u64().unwrap_or(0);
                if (200..300).contains(&status) {
                    Ok(it["body"].clone())
                } else {
                    Err(crate::client::ApiError {
                        status: u16::try_from(status).unwrap_or(0),
                        code: it["body"]["code"].as_str().unwrap_or("unknown").to_string(),
                        detail: it["body"]["detail"].as_str().unwrap_or("").to_string(),
                    })
                }
            })
            .collect()
    };
    let mut failed = None;
    for (input, answer) in a.inputs.iter().zip(answers) {
        let mut resp = match answer {
            Ok(r) => r,
            Err(e) => {
                eprintln!("fwseal: {}: {e}", input.display());
                failed.get_or_insert(e);
                continue;
            }
        };
        if resp["artifact_id"].is_null() && resp["state"] == "pending" {
            // 202: an M-of-N product; the image is a pending job.
            if !json {
                crate::jobs::print_submitted(input, &resp);
            }
            if !a.wait {
                pending.push(resp);
                continue;
            }
            let id = resp["id"].as_str().unwrap_or_default().to_string();
            let job = match crate::jobs::wait_signed(&client, &id, a, json)? {
                Some(j) => j,
                None => {
                    pending.push(resp);
                    continue;
                }
            };
            let art = job["artifact_id"].as_str().unwrap_or_default().to_string();
            let meta = client.get_json(&format!("/v1/artifacts/{art}"))?;
            let base = format!("/v1/artifacts/{art}");
            resp = serde_json::json!({
                "artifact_id": art,
                "product": meta["product"],
                "format": meta["format"],
                "mode": meta["mode"],
                "input_sha256": meta["input_sha256"],
                "output_sha256": meta["output_sha256"],
                "digest": job["digest"],
                "approvers": job["approvals"].as_array().into_iter().flatten()
                    .map(|x| x["approver"].clone()).collect::<Vec<_>>(),
                "job": id,
                "links": {
                    "self": base,
                    "image": format!("{base}/image"),
                    "detached": format!("{base}/detached"),
                    "provenance": format!("{base}/provenance"),
                },
            });
        }
        let links = &resp["links"];
        let out = a
            .output
            .clone()
            .unwrap_or_else(|| default_output(input, a.detached));
        if a.detached {
            client.download(links["detached"].as_str().unwrap_or_default(), &out, json)?;
        } else {
            client.download(links["image"].as_str().unwrap_or_default(), &out, json)?;
            // Formats that cannot carry the PQ half (.efi) get the detached document as well.
            let carries_pq = resp["format"]
                .as_str()
                .and_then(fwseal_formats::Format::from_name)
                .is_none_or(|f| f.spec().carries_pq);
            if !carries_pq {
                let mut d = out.as_os_str().to_owned();
                d.push(".sig.json");
                client.download(
                    links["detached"].as_str().unwrap_or_default(),
                    Path::new(&d),
                    json,
                )?;
            }
        }
        let mut prov = out.as_os_str().to_owned();
        prov.push(".intoto.jsonl");
        client.download(
            links["provenance"].as_str().unwrap_or_default(),
            Path::new(&prov),
            json,
        )?;
        if !json {
            let algs: Vec<String> = resp["signatures"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["alg"].as_str().map(str::to_string))
                .collect();
            let approvers: Vec<String> = resp["approvers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect();
            println!(
                "{} -> {} ({}, {}{}{}) artifact {}{}",
                input.display(),
                out.display(),
                resp["format"].as_str().unwrap_or("?"),
                resp["mode"].as_str().unwrap_or("?"),
                if algs.is_empty() { "" } else { ", " },
                algs.join(" + "),
                resp["artifact_id"].as_str().unwrap_or("?"),
                if approvers.is_empty() {
                    String::new()
                } else {
                    format!(", approved by {}", approvers.join(", "))
                }
            );
        }
        let mut r = resp.clone();
        r["output_file"] = serde_json::Value::String(out.display().to_string());
        r["provenance_file"] = serde_json::Value::String(PathBuf::from(prov).display().to_string());
        results.push(r);
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

/// `fwseal fetch`.
#[derive(Args)]
pub struct FetchArgs {
    /// Artifact id.
    pub id: String,
    /// Directory to write into.
    #[arg(long, short = 'o', default_value = ".")]
    pub dir: PathBuf,
    /// Server URL (default: $FWSEAL_URL).
    #[arg(long)]
    pub url: Option<String>,
}

/// Fetch an artifact's image, detached document and provenance.
pub fn fetch(a: &FetchArgs, json: bool) -> Result<serde_json::Value> {
    let client = Client::from_env(a.url.as_deref())?;
    let meta = client.get_json(&format!("/v1/artifacts/{}", a.id))?;
    std::fs::create_dir_all(&a.dir).with_context(|| format!("create {}", a.dir.display()))?;
    let name = meta["name"].as_str().unwrap_or("image").to_string();
    let safe = Path::new(&name)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let image = a.dir.join(if meta["mode"] == "detached" {
        safe.clone()
    } else {
        default_output(Path::new(&safe), false)
            .display()
            .to_string()
    });
    client.download(&format!("/v1/artifacts/{}/image", a.id), &image, json)?;
    let mut doc = image.as_os_str().to_owned();
    doc.push(".sig.json");
    client.download(
        &format!("/v1/artifacts/{}/detached", a.id),
        Path::new(&doc),
        json,
    )?;
    let mut prov = image.as_os_str().to_owned();
    prov.push(".intoto.jsonl");
    client.download(
        &format!("/v1/artifacts/{}/provenance", a.id),
        Path::new(&prov),
        json,
    )?;
    if !json {
        println!(
            "{}\n{}\n{}",
            image.display(),
            PathBuf::from(&doc).display(),
            PathBuf::from(&prov).display()
        );
    }
    Ok(
        serde_json::json!({"artifact": meta, "image": image, "detached": PathBuf::from(doc), "provenance": PathBuf::from(prov)}),
    )
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
    let mut q = Vec::new();
    for (k, v) in [
        ("version", &a.image_version),
        ("digest", &a.digest),
        ("since", &a.since),
        ("until", &a.until),
    ] {
        if let Some(v) = v {
            q.push(format!("{k}={}", urlencode(v)));
        }
    }
    let path = format!(
        "/v1/products/{}/artifacts{}{}",
        a.product,
        if q.is_empty() { "" } else { "?" },
        q.join("&")
    );
    let v = client.get_json(&path)?;
    if !json {
        for x in v["artifacts"].as_array().into_iter().flatten() {
            println!(
                "{}  {}  {:<8} {:<8} {:<10} {}",
                x["id"].as_str().unwrap_or("?"),
                x["created"].as_str().unwrap_or("?"),
                x["format"].as_str().unwrap_or("?"),
                x["mode"].as_str().unwrap_or("?"),
                x["version"].as_str().unwrap_or("-"),
                x["name"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(v)
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `fwseal keys export`.
#[derive(Args)]
pub struct KeysExportArgs {
    /// Product.
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
    let v = client.get_json(&format!("/v1/products/{}/keys", a.product))?;
    std::fs::create_dir_all(&a.dir)?;
    let mut written = Vec::new();
    for k in v["keys"].as_array().into_iter().flatten() {
        let alg = k["alg"].as_str().unwrap_or("key");
        let pem = k["spki_pem"].as_str().context("key without spki_pem")?;
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
        written.push(w(
            "keyid",
            format!("{}\n", k["key_id"].as_str().unwrap_or_default()).as_bytes(),
        )?);
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
    if let Some(c) = v["certificate_pem"].as_str() {
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
