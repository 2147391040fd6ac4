//! `fwseald` — the signing appliance daemon, and its host-side admin commands. Glue only: the
//! HTTP server is `fwseal-server`, keys are `fwseal-hsm`, storage is `fwseal-store`.
//!
//! Exit codes: 0 ok; 1 runtime failure; 2 invalid configuration or usage; 3 HSM unavailable
//! (module, token or PIN).
#![forbid(unsafe_code)]

mod hsm_keys;
mod registry;

use anyhow::{anyhow, bail, Result};
use clap::{Parser, Subcommand};
use fwseal_crypto::SigAlg;
use fwseal_hsm::{softhsm::DevToken, PinSource, Token, TokenConfig};
use fwseal_server::config::{Config, HsmConfig};
use fwseal_store::AuditLog;
use registry::{Registry, APPLIANCE, TSA};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "fwseald", version, about = "fwseal signing appliance daemon")]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        default_value = "/etc/fwseal/fwseal.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the API (sends READY=1 to systemd once the token is open and the port bound).
    Run,
    /// Validate the configuration and the token, then exit.
    Check,
    /// Key administration on the appliance host (talks to the token directly).
    #[command(subcommand)]
    Keys(KeysCmd),
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Create the first key version of a product (and the appliance keys, and with
    /// `[tsa_server]` the TSA key, if missing).
    Create {
        /// Product name from the config, or `fwseal-tsa` (the built-in TSA's key).
        #[arg(long, short = 'p')]
        product: String,
        /// RSA modulus size for RSA products.
        #[arg(long, default_value_t = 3072)]
        rsa_bits: u32,
    },
    /// Create a new key version; older versions stay available for verification.
    Rotate {
        /// Product.
        #[arg(long, short = 'p')]
        product: String,
        /// RSA modulus size for RSA products.
        #[arg(long, default_value_t = 3072)]
        rsa_bits: u32,
    },
    /// Retire a key version: it no longer signs.
    Retire {
        /// Product.
        #[arg(long, short = 'p')]
        product: String,
        /// Version to retire.
        #[arg(long)]
        version: u32,
    },
    /// List key versions, key ids and the signing (current) version.
    List,
    /// Write a PKCS#10 certificate signing request for the product's current classical key,
    /// to take to a CA (the CA-issued certificate then goes to `virt-fw-vars --add-db` etc.).
    Csr {
        /// Product.
        #[arg(long, short = 'p')]
        product: String,
        /// Subject common name (default: "fwseal <product>").
        #[arg(long)]
        cn: Option<String>,
        /// Output file (PEM).
        #[arg(long, short = 'o')]
        output: PathBuf,
    },
    /// Export a product's public material into a directory.
    Export {
        /// Product (or `fwseal-appliance` for the provenance keys, `fwseal-tsa` for the
        /// built-in TSA's key and certificate).
        #[arg(long, short = 'p')]
        product: String,
        /// Output directory.
        #[arg(long, short = 'o', default_value = ".")]
        dir: PathBuf,
    },
}

/// An error with a chosen exit code.
struct Exit(u8, anyhow::Error);

fn cfg_err(e: impl Into<anyhow::Error>) -> Exit {
    Exit(2, e.into())
}
fn hsm_err(e: impl Into<anyhow::Error>) -> Exit {
    Exit(3, e.into())
}

fn load_config(path: &Path) -> Result<Config, Exit> {
    Config::load(path).map_err(cfg_err)
}

/// Open the token the config names; with `dev_token`, create the SoftHSM2 token first.
fn open_token(cfg: &Config) -> Result<Token, Exit> {
    std::fs::create_dir_all(&cfg.state_dir)
        .map_err(|e| Exit(1, anyhow!("state dir {}: {e}", cfg.state_dir.display())))?;
    let tc = token_config(&cfg.hsm, &cfg.state_dir).map_err(hsm_err)?;
    Token::open(&tc).map_err(|e| hsm_err(anyhow!("{e}")))
}

fn token_config(h: &HsmConfig, state: &Path) -> Result<TokenConfig> {
    let mut tc = token_location(h, state)?;
    tc.max_sessions = h.max_sessions;
    tc.session_wait = std::time::Duration::from_secs(h.session_wait_secs);
    tc.retries = h.retries;
    Ok(tc)
}

