//! `cargo xtask bench --only tsa`: the built-in RFC 3161 TSA (`POST /v1/tsa`) of the release
//! `fwseald` on a loopback port — replies per second and latency at concurrency 1 and 8, with
//! pre-built SHA-256 queries that ask for the certificate (`openssl ts -query -sha256 -cert`).

use crate::appliance::{Appliance, PRODUCT};
use crate::bench::Section;
use crate::bench_daemon::{connect, full, Load};
use anyhow::{bail, Result};
use bytes::Bytes;
use fwseal_crypto::DigestAlg;
use http_body_util::BodyExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Distinct pre-built queries cycled through by the clients.
const QUERIES: usize = 4096;

fn queries() -> Result<Vec<Bytes>> {
    (0..QUERIES)
        .map(|i| {
            let digest = DigestAlg::Sha256.hash(&(i as u64).to_le_bytes());
            fwseal_tsa::request_der(DigestAlg::Sha256, &digest, 0x5eed_0000 + i as u64, true)
                .map(Bytes::from)
                .map_err(crate::bench::e)
        })
        .collect()
}

async fn post(
    s: &mut hyper::client::conn::http1::SendRequest<crate::bench_daemon::Body>,
    addr: &str,
    token: &str,
    q: Bytes,
) -> Result<Bytes> {
    s.ready().await?;
    let req = hyper::Request::post("/v1/tsa")
        .header("host", addr)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/timestamp-query")
        .header("content-length", q.len())
        .body(full(q))?;
    let resp = s.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if status != hyper::StatusCode::OK {
        bail!("POST /v1/tsa: {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(body)
}

/// `concurrency` clients on keep-alive connections POST queries back to back for `secs`.
fn load(addr: &str, token: &str, qs: &[Bytes], concurrency: usize, secs: f64) -> Result<Load> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut senders = Vec::new();
        for (i, q) in qs.iter().take(concurrency).enumerate() {
            let mut s = connect(addr).await?;
            let reply = post(&mut s, addr, token, q.clone()).await?;
            if i == 0 {
                // One reply judged for what it is: a granted token over that query's imprint.
                let digest = DigestAlg::Sha256.hash(&0u64.to_le_bytes());
                fwseal_tsa::token_from_response(&reply, DigestAlg::Sha256, &digest, 0x5eed_0000)
                    .map_err(crate::bench::e)?;
            }
            senders.push(s);
        }
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for (k, mut s) in senders.into_iter().enumerate() {
            let qs: Vec<Bytes> = qs.to_vec();
            let (addr, token) = (addr.to_string(), token.to_string());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = k;
                while Instant::now() < deadline {
                    let q = qs[i % qs.len()].clone();
                    i += concurrency;
                    let t = Instant::now();
                    post(&mut s, &addr, &token, q).await?;
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                anyhow::Ok(lat)
            }));
        }
        Load::gather(start, tasks).await
    })
}

/// The "Built-in TSA" section.
pub fn section(fwseald: &Path, dir: &Path, secs: f64, out: &mut Vec<Section>) -> Result<()> {
    let a = Appliance::provision_products(fwseald, dir, &[PRODUCT])?;
    // Anonymous, so the second appliance's `[tsa]` client (which sends no token) can use it.
    a.append_config("[tsa_server]\npolicy_oid = \"1.3.6.1.4.1.55555.7.1\"\nanonymous = true")?;
    let d = a.start()?;
    let qs = queries()?;
    let mut sec = Section::new("Built-in TSA");
    for c in [1usize, 8] {
        let l = load(&d.addr, &a.token, &qs, c, secs)?;
        println!(
            "tsa c={c}: {:.0}/s p50 {:.2} ms p99 {:.2} ms ({} requests)",
            l.per_sec, l.p50_ms, l.p99_ms, l.requests
        );
        sec.row(
            format!(
                "concurrency {c}: granted replies/s ({} requests)",
                l.requests
            ),
            format!("{:.0} /s", l.per_sec),
        );
        sec.row(
            format!("concurrency {c}: p50 / p99 latency"),
            format!("{:.2} / {:.2} ms", l.p50_ms, l.p99_ms),
        );
    }
    signing_cost(fwseald, &a, &d.addr, dir, secs, &mut sec)?;
    sec.notes.push(format!(
        "`POST /v1/tsa` on the release daemon, ECDSA P-256 TSA key in SoftHSM2; {secs} s per \
         concurrency level after one warm-up request per connection, one keep-alive HTTP/1.1 \
         connection per client, the client on one thread of the same machine. {QUERIES} distinct \
         pre-built SHA-256 queries with certReq (as `openssl ts -query -sha256 -cert`), each with \
         its own nonce. Every reply is a granted token (one is checked), and every token's audit \
         record is committed (durably) before the reply is sent, so the figures include one \
         SQLite commit per token (group commit across concurrent requests)."
    ));
    out.push(sec);
    Ok(())
}

/// What timestamping adds to a signing: the same 64 KiB hybrid raw signings (image +
/// provenance, audit) on the TSA appliance itself (no `[tsa]`) and on a second appliance whose
/// `[tsa]` points at the first's built-in TSA (four tokens per signing: two image signatures, two
/// provenance signatures), same run, same machine.
fn signing_cost(
    fwseald: &Path,
    tsa: &Appliance,
    tsa_addr: &str,
    dir: &Path,
    secs: f64,
    sec: &mut Section,
) -> Result<()> {
    let signer_dir = dir.with_file_name("tsa-signer");
    let b = Appliance::provision_products(fwseald, &signer_dir, &[PRODUCT])?;
    let export = signer_dir.join("tsa-cert");
    crate::appliance::check(
        std::process::Command::new(fwseald)
            .arg("-c")
            .arg(tsa.config())
            .args(["keys", "export", "-p", "fwseal-tsa", "-o"])
            .arg(&export)
            .env("FWSEAL_LOG", "warn"),
    )?;
    let cert = export.join("fwseal-tsa-v1-cert.pem");
    b.append_config(&format!(
        "[tsa]\nurls = [\"http://{tsa_addr}/v1/tsa\"]\ntrusted_certs = [{:?}]\nmode = \"required\"",
        cert.display().to_string()
    ))?;
    let signer = b.start()?;
    let body = crate::bench_inputs::Prng::new(0x75a).bytes(64 << 10);
    let path = format!("/v1/products/{PRODUCT}/sign?format=raw&name=tsa-bench.bin");
    for c in [1usize, 8] {
        let without = crate::bench_daemon::load(tsa_addr, &tsa.token, &path, &body, 0, c, secs)?;
        let with = crate::bench_daemon::load(&signer.addr, &b.token, &path, &body, 0, c, secs)?;
        println!(
            "signing c={c}: without [tsa] {:.0}/s p50 {:.1} ms, with {:.0}/s p50 {:.1} ms",
            without.per_sec, without.p50_ms, with.per_sec, with.p50_ms
        );
        sec.row(
            format!("signing c={c}, 64 KiB hybrid + provenance: images/s without / with `[tsa]`"),
            format!(
                "{:.0} / {:.0} /s = {:.2}×",
                without.per_sec,
                with.per_sec,
                with.per_sec / without.per_sec
            ),
        );
        sec.row(
            format!("signing c={c}: p50 without / with `[tsa]` (added per signing)"),
            format!(
                "{:.1} / {:.1} ms (+{:.1} ms)",
                without.p50_ms,
                with.p50_ms,
                with.p50_ms - without.p50_ms
            ),
        );
    }
    drop(signer);
    let _ = std::fs::remove_dir_all(&signer_dir);
    Ok(())
}
