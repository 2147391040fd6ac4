//! The appliance configuration: one TOML file (`hsm-config/fwseal.toml` is the documented
//! example). [`Config::load`] parses and validates everything; the daemon refuses to start on
//! any error, and a SIGHUP reload keeps the old config if the new one is invalid.

use fwseal_crypto::{Family, SigAlg};
use fwseal_formats::mcuboot::{PublicKeyFormat, Slot};
use fwseal_formats::{Format, ImageVersion, Mode, SignOptions};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors found while loading or validating a config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// TOML syntax or schema error.
    #[error("config {path}: {message}")]
    Parse {
        /// Path.
        path: PathBuf,
        /// Message from the TOML parser (names the line and key).
        message: String,
    },
    /// A semantic error.
    #[error("config: {0}")]
    Invalid(String),
}

/// Top-level configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Plain HTTP is only allowed on loopback.
    pub listen: SocketAddr,
    /// State directory: SQLite audit log, artifact store, dev token.
    pub state_dir: PathBuf,
    /// Appliance identity: the SLSA `builder.id` written in provenance.
    pub identity: String,
    /// Largest accepted upload, bytes (default 1 GiB).
    #[serde(default = "default_max_upload")]
    pub max_upload_bytes: u64,
    /// Largest .hex / .efi image (they need random access and are held in memory), bytes.
    #[serde(default = "default_random_access_limit")]
    pub max_random_access_bytes: u64,
    /// How often to sign an audit checkpoint, seconds (also at shutdown).
    #[serde(default = "default_checkpoint_secs")]
    pub checkpoint_interval_secs: u64,
    /// The transparency log's origin (first line of every signed tree head, and the note
    /// key name): a valid note key name. Default: `fwseal.invalid/audit/<first 16 hex of the
    /// appliance's ECDSA key id>` (`fwseal_store::tree::default_origin`).
    #[serde(default)]
    pub log_origin: Option<String>,
    /// On-demand tree heads (a proof or bundle newer than the newest one) are signed at most
    /// once per this many milliseconds (default 1000).
    #[serde(default = "default_log_checkpoint_ms")]
    pub log_checkpoint_min_interval_ms: u64,
    /// Unauthenticated requests are audited as one full record per interval plus one summary
    /// record (count, bounded sample) of the others, seconds (default 60; 0 records each).
    #[serde(default = "default_denial_summary_secs")]
    pub anonymous_denial_summary_secs: u64,
    /// TLS (rustls). Without it the listener must be a loopback address.
    pub tls: Option<TlsConfig>,
    /// Listener limits: connections, timeouts, rate limits (`[http]`; defaults without it).
    #[serde(default)]
    pub http: HttpConfig,
    /// The HSM.
    pub hsm: HsmConfig,
    /// Products.
    #[serde(default, rename = "product")]
    pub products: Vec<ProductConfig>,
    /// API clients.
    #[serde(default, rename = "client")]
    pub clients: Vec<ClientConfig>,
    /// OIDC workload and human identities (`[[oidc.issuers]]`, `[[oidc.rules]]`; see
    /// [`crate::oidc`]). Without it only static API tokens authenticate.
    #[serde(default)]
    pub oidc: crate::oidc::OidcConfig,
    /// RFC 3161 timestamps over every signature (`[tsa]`; see [`crate::tsa`]). Without it no
    /// timestamps are obtained.
    pub tsa: Option<crate::tsa::TsaConfig>,
    /// The built-in RFC 3161 Time-Stamping Authority (`[tsa_server]`; see
    /// [`crate::tsa_server`]). Without it `POST /v1/tsa` and `GET /v1/tsa/certificate` are
    /// `404`.
    pub tsa_server: Option<crate::tsa_server::TsaServerConfig>,
}

fn default_max_upload() -> u64 {
    1 << 30
}
fn default_random_access_limit() -> u64 {
    256 << 20
}
fn default_checkpoint_secs() -> u64 {
    300
}
fn default_log_checkpoint_ms() -> u64 {
    1000
}
fn default_denial_summary_secs() -> u64 {
    60
}

