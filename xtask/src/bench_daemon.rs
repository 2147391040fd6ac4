//! The real release `fwseald` on a loopback port, driven by an in-process HTTP/1.1 client
//! (hyper, one connection per concurrent client): throughput, latency, peak RSS.

use anyhow::{bail, ensure, Result};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

pub use crate::appliance::{Appliance, PRODUCT, PRODUCT_EFI};

pub(crate) fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

pub(crate) async fn connect(addr: &str) -> Result<hyper::client::conn::http1::SendRequest<Body>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn post(
    sender: &mut hyper::client::conn::http1::SendRequest<Body>,
    addr: &str,
    token: &str,
    path: &str,
    len: u64,
    body: Body,
) -> Result<()> {
    sender.ready().await?;
    let req = hyper::Request::post(path)
        .header("host", addr)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/octet-stream")
        .header("content-length", len)
        .body(body)?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if status != hyper::StatusCode::CREATED {
        bail!(
            "POST {path}: {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(400)
                .collect::<String>()
        );
    }
    Ok(())
}

/// Throughput and latency of one load run.
pub struct Load {
    /// Completed requests.
    pub requests: usize,
    /// Images per second.
    pub per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

impl Load {
    /// Wait for the clients' latency lists (ms) and summarise them over the time since `start`.
    pub(crate) async fn gather(
        start: Instant,
        tasks: Vec<tokio::task::JoinHandle<Result<Vec<f64>>>>,
    ) -> Result<Load> {
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await??);
        }
        let elapsed = start.elapsed().as_secs_f64();
        lat.sort_by(|a, b| a.total_cmp(b));
        Ok(Load {
            requests: lat.len(),
            per_sec: lat.len() as f64 / elapsed,
            p50_ms: percentile(&lat, 0.50),
            p99_ms: percentile(&lat, 0.99),
        })
    }
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `concurrency` clients, each on its own keep-alive connection, POST images back to back for
/// `secs` seconds (after one warm-up request each). Every image differs: the 8 bytes at
/// `counter_at` carry a request counter, so nothing is deduplicated.
pub fn load(
    addr: &str,
    token: &str,
    path: &str,
    image: &[u8],
    counter_at: usize,
    concurrency: usize,
    secs: f64,
) -> Result<Load> {
    ensure!(counter_at + 8 <= image.len(), "counter outside the image");
    // The client gets one thread; the daemon keeps the rest of the machine.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let base = Bytes::copy_from_slice(image);
    rt.block_on(async move {
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos() as u64,
        ));
        let make = {
            let counter = counter.clone();
            move || {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut v = base.to_vec();
                v[counter_at..counter_at + 8].copy_from_slice(&n.to_le_bytes());
                Bytes::from(v)
            }
        };
        let mut senders = Vec::new();
        for _ in 0..concurrency {
            let mut s = connect(addr).await?;
            let b = make();
            post(&mut s, addr, token, path, b.len() as u64, full(b)).await?;
            senders.push(s);
        }
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for mut s in senders {
            let make = make.clone();
            let (addr, token, path) = (addr.to_string(), token.to_string(), path.to_string());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let b = make();
                    let t = Instant::now();
                    post(&mut s, &addr, &token, &path, b.len() as u64, full(b)).await?;
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                anyhow::Ok(lat)
            }));
        }
        Load::gather(start, tasks).await
    })
}

/// Stream the file at `file` as one upload (1 MiB frames read from disk, never whole in memory).
pub fn upload_file(addr: &str, token: &str, path: &str, file: &Path) -> Result<f64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let len = tokio::fs::metadata(file).await?.len();
        let f = tokio::fs::File::open(file).await?;
        let stream = futures_util::StreamExt::map(
            tokio_util::io::ReaderStream::with_capacity(f, 1 << 20),
            |r| r.map(Frame::data),
        );
        let body: Body = BodyExt::boxed(StreamBody::new(stream));
        let mut s = connect(addr).await?;
        let t = Instant::now();
        post(&mut s, addr, token, path, len, body).await?;
        Ok(t.elapsed().as_secs_f64())
    })
}

/// Wall time of one durable small-file write on the filesystem of `dir`, as the artifact store
/// does it (create, write 4 KiB, fsync, rename, fsync the directory), in microseconds.
pub fn durable_write_us(dir: &Path, n: usize) -> Result<f64> {
    use std::io::Write;
    let d = dir.join("fsync-probe");
    std::fs::create_dir_all(&d)?;
    let data = [0x5au8; 4096];
    let t = Instant::now();
    for i in 0..n {
        let tmp = d.join(format!("{i}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, d.join(format!("{i}")))?;
        std::fs::File::open(&d)?.sync_all()?;
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    std::fs::remove_dir_all(&d)?;
    Ok(us)
}