fn token_location(h: &HsmConfig, state: &Path) -> Result<TokenConfig> {
    if h.dev_token {
        let mut d = DevToken::new(state);
        d.module = h.module.clone();
        d.label = h.token_label.clone();
        if let Some(p) = &h.pin_file {
            d.user_pin = PinSource::File(p.clone());
        }
        if let Some(v) = &h.pin_env {
            d.user_pin = PinSource::Env(v.clone());
        }
        return d.ensure().map_err(|e| anyhow!("{e}"));
    }
    let user_pin = match (&h.pin_env, &h.pin_file) {
        (Some(v), None) => PinSource::Env(v.clone()),
        (None, Some(p)) => PinSource::File(p.clone()),
        _ => bail!("[hsm] needs exactly one of pin_env or pin_file"),
    };
    Ok(TokenConfig {
        module: h.module.clone(),
        label: h.token_label.clone(),
        user_pin,
        pool_size: 4,
        max_sessions: TokenConfig::DEFAULT_MAX_SESSIONS,
        session_wait: TokenConfig::DEFAULT_SESSION_WAIT,
        retries: TokenConfig::DEFAULT_RETRIES,
    })
}

/// Make sure the appliance's own provenance/checkpoint keys exist.
fn ensure_appliance_keys(
    token: &Token,
    state: &Path,
    pq_keys: fwseal_server::config::PqKeys,
) -> Result<()> {
    let reg = Registry::load(state)?;
    if reg
        .products
        .get(APPLIANCE)
        .and_then(|p| p.current())
        .is_none()
    {
        let v = hsm_keys::create_version(
            token,
            state,
            APPLIANCE,
            Some(SigAlg::EcdsaP256Sha256),
            Some(SigAlg::MlDsa65),
            3072,
            pq_keys,
        )?;
        tracing::info!(
            version = v,
            "created the appliance provenance keys (ECDSA P-256 + ML-DSA-65)"
        );
    }
    Ok(())
}

/// With `[tsa_server]` configured, make sure the built-in TSA has a key and certificate.
/// Returns the version created, if one was.
fn ensure_tsa_key(token: &Token, cfg: &Config) -> Result<Option<u32>> {
    let Some(ts) = &cfg.tsa_server else {
        return Ok(None);
    };
    let reg = Registry::load(&cfg.state_dir)?;
    let has = reg
        .products
        .get(TSA)
        .and_then(|p| p.current())
        .is_some_and(|(_, v)| v.classical.is_some() && v.certificate_pem.is_some());
    if has {
        return Ok(None);
    }
    let v = create_tsa(token, cfg, ts)?;
    tracing::info!(
        version = v,
        "created the built-in TSA key (ECDSA P-256) and its certificate"
    );
    Ok(Some(v))
}

/// A new TSA key version with its certificate, audited as `key-create` / `key-rotate`.
fn create_tsa(
    token: &Token,
    cfg: &Config,
    ts: &fwseal_server::tsa_server::TsaServerConfig,
) -> Result<u32> {
    let v = hsm_keys::create_tsa_version(
        token,
        &cfg.state_dir,
        &ts.subject_cn(&cfg.identity),
        ts.certificate_days,
    )?;
    let reg = Registry::load(&cfg.state_dir)?;
    let key = reg
        .products
        .get(TSA)
        .and_then(|p| p.versions.get(&v))
        .and_then(|x| x.classical.as_ref())
        .map(|k| format!("{} {}", k.alg, k.key_id))
        .unwrap_or_default();
    audit_admin(
        cfg,
        if v == 1 {
            fwseal_store::Action::KeyCreate
        } else {
            fwseal_store::Action::KeyRotate
        },
        TSA,
        format!(
            "version {v}: {key}; TSA certificate CN={}, {} days",
            ts.subject_cn(&cfg.identity),
            ts.certificate_days
        ),
    )?;
    Ok(v)
}