/// `[http]`: what one client may cost the listener. Read at start-up (a change needs a
/// restart). Defaults are documented in `hsm-config/fwseal.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Most TCP connections served at once; further connections wait in the kernel's accept
    /// backlog until one closes (default 256).
    pub max_connections: usize,
    /// Most TCP connections served at once from one source (an IPv4 address, or an IPv6 /64);
    /// a further connection from it is closed at once (default 64).
    pub max_connections_per_ip: usize,
    /// A request head (request line + headers, also the next request on a kept-alive
    /// connection, and the TLS handshake) must arrive within this, seconds (default 10).
    pub header_read_timeout_secs: u64,
    /// Longest pause while a request body is being read, seconds (default 30).
    pub body_idle_timeout_secs: u64,
    /// A request (head, body and the appliance's answer) must complete within this, seconds
    /// (default 900). Streaming a download after the answer has started is not bounded.
    pub request_timeout_secs: u64,
    /// Token bucket per source IP address, over every request (default 200/s, burst 400).
    pub per_ip: RateLimit,
    /// Token bucket per authenticated client (default 100/s, burst 200).
    pub per_client: RateLimit,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_connections: 256,
            max_connections_per_ip: 64,
            header_read_timeout_secs: 10,
            body_idle_timeout_secs: 30,
            request_timeout_secs: 900,
            per_ip: RateLimit {
                per_second: 200,
                burst: 400,
            },
            per_client: RateLimit {
                per_second: 100,
                burst: 200,
            },
        }
    }
}

/// A token bucket: `per_second` requests refill per second, up to `burst` at once.
/// `per_second = 0` turns the limit off.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second (0 = no limit).
    pub per_second: u32,
    /// Bucket size: requests allowed at once after a quiet period (at least 1; default =
    /// `per_second`).
    #[serde(default)]
    pub burst: u32,
}

/// TLS settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// If set, clients must present a certificate issued by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// HSM settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    /// PKCS#11 module path.
    #[serde(default = "default_module")]
    pub module: PathBuf,
    /// Token label (the slot is found by label).
    #[serde(default = "default_token_label")]
    pub token_label: String,
    /// Environment variable holding the user PIN.
    pub pin_env: Option<String>,
    /// File holding the user PIN (first line).
    pub pin_file: Option<PathBuf>,
    /// Create a SoftHSM2 dev token under `state_dir/softhsm` if it does not exist.
    #[serde(default)]
    pub dev_token: bool,
    /// How new post-quantum keys are created: `auto` (default: native where the token
    /// implements PKCS#11 3.2 ML-DSA/SLH-DSA, wrapped seed otherwise), `native`, `wrapped-seed`.
    #[serde(default)]
    pub pq_keys: PqKeys,
    /// Most token operations in flight at once (default 32; 0 = no limit).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// How long a signing request waits for a token session when `max_sessions` are busy
    /// before it fails with `503 hsm-unavailable`, seconds (default 10).
    #[serde(default = "default_session_wait")]
    pub session_wait_secs: u64,
    /// How often an operation that lost its session (token removed, logged out, device
    /// error) is retried on a fresh session, the token found again by label (default 1).
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_max_sessions() -> usize {
    32
}
fn default_session_wait() -> u64 {
    10
}
fn default_retries() -> u32 {
    1
}

/// How post-quantum keys are held (see the HSM section of the README).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PqKeys {
    /// Native if the token supports the algorithm, else wrapped seed.
    #[default]
    Auto,
    /// Key pairs inside the token (PKCS#11 3.2); fails on tokens without it.
    Native,
    /// Seed generated by the token, stored wrapped under a per-product KEK.
    WrappedSeed,
}

fn default_module() -> PathBuf {
    PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
}
fn default_token_label() -> String {
    "fwseal".into()
}

/// Which signature halves a product requires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Classical + post-quantum (default).
    #[default]
    Hybrid,
    /// Classical only (legacy devices).
    ClassicalOnly,
    /// Post-quantum only.
    PqOnly,
}

