//! The real release `fwseald` on a loopback port, driven by an in-process HTTP/1.1 client
//! (hyper, one connection per concurrent client): throughput, latency, peak RSS.

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type Body = BoxBody<Bytes, std::io::Error>;

/// Product names in the bench config.
pub const PRODUCT: &str = "bench";
/// The RSA-3072 (Authenticode) product.
pub const PRODUCT_EFI: &str = "bench-efi";

/// A provisioned appliance state directory (config, dev token, keys, client token).
pub struct Appliance {
    fwseald: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    /// The API token.
    pub token: String,
}

/// A running daemon; stopped (SIGTERM, then kill) on drop.
pub struct Running {
    child: Child,
    /// `host:port`.
    pub addr: String,
}

impl Running {
    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field (kB) of `/proc/<pid>/status`, e.g. `VmHWM`.
    pub fn status_kb(&self, field: &str) -> Result<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        s.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {field} in /proc/{}/status", self.pid()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn check(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("spawn {cmd:?}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(out.status.success(), "{cmd:?} failed: {text}");
    Ok(text)
}

impl Appliance {
    /// Write a config under `dir`, create a SoftHSM2 dev token and the products' keys
    /// (`fwseald keys create`), as `cargo xtask demo` does.
    pub fn provision(fwseald: &Path, dir: &Path) -> Result<Self> {
        Self::provision_products(fwseald, dir, &[PRODUCT, PRODUCT_EFI])
    }

    /// As [`Appliance::provision`], creating keys for `products` only.
    pub fn provision_products(fwseald: &Path, dir: &Path, products: &[&str]) -> Result<Self> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let token = format!("bench-{nanos:x}");
        let token_hash = fwseal_crypto::DigestAlg::Sha256.hash(token.as_bytes());
        let hash: String = token_hash.iter().map(|b| format!("{b:02x}")).collect();
        let config = dir.join("fwseal.toml");
        std::fs::write(
            &config,
            format!(
                r#"listen = "127.0.0.1:0"
state_dir = "{state}"
identity = "https://fwseal.bench/appliance"
max_upload_bytes = {max}
[hsm]
token_label = "fwseal-bench-daemon"
dev_token = true
[[product]]
name = "{PRODUCT}"
formats = ["raw", "mcuboot", "dfu"]
[[product]]
name = "{PRODUCT_EFI}"
formats = ["efi"]
classical = "rsa-pkcs1-sha256"
[[client]]
name = "bench"
token_sha256 = "{hash}"
roles = {{ "*" = ["submitter", "factory"] }}
"#,
                state = dir.join("state").display(),
                max = 2u64 << 30,
            ),
        )?;
        let cfg = config.to_string_lossy().into_owned();
        for p in products {
            check(
                Command::new(fwseald)
                    .args(["-c", &cfg, "keys", "create", "-p", p])
                    .env("FWSEAL_LOG", "warn"),
            )?;
        }
        Ok(Appliance {
            fwseald: fwseald.to_path_buf(),
            config,
            dir: dir.to_path_buf(),
            token,
        })
    }

    /// The state directory's parent (config, log, state).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The daemon binary.
    pub fn fwseald_path(&self) -> PathBuf {
        self.fwseald.clone()
    }

    /// Start `fwseald run` and wait for its address.
    pub fn start(&self) -> Result<Running> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("fwseald.log"))?;
        let mut child = Command::new(&self.fwseald)
            .arg("-c")
            .arg(&self.config)
            .arg("run")
            .env("FWSEAL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("start fwseald")?;
        let stdout = child.stdout.take().context("fwseald stdout")?;
        let mut running = Running {
            child,
            addr: String::new(),
        };
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        running.addr = line
            .trim()
            .strip_prefix("fwseald listening on ")
            .with_context(|| format!("fwseald did not report its address (got {line:?})"))?
            .to_string();
        Ok(running)
    }
}

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

async fn connect(addr: &str) -> Result<hyper::client::conn::http1::SendRequest<Body>> {
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
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