/// Read the config file once, hash exactly those bytes and validate them; refuse changes that
/// only take effect at a restart. On failure the error and the hash of what was read.
fn reload(path: &Path, current: &Config) -> Result<(Config, String), (String, String)> {
    let bytes = std::fs::read(path).map_err(|e| {
        (
            format!("cannot read {}: {e}", path.display()),
            String::new(),
        )
    })?;
    let sha = hex::encode(fwseal_crypto::DigestAlg::Sha256.hash(&bytes));
    let text = String::from_utf8(bytes)
        .map_err(|_| (format!("{} is not UTF-8", path.display()), sha.clone()))?;
    let c = Config::parse(&text, path).map_err(|e| (e.to_string(), sha.clone()))?;
    let mut restart = Vec::new();
    if c.listen != current.listen {
        restart.push("listen");
    }
    if c.state_dir != current.state_dir {
        restart.push("state_dir");
    }
    let (a, b) = (&c.hsm, &current.hsm);
    if a.module != b.module
        || a.token_label != b.token_label
        || (a.max_sessions, a.session_wait_secs, a.retries)
            != (b.max_sessions, b.session_wait_secs, b.retries)
    {
        restart.push("hsm");
    }
    if c.tls.is_some() != current.tls.is_some() {
        restart.push("tls");
    }
    if c.http != current.http {
        restart.push("http");
    }
    // Turning the built-in TSA on may need its key created (done at start-up).
    if c.tsa_server.is_some() != current.tsa_server.is_some() {
        restart.push("tsa_server");
    }
    if !restart.is_empty() {
        return Err((
            format!("{} changed: these need a restart", restart.join(", ")),
            sha,
        ));
    }
    Ok((c, sha))
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn audit_admin(
    cfg: &Config,
    action: fwseal_store::Action,
    product: &str,
    reason: String,
) -> Result<()> {
    let store = fwseal_store::SqliteStore::open(cfg.state_dir.join("audit.db"))?;
    let mut e = fwseal_store::AuditEntry::new(
        now(),
        format!("host:{}", whoami()),
        action,
        fwseal_store::Decision::Allow,
    );
    e.product = Some(product.to_string());
    e.reason = Some(reason);
    store.append(&e)?;
    Ok(())
}

fn whoami() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "root".into())
}