/// One product.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductConfig {
    /// Product id (also the key namespace in the HSM).
    pub name: String,
    /// Formats this product accepts (`raw`, `mcuboot`, `ihex`, `dfu`, `efi`); empty = all.
    #[serde(default)]
    pub formats: Vec<String>,
    /// Classical algorithm (default `ecdsa-p256-sha256`).
    pub classical: Option<SigAlg>,
    /// Post-quantum algorithm (default `ml-dsa-65`).
    pub pq: Option<SigAlg>,
    /// Which halves are required.
    #[serde(default)]
    pub policy: Policy,
    /// Default mode when the request does not say.
    #[serde(default = "default_mode")]
    pub default_mode: Mode,
    /// Format options (HEX signature address, fill byte, DfuSe address, raw digest...).
    #[serde(default)]
    pub options: ProductOptions,
    /// M-of-N approval policy. Without it, requests are signed immediately.
    pub approvals: Option<ApprovalPolicy>,
    /// Refuse static API tokens for submitting to and approving (or rejecting) jobs of this
    /// product: only OIDC-authenticated identities may make or release its signatures
    /// (`403 oidc-required`, audited). Reads (factory, auditor) keep working with static
    /// tokens: they create no signature.
    #[serde(default)]
    pub require_oidc: bool,
}

/// `approvals = { required = M, of_role = "release-approver", expires_after_secs = S,
/// key_versions = [..] }`: a sign request becomes a pending job that needs M distinct
/// approvals by clients holding `of_role` on the product (admins included), never the
/// requester's own.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    /// M: distinct approvals needed (≥ 1).
    pub required: u32,
    /// The role approvers must hold on the product.
    #[serde(default = "default_approver_role")]
    pub of_role: Role,
    /// A pending job expires this long after submission (default 7 days).
    #[serde(default = "default_job_expiry")]
    pub expires_after_secs: u64,
    /// Only requests that would sign with one of these key versions need approval (empty:
    /// every version). Lets a product's development key sign freely while its production key
    /// version needs the quorum.
    #[serde(default)]
    pub key_versions: Vec<u32>,
}

fn default_approver_role() -> Role {
    Role::ReleaseApprover
}
fn default_job_expiry() -> u64 {
    7 * 24 * 3600
}

/// Longest allowed job expiry (one year).
pub const MAX_JOB_EXPIRY_SECS: u64 = 366 * 24 * 3600;

impl ApprovalPolicy {
    /// Whether a request that would sign with key version `v` needs approval. An unknown
    /// version needs it (fail closed).
    pub fn applies_to(&self, v: Option<u32>) -> bool {
        self.key_versions.is_empty() || v.is_none_or(|v| self.key_versions.contains(&v))
    }
}

fn default_mode() -> Mode {
    Mode::Embedded
}

/// Per-product format options.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductOptions {
    /// Primary digest for raw images (`sha256`, `sha384`, `sha512`).
    pub raw_digest: Option<String>,
    /// Intel HEX signature-block address.
    pub hex_signature_address: Option<u32>,
    /// Intel HEX gap fill byte (default 0xFF).
    pub hex_fill: Option<u8>,
    /// DfuSe signature element address.
    pub dfuse_signature_address: Option<u32>,
    /// Security counter written into signature blocks.
    pub security_counter: Option<u32>,
    /// MCUboot key TLV: `hash` (KEYHASH, default) or `full` (PUBKEY, for bootloaders built
    /// with `MCUBOOT_HW_KEY`), as imgtool's `--public-key-format`.
    pub mcuboot_public_key: Option<PublicKeyFormat>,
    /// MCUboot slot size in bytes (imgtool `-S/--slot-size`): a signed image that does not fit
    /// with its image trailer is refused. The four options below (imgtool's defaults when
    /// absent) size the trailer and need it.
    pub mcuboot_slot_size: Option<u32>,
    /// MCUboot flash write alignment (imgtool `--align`: 1, 2, 4, 8, 16, 32; default 1).
    pub mcuboot_align: Option<u8>,
    /// imgtool `--max-align` (8, 16, 32; default max(8, align)).
    pub mcuboot_max_align: Option<u8>,
    /// imgtool `-M/--max-sectors` (default 128).
    pub mcuboot_max_sectors: Option<u32>,
    /// imgtool `--overwrite-only` (default false).
    pub mcuboot_overwrite_only: Option<bool>,
}