fn keys_cmd(cfg: &Config, cmd: &KeysCmd) -> Result<(), Exit> {
    let state = &cfg.state_dir;
    match cmd {
        KeysCmd::Create { product, .. } | KeysCmd::Rotate { product, .. } if product == TSA => {
            let ts = cfg.tsa_server.as_ref().ok_or_else(|| {
                cfg_err(anyhow!(
                    "the built-in TSA is not configured: add a [tsa_server] section first"
                ))
            })?;
            let token = open_token(cfg)?;
            ensure_appliance_keys(&token, state, cfg.hsm.pq_keys).map_err(|e| Exit(1, e))?;
            let reg = Registry::load(state).map_err(|e| Exit(1, e))?;
            let exists = reg.products.get(TSA).and_then(|k| k.current()).is_some();
            if matches!(cmd, KeysCmd::Create { .. }) && exists {
                return Err(Exit(
                    1,
                    anyhow!("{TSA} already has a key; use `fwseald keys rotate -p {TSA}`"),
                ));
            }
            let v = create_tsa(&token, cfg, ts).map_err(|e| Exit(1, e))?;
            println!("{TSA}: key version {v} (ECDSA P-256, TSA certificate)");
            Ok(())
        }
        KeysCmd::Create { product, rsa_bits } | KeysCmd::Rotate { product, rsa_bits } => {
            let p = cfg
                .product(product)
                .ok_or_else(|| cfg_err(anyhow!("product {product:?} is not in the config")))?;
            let token = open_token(cfg)?;
            ensure_appliance_keys(&token, state, cfg.hsm.pq_keys).map_err(|e| Exit(1, e))?;
            ensure_tsa_key(&token, cfg).map_err(|e| Exit(1, e))?;
            let reg = Registry::load(state).map_err(|e| Exit(1, e))?;
            let exists = reg
                .products
                .get(product)
                .and_then(|k| k.current())
                .is_some();
            if matches!(cmd, KeysCmd::Create { .. }) && exists {
                return Err(Exit(
                    1,
                    anyhow!("product {product} already has keys; use `fwseald keys rotate`"),
                ));
            }
            let v = hsm_keys::create_version(
                &token,
                state,
                product,
                p.classical_alg(),
                p.pq_alg(),
                *rsa_bits,
                cfg.hsm.pq_keys,
            )
            .map_err(|e| Exit(1, e))?;
            let reg = Registry::load(state).map_err(|e| Exit(1, e))?;
            let ver = reg
                .products
                .get(product)
                .and_then(|k| k.versions.get(&v))
                .cloned()
                .unwrap_or_default();
            let ids: Vec<String> = [ver.classical, ver.pq]
                .into_iter()
                .flatten()
                .map(|k| format!("{} {}", k.alg, k.key_id))
                .collect();
            audit_admin(
                cfg,
                if matches!(cmd, KeysCmd::Create { .. }) {
                    fwseal_store::Action::KeyCreate
                } else {
                    fwseal_store::Action::KeyRotate
                },
                product,
                format!("version {v}: {}", ids.join(", ")),
            )
            .map_err(|e| Exit(1, e))?;
            println!("{product}: key version {v}");
            for i in ids {
                println!("  {i}");
            }
            Ok(())
        }
        KeysCmd::Retire { product, version } => {
            hsm_keys::retire(state, product, *version).map_err(|e| Exit(1, e))?;
            audit_admin(
                cfg,
                fwseal_store::Action::KeyRetire,
                product,
                format!("version {version} retired"),
            )
            .map_err(|e| Exit(1, e))?;
            println!("{product}: version {version} retired");
            Ok(())
        }
        KeysCmd::List => {
            let reg = Registry::load(state).map_err(|e| Exit(1, e))?;
            for (name, pk) in &reg.products {
                let cur = pk.current().map(|(n, _)| n);
                for (n, v) in &pk.versions {
                    let mark = if Some(*n) == cur {
                        "current"
                    } else if v.retired {
                        "retired"
                    } else {
                        ""
                    };
                    for k in [&v.classical, &v.pq].into_iter().flatten() {
                        println!(
                            "{name:<20} v{n:<3} {mark:<8} {:<18} {} {}",
                            k.alg.name(),
                            k.key_id,
                            k.pq_mode.as_deref().unwrap_or("")
                        );
                    }
                }
            }
            Ok(())
        }
        KeysCmd::Csr {
            product,
            cn,
            output,
        } => {
            let reg = Registry::load(state).map_err(|e| Exit(1, e))?;
            let (version, v) = reg
                .products
                .get(product)
                .and_then(|k| k.current())
                .ok_or_else(|| Exit(1, anyhow!("product {product} has no current key version")))?;
            let entry = v
                .classical
                .as_ref()
                .ok_or_else(|| Exit(1, anyhow!("product {product} has no classical key")))?;
            // RSA keys sign the CSR with PKCS#1 v1.5 (what CAs expect); ECDSA as is.
            let alg = match entry.alg {
                SigAlg::RsaPssSha256 => SigAlg::RsaPkcs1Sha256,
                a => a,
            };
            let token = open_token(cfg)?;
            let pid = fwseal_hsm::ProductId::new(product).map_err(|e| Exit(1, anyhow!("{e}")))?;
            let signer = fwseal_hsm::HsmSigner::open(&token, &pid, version, alg)
                .map_err(|e| hsm_err(anyhow!("{e}")))?;
            let name = cn.clone().unwrap_or_else(|| format!("fwseal {product}"));
            let der = fwseal_crypto::cert::csr(&signer, &name).map_err(|e| Exit(1, e.into()))?;
            std::fs::write(
                output,
                fwseal_crypto::verify::pem_encode("CERTIFICATE REQUEST", &der),
            )
            .map_err(|e| Exit(1, e.into()))?;
            audit_admin(
                cfg,
                fwseal_store::Action::KeyCsr,
                product,
                format!("CSR for version {version} ({alg}), CN={name}"),
            )
            .map_err(|e| Exit(1, e))?;
            println!("{}", output.display());
            Ok(())
        }
        KeysCmd::Export { product, dir } => {
            let reg = Registry::load(state).map_err(|e| Exit(1, e))?;
            let pk = reg
                .products
                .get(product)
                .ok_or_else(|| Exit(1, anyhow!("no keys for product {product}")))?;
            std::fs::create_dir_all(dir).map_err(|e| Exit(1, e.into()))?;
            for (n, v) in &pk.versions {
                for k in [&v.classical, &v.pq].into_iter().flatten() {
                    let p = dir.join(format!("{product}-v{n}-{}.pem", k.alg.name()));
                    std::fs::write(&p, &k.spki_pem).map_err(|e| Exit(1, e.into()))?;
                    println!("{}  {}", p.display(), k.key_id);
                }
                if let Some(c) = &v.certificate_pem {
                    let p = dir.join(format!("{product}-v{n}-cert.pem"));
                    std::fs::write(&p, c).map_err(|e| Exit(1, e.into()))?;
                    println!("{}", p.display());
                }
            }
            Ok(())
        }
    }
}