impl ProductOptions {
    /// The MCUboot slot, if a slot size is configured.
    pub fn mcuboot_slot(&self) -> Option<Slot> {
        let d = Slot::default();
        self.mcuboot_slot_size.map(|size| Slot {
            size,
            align: self.mcuboot_align.unwrap_or(d.align),
            max_align: self.mcuboot_max_align,
            max_sectors: self.mcuboot_max_sectors.unwrap_or(d.max_sectors),
            overwrite_only: self.mcuboot_overwrite_only.unwrap_or(d.overwrite_only),
        })
    }
}

/// An API client.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Identity recorded in the audit log.
    pub name: String,
    /// Hex SHA-256 of the client's API token (the token itself is never stored).
    pub token_sha256: String,
    /// Roles per product (`"*"` = every product): submitter, factory, auditor,
    /// release-approver, admin.
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<Role>>,
    /// With mutual TLS: the certificate subject CN this client must present.
    pub tls_subject: Option<String>,
}

/// A role on a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// May submit images for signing.
    Submitter,
    /// May list and fetch signed artifacts and public keys.
    Factory,
    /// May read the audit log.
    Auditor,
    /// May approve or reject pending jobs of M-of-N products (`release-approver`; the alias
    /// `approver` is accepted).
    #[serde(alias = "approver")]
    ReleaseApprover,
    /// Everything.
    Admin,
    /// May scrape `/metrics` (only meaningful on `"*"`; `admin` on `"*"` may too).
    Metrics,
}

impl Role {
    /// The config / API name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Submitter => "submitter",
            Role::Factory => "factory",
            Role::Auditor => "auditor",
            Role::ReleaseApprover => "release-approver",
            Role::Admin => "admin",
            Role::Metrics => "metrics",
        }
    }

    /// Inverse of [`Role::name`] (also accepts `approver`).
    pub fn from_name(s: &str) -> Option<Role> {
        match s {
            "approver" => Some(Role::ReleaseApprover),
            _ => [
                Role::Submitter,
                Role::Factory,
                Role::Auditor,
                Role::ReleaseApprover,
                Role::Admin,
                Role::Metrics,
            ]
            .into_iter()
            .find(|r| r.name() == s),
        }
    }
}