fn check(cfg_path: &Path) -> Result<(), Exit> {
    let cfg = load_config(cfg_path)?;
    let token = open_token(&cfg)?;
    let h = token.health();
    if !h.ok() {
        return Err(hsm_err(anyhow!(
            "token {}: {}",
            cfg.hsm.token_label,
            h.detail.unwrap_or_default()
        )));
    }
    let reg = Registry::load(&cfg.state_dir).map_err(|e| Exit(1, e))?;
    // Say plainly where each product's post-quantum private key lives.
    for (name, pk) in &reg.products {
        if let Some(k) = pk.current().and_then(|(_, v)| v.pq.as_ref()) {
            tracing::info!(
                product = %name,
                alg = %k.alg,
                pq_keys = k.pq_mode.as_deref().unwrap_or("wrapped-seed"),
                "post-quantum key: {}",
                if k.pq_mode.as_deref() == Some("native") {
                    "key pair inside the token (PKCS#11 3.2)"
                } else {
                    "seed wrapped under the product KEK, unwrapped per signature"
                }
            );
        }
    }
    for p in &cfg.products {
        if reg
            .products
            .get(&p.name)
            .and_then(|k| k.current())
            .is_none()
        {
            println!(
                "warning: product {} has no keys yet (`fwseald keys create -p {}`)",
                p.name, p.name
            );
        }
    }
    if cfg.tsa_server.is_some() && reg.products.get(TSA).and_then(|k| k.current()).is_none() {
        println!(
            "warning: [tsa_server] is configured but {TSA} has no key yet \
             (`fwseald run` creates it, or `fwseald keys create -p {TSA}`)"
        );
    }
    println!(
        "config {} OK; token {:?} reachable and logged in",
        cfg_path.display(),
        cfg.hsm.token_label
    );
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is *called*, not when
/// the future is first polled: a SIGTERM that arrives right after "listening" is printed must
/// shut down cleanly (final checkpoint, denial summary), not kill the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
        tracing::info!("shutting down: draining in-flight requests");
    }
}

/// The state directory's lock file (held by a running daemon; holds its pid).
const LOCK_FILE: &str = "fwseald.lock";

/// Take the exclusive lock on `state_dir` for this process's lifetime (the returned file keeps
/// it; the kernel releases it when the process exits, even on `kill -9`). Start-up empties the
/// spool, fails interrupted jobs and recovers the blob store — all of which would destroy a
/// running daemon's in-flight work — so a second daemon on the same state directory must not
/// get that far. `fwseald keys …` does not take it: it touches the token and the key registry,
/// not the spool, jobs or blob store, and rotating keys while the daemon serves is supported.
fn lock_state_dir(state_dir: &Path) -> Result<std::fs::File, Exit> {
    use std::io::{Read as _, Seek as _, Write as _};
    std::fs::create_dir_all(state_dir)
        .map_err(|e| Exit(1, anyhow!("state dir {}: {e}", state_dir.display())))?;
    let path = state_dir.join(LOCK_FILE);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Exit(1, anyhow!("lock file {}: {e}", path.display())))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (pid {pid})"),
            };
            return Err(Exit(
                1,
                anyhow!(
                    "state dir {} is in use by another fwseald{holder}: lock {} is held; \
                     one daemon per state directory",
                    state_dir.display(),
                    path.display()
                ),
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(Exit(1, anyhow!("locking {}: {e}", path.display())));
        }
    }
    let pid = std::process::id();
    f.set_len(0)
        .and_then(|()| f.rewind())
        .and_then(|()| writeln!(f, "{pid}"))
        .and_then(|()| f.sync_all())
        .map_err(|e| Exit(1, anyhow!("lock file {}: {e}", path.display())))?;
    Ok(f)
}

fn run(cfg_path: &Path) -> Result<(), Exit> {
    let cfg = load_config(cfg_path)?;
    // Before anything touches the state (token, spool, jobs, blob recovery); held until exit.
    let _state_lock = lock_state_dir(&cfg.state_dir)?;
    let tls = match &cfg.tls {
        Some(t) => Some(fwseal_server::tls::load_tls(t).map_err(cfg_err)?),
        None => None,
    };
    let token = open_token(&cfg)?;
    ensure_appliance_keys(&token, &cfg.state_dir, cfg.hsm.pq_keys).map_err(|e| Exit(1, e))?;
    ensure_tsa_key(&token, &cfg).map_err(|e| Exit(1, e))?;
    let reg = Registry::load(&cfg.state_dir).map_err(|e| Exit(1, e))?;
    for p in &cfg.products {
        if reg
            .products
            .get(&p.name)
            .and_then(|k| k.current())
            .is_none()
        {
            tracing::warn!(product = %p.name, "product has no keys yet; signing requests will fail until `fwseald keys create`");
        }
    }
    let store = Arc::new(
        fwseal_store::SqliteStore::open(cfg.state_dir.join("audit.db"))
            .map_err(|e| Exit(1, e.into()))?,
    );
    let keys = Arc::new(hsm_keys::HsmKeys::new(token, cfg.state_dir.clone()));
    let listen = cfg.listen;
    let interval = cfg.checkpoint_interval_secs.max(1);
    let state = Arc::new(
        fwseal_server::AppState::new(cfg, keys.clone(), store.clone())
            .map_err(|e| Exit(1, e.into()))?,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit(1, e.into()))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Exit(1, anyhow!("bind {listen}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| Exit(1, e.into()))?;
        // Every signal handler is installed before anyone is told we listen (SIGHUP's default
        // action would otherwise kill a daemon reloaded right after start).
        let shutdown = shutdown_signal();
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        tracing::info!(%addr, "fwseald listening");
        // Tests and scripts read the bound address (listen = 127.0.0.1:0 picks a free port).
        println!("fwseald listening on {addr}");
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

        // SIGHUP: reload and validate the config; keep the old one if the new one is invalid.
        let st = state.clone();
        let path = cfg_path.to_path_buf();
        tokio::spawn(async move {
            let Ok(mut hup) = hup else {
                return;
            };
            while hup.recv().await.is_some() {
                let (decision, reason, sha) = match reload(&path, &st.config()) {
                    Ok((c, sha)) => {
                        st.replace_config(c);
                        (
                            fwseal_store::Decision::Allow,
                            format!("config reloaded, sha256 {sha}"),
                            sha,
                        )
                    }
                    Err((e, sha)) => (
                        fwseal_store::Decision::Deny,
                        format!("config reload rejected (old config kept): {e}"),
                        sha,
                    ),
                };
                tracing::info!(%reason, "SIGHUP");
                let st = st.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    st.record_config_reload(decision, reason, &sha)
                })
                .await;
            }
        });

        // Periodic signed audit checkpoints, each with its signed tree head (and one at
        // shutdown).
        let st = state.clone();
        let checkpointer = tokio::spawn(async move {
            let mut t = tokio::time::interval(std::time::Duration::from_secs(interval));
            t.tick().await;
            loop {
                t.tick().await;
                let st = st.clone();
                let _ = tokio::task::spawn_blocking(move || checkpoint(&st)).await;
            }
        });
        // Summaries of anonymous denials: written when their interval ends (checked every few
        // seconds) and at shutdown.
        let st = state.clone();
        let denials = tokio::spawn(async move {
            let mut t = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                t.tick().await;
                let st = st.clone();
                let _ = tokio::task::spawn_blocking(move || st.flush_denials(false)).await;
            }
        });
        let last = state.clone();
        let at_exit = state.clone();
        let served = match tls {
            Some(tls) => fwseal_server::tls::run_tls(listener, state, tls, shutdown).await,
            None => fwseal_server::run(listener, state, shutdown).await,
        };
        denials.abort();
        let _ = tokio::task::spawn_blocking(move || last.flush_denials(true)).await;
        checkpointer.abort();
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        let _ = tokio::task::spawn_blocking(move || checkpoint(&at_exit)).await;
        served.map_err(|e| Exit(1, e.into()))
    })
}

fn checkpoint(state: &fwseal_server::AppState) {
    match state.checkpoint_now() {
        Ok(_) => tracing::debug!("audit checkpoint and tree head signed"),
        Err(e) => tracing::warn!(error = %e, "audit checkpoint failed"),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FWSEAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::Run => run(&cli.config),
        Cmd::Check => check(&cli.config),
        Cmd::Keys(k) => load_config(&cli.config).and_then(|c| keys_cmd(&c, k)),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit(code, e)) => {
            eprintln!("fwseald: {e:#}");
            ExitCode::from(code)
        }
    }
}