impl Config {
    /// Read, parse and validate.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and validate TOML text (`path` is only used in messages).
    pub fn parse(text: &str, path: &std::path::Path) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut c = c;
        c.validate()?;
        c.oidc.load_files().map_err(ConfigError::Invalid)?;
        if let Some(t) = c.tsa.as_mut() {
            t.load().map_err(ConfigError::Invalid)?;
        }
        Ok(c)
    }

    /// Semantic checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.tls.is_none() && !self.listen.ip().is_loopback() {
            return bad(format!(
                "listen = {} is not a loopback address: plain HTTP is only allowed on loopback; configure [tls]",
                self.listen
            ));
        }
        let h = &self.http;
        if h.max_connections == 0 {
            return bad("[http] max_connections must be at least 1".into());
        }
        if h.max_connections_per_ip == 0 {
            return bad("[http] max_connections_per_ip must be at least 1".into());
        }
        for (name, v) in [
            ("header_read_timeout_secs", h.header_read_timeout_secs),
            ("body_idle_timeout_secs", h.body_idle_timeout_secs),
            ("request_timeout_secs", h.request_timeout_secs),
        ] {
            if v == 0 || v > 24 * 3600 {
                return bad(format!("[http] {name} must be 1..=86400 seconds, not {v}"));
            }
        }
        if let Some(o) = &self.log_origin {
            if !fwseal_store::tree::valid_origin(o) {
                return bad(format!(
                    "log_origin {o:?} must be a note key name: non-empty, at most 256 bytes, no white space or '+'"
                ));
            }
        }
        if self.log_checkpoint_min_interval_ms > 60_000 {
            return bad("log_checkpoint_min_interval_ms must be at most 60000".into());
        }
        if self.identity.trim().is_empty() {
            return bad("identity (the provenance builder id) must not be empty".into());
        }
        let pins =
            usize::from(self.hsm.pin_env.is_some()) + usize::from(self.hsm.pin_file.is_some());
        if pins > 1 || (pins == 0 && !self.hsm.dev_token) {
            return bad("[hsm] needs exactly one of pin_env or pin_file (a dev_token may omit both: its PIN file is created under state_dir/softhsm)".into());
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.products {
            if !valid_product_name(&p.name) {
                return bad(format!(
                    "product name {:?} must be 1-64 chars of [a-z0-9._-]",
                    p.name
                ));
            }
            if p.name == fwseal_api::APPLIANCE {
                return bad(format!(
                    "product name {:?} is reserved for the appliance's own provenance keys",
                    p.name
                ));
            }
            if p.name == fwseal_api::TSA_PRODUCT {
                return bad(format!(
                    "product name {:?} is reserved for the built-in TSA's key ([tsa_server])",
                    p.name
                ));
            }
            if !names.insert(p.name.as_str()) {
                return bad(format!("product {:?} is defined twice", p.name));
            }
            for f in &p.formats {
                if Format::from_name(f).is_none() {
                    return bad(format!(
                        "product {}: unknown format {f:?} (known: {})",
                        p.name,
                        Format::names()
                    ));
                }
            }
            let (c, q) = (p.classical_alg(), p.pq_alg());
            if let Some(c) = c {
                if c.family() != Family::Classical {
                    return bad(format!(
                        "product {}: classical = {c} is not a classical algorithm",
                        p.name
                    ));
                }
            }
            if let Some(q) = q {
                if q.family() != Family::PostQuantum {
                    return bad(format!(
                        "product {}: pq = {q} is not a post-quantum algorithm",
                        p.name
                    ));
                }
            }
            let o = &p.options;
            let sized = o.mcuboot_align.is_some()
                || o.mcuboot_max_align.is_some()
                || o.mcuboot_max_sectors.is_some()
                || o.mcuboot_overwrite_only.is_some();
            match o.mcuboot_slot() {
                None if sized => {
                    return bad(format!(
                        "product {}: mcuboot_align / mcuboot_max_align / mcuboot_max_sectors / \
                         mcuboot_overwrite_only size the image trailer in a slot; they need \
                         mcuboot_slot_size",
                        p.name
                    ))
                }
                None => {}
                Some(slot) => {
                    if let Err(e) = slot.validate() {
                        return bad(format!("product {}: mcuboot slot: {e}", p.name));
                    }
                }
            }
            if let Some(d) = &p.options.raw_digest {
                if fwseal_crypto::DigestAlg::from_name(d).is_none() {
                    return bad(format!(
                        "product {}: raw_digest {d:?} is not sha256/sha384/sha512",
                        p.name
                    ));
                }
            }
        }
        let mut tokens = std::collections::HashSet::new();
        let mut clients = std::collections::HashSet::new();
        for c in &self.clients {
            if !clients.insert(c.name.as_str()) {
                return bad(format!("client {:?} is defined twice", c.name));
            }
            if c.name.is_empty() || c.name == "anonymous" || c.name.starts_with("oidc:") {
                return bad(format!(
                    "client name {:?} is reserved (empty, \"anonymous\" or starting with \"oidc:\")",
                    c.name
                ));
            }
            let ok =
                c.token_sha256.len() == 64 && c.token_sha256.chars().all(|x| x.is_ascii_hexdigit());
            if !ok {
                return bad(format!(
                    "client {}: token_sha256 must be 64 hex digits (sha256 of the token)",
                    c.name
                ));
            }
            if !tokens.insert(c.token_sha256.to_ascii_lowercase()) {
                return bad(format!(
                    "client {}: token hash shared with another client",
                    c.name
                ));
            }
            if c.tls_subject.is_some()
                && self
                    .tls
                    .as_ref()
                    .and_then(|t| t.client_ca.as_ref())
                    .is_none()
            {
                return bad(format!(
                    "client {}: tls_subject needs mutual TLS ([tls] client_ca)",
                    c.name
                ));
            }
            for (p, roles) in &c.roles {
                if p != "*" && !names.contains(p.as_str()) {
                    return bad(format!("client {}: role for unknown product {p:?}", c.name));
                }
                if p != "*" && roles.contains(&Role::Metrics) {
                    return bad(format!(
                        "client {}: the metrics role is held on \"*\" (the metrics cover every product), not on {p:?}",
                        c.name
                    ));
                }
            }
        }
        for p in &self.products {
            let Some(a) = &p.approvals else { continue };
            if a.required == 0 {
                return bad(format!(
                    "product {}: approvals.required must be at least 1",
                    p.name
                ));
            }
            if a.expires_after_secs == 0 || a.expires_after_secs > MAX_JOB_EXPIRY_SECS {
                return bad(format!(
                    "product {}: approvals.expires_after_secs must be 1..={MAX_JOB_EXPIRY_SECS}",
                    p.name
                ));
            }
            if a.key_versions.contains(&0) {
                return bad(format!(
                    "product {}: approvals.key_versions start at 1",
                    p.name
                ));
            }
            // A quorum nobody can reach is a configuration bug: refuse it (a reload keeps the
            // old config) instead of accepting jobs that can only expire.
            let holders: Vec<&str> = self
                .clients
                .iter()
                .filter(|c| {
                    [p.name.as_str(), "*"].iter().any(|k| {
                        c.roles
                            .get(*k)
                            .is_some_and(|rs| rs.contains(&a.of_role) || rs.contains(&Role::Admin))
                    })
                })
                .map(|c| c.name.as_str())
                .collect();
            // An OIDC rule granting the role may match any number of people (two humans matched
            // by one rule are two identities), so it can always make up the quorum.
            let by_rule = self.oidc.rules.iter().any(|r| {
                [p.name.as_str(), "*"].iter().any(|k| {
                    r.roles
                        .get(*k)
                        .is_some_and(|rs| rs.contains(&a.of_role) || rs.contains(&Role::Admin))
                })
            });
            if !by_rule && holders.len() < a.required as usize {
                return bad(format!(
                    "product {}: approvals.required = {} but only {} client(s) hold the {} role on it ({})",
                    p.name,
                    a.required,
                    holders.len(),
                    a.of_role.name(),
                    if holders.is_empty() { "none".to_string() } else { holders.join(", ") }
                ));
            }
        }
        if let Some(t) = &self.tsa_server {
            t.validate().map_err(ConfigError::Invalid)?;
        }
        let products: std::collections::HashSet<&str> =
            self.products.iter().map(|p| p.name.as_str()).collect();
        self.oidc
            .validate(&products, &clients)
            .map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// A product by name.
    pub fn product(&self, name: &str) -> Option<&ProductConfig> {
        self.products.iter().find(|p| p.name == name)
    }
}

/// Product names double as HSM label components and URL path segments.
pub fn valid_product_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl ProductConfig {
    /// The classical algorithm, if the policy uses one.
    pub fn classical_alg(&self) -> Option<SigAlg> {
        match self.policy {
            Policy::PqOnly => None,
            // A single-format product defaults to what that format needs (efi: RSA PKCS#1).
            _ => Some(
                self.classical.unwrap_or(match self.formats.as_slice() {
                    [only] => Format::from_name(only)
                        .map_or(SigAlg::EcdsaP256Sha256, |f| f.default_classical()),
                    _ => SigAlg::EcdsaP256Sha256,
                }),
            ),
        }
    }

    /// The post-quantum algorithm, if the policy uses one.
    pub fn pq_alg(&self) -> Option<SigAlg> {
        match self.policy {
            Policy::ClassicalOnly => None,
            _ => Some(self.pq.unwrap_or(SigAlg::MlDsa65)),
        }
    }

    /// Whether `f` is allowed.
    pub fn allows(&self, f: Format) -> bool {
        self.formats.is_empty() || self.formats.iter().any(|x| Format::from_name(x) == Some(f))
    }

    /// Format options for a request.
    pub fn sign_options(&self, version: Option<ImageVersion>) -> SignOptions {
        let mut o = SignOptions {
            product: self.name.clone(),
            image_version: version,
            security_counter: self.options.security_counter,
            ..SignOptions::default()
        };
        if let Some(d) = self
            .options
            .raw_digest
            .as_deref()
            .and_then(fwseal_crypto::DigestAlg::from_name)
        {
            o.raw_digest = d;
        }
        o.hex_signature_address = self.options.hex_signature_address;
        if let Some(f) = self.options.hex_fill {
            o.hex_fill = f;
        }
        o.dfuse_signature_address = self.options.dfuse_signature_address;
        o.mcuboot_public_key = self.options.mcuboot_public_key.unwrap_or_default();
        o.mcuboot_slot = self.options.mcuboot_slot();
        o
    }
}
