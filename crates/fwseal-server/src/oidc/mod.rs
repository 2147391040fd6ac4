//! OIDC workload (and human) identities: a CI job's signed ID token authenticates it, and its
//! verified claims become the provenance's verified build metadata.
//!
//! - **Issuers** (`[[oidc.issuers]]`, [`IssuerConfig`]): the exact `iss`, accepted audiences,
//!   an algorithm allow-list (RS*/PS*/ES*/EdDSA; `none` and HMAC are refused when the
//!   configuration is loaded), keys from a JWKS file or fetched ([`keys`]), clock skew, a
//!   maximum lifetime, optional `jti` replay refusal, and the `kind` (`github`, `gitlab`,
//!   `generic`) that maps claims to [`VerifiedClaims`] ([`claims`]).
//! - **Rules** (`[[oidc.rules]]`, [`RuleConfig`]): issuer + claim matchers ([`glob`]) → a
//!   client name and roles per product. The first rule in file order that matches decides.
//! - [`Oidc::authenticate`]: header → issuer by `iss` → algorithm allow-list → key by `kid`
//!   (cache, rate-limited refetch, fail closed when stale) → signature, `iss`, `aud`, `exp`,
//!   `nbf` (jsonwebtoken) → `iat` and lifetime → claims → rule → replay. Each refusal names the
//!   [`Check`] that failed; the HTTP answer for all of them but [`Check::KeysStale`] and
//!   [`Check::ReplayCacheFull`] is the same `401` as a wrong API token.
//!
//! Signature verification is `jsonwebtoken`'s (RustCrypto backend); this module only reads the
//! header and the unverified `iss` to choose the issuer, and never trusts a claim before the
//! signature over it was verified.

pub mod claims;
pub mod glob;
mod keys;

use crate::config::Role;
use base64::Engine as _;
use fwseal_provenance::VerifiedClaims;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// `[oidc]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Trusted token issuers.
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
    /// Claims → identity and roles; the first matching rule (file order) decides.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// How an issuer's claims map to [`VerifiedClaims`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssuerKind {
    /// GitHub Actions: `repository`, `ref`, `sha`, `workflow_ref`, `run_id`, `environment`.
    Github,
    /// GitLab CI: `project_path`, `ref` + `ref_type`, `sha`, `ci_config_ref_uri`,
    /// `pipeline_id`, `environment`.
    Gitlab,
    /// Any other IdP (human approvers): only issuer, subject and `jti` are mapped.
    #[default]
    Generic,
}

/// `[[oidc.issuers]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Name used by rules and in audit records.
    pub name: String,
    /// The exact `iss` (also the discovery base URL).
    pub issuer: String,
    /// Claim mapping (default `generic`).
    #[serde(default)]
    pub kind: IssuerKind,
    /// Accepted `aud` values (a token must name at least one).
    pub audience: Vec<String>,
    /// Accepted `alg`s (default `["RS256"]`): RS256/384/512, PS256/384/512, ES256/384, EdDSA.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// A JWKS file (offline deployments): read when the configuration is loaded (and on
    /// SIGHUP). Exclusive with `jwks_url`; without either, the keys come from discovery
    /// (`issuer` + `/.well-known/openid-configuration` → `jwks_uri`).
    pub jwks_file: Option<PathBuf>,
    /// The JWKS URL (https, or http on loopback).
    pub jwks_url: Option<String>,
    /// Base URL source repositories live under, for `source_uri` (`git+<source_host>/<repo>`)
    /// and run URLs. Default: `https://github.com` for `github`, the issuer URL for `gitlab`.
    pub source_host: Option<String>,
    /// Refresh fetched keys this often, seconds (default 300).
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
    /// A token with an unknown `kid` triggers a refetch at most this often, seconds (default 30).
    #[serde(default = "default_refetch_min")]
    pub refetch_min_secs: u64,
    /// Fetched keys are used at most this long after their last successful fetch, seconds
    /// (default 86400); past it, while refreshes keep failing, tokens are refused with `503
    /// oidc-unavailable` (fail closed).
    #[serde(default = "default_max_key_age")]
    pub max_key_age_secs: u64,
    /// Bound on one fetch (connect, TLS, request, body), seconds (default 5).
    #[serde(default = "default_http_timeout")]
    pub http_timeout_secs: u64,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, seconds (default 60, at most 300).
    #[serde(default = "default_skew")]
    pub skew_secs: u64,
    /// Longest accepted token lifetime `exp - iat`, seconds (default 7200).
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime_secs: u64,
    /// Refuse a token whose `jti` was already used for a state-changing request (a POST: sign,
    /// sign-batch, sign-digest, approve, reject) within its lifetime; reads (GET) may reuse it.
    /// The cache is in memory, per daemon (a cluster would need it in the shared store).
    #[serde(default)]
    pub refuse_replay: bool,
    /// Most `jti`s remembered at once (default 100000); when full of unexpired ones, further
    /// state-changing requests with this issuer's tokens get `503 oidc-unavailable`.
    #[serde(default = "default_replay_entries")]
    pub replay_cache_entries: usize,
    /// The JWKS file's bytes, read by [`OidcConfig::load_files`].
    #[serde(skip)]
    pub file_jwks: Option<Arc<Vec<u8>>>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}
fn default_refresh() -> u64 {
    300
}
fn default_refetch_min() -> u64 {
    30
}
fn default_max_key_age() -> u64 {
    86_400
}
fn default_http_timeout() -> u64 {
    5
}
fn default_skew() -> u64 {
    60
}
fn default_max_lifetime() -> u64 {
    7200
}
fn default_replay_entries() -> usize {
    100_000
}

/// `[[oidc.rules]]`: a token of `issuer` whose claims match every matcher in `claims` is the
/// client `client` with `roles`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The issuer's `name`.
    pub issuer: String,
    /// Client name recorded in the audit log, jobs and artifacts.
    pub client: String,
    /// Claim name → exact value or glob ([`glob`]: `*` within a `/` segment, `**` across).
    /// Every matcher must match; a claim the token lacks matches nothing.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// Roles per product (`"*"` = every product), as for static clients.
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<Role>>,
}

/// Claims a rule must pin (with a matcher not starting with `*`) for an issuer kind whose tokens
/// anyone can obtain for their own repository: without one, every repository on the platform
/// would match.
fn pinning_claims(kind: IssuerKind) -> &'static [&'static str] {
    match kind {
        IssuerKind::Github => &[
            "repository",
            "repository_id",
            "repository_owner",
            "repository_owner_id",
            "sub",
            "workflow_ref",
            "job_workflow_ref",
        ],
        IssuerKind::Gitlab => &[
            "project_path",
            "project_id",
            "namespace_path",
            "namespace_id",
            "sub",
            "ci_config_ref_uri",
        ],
        IssuerKind::Generic => &[],
    }
}

/// The accepted algorithm names (an allow-list; `none` and `HS*` are never accepted).
pub fn parse_algorithm(s: &str) -> Result<jsonwebtoken::Algorithm, String> {
    use jsonwebtoken::Algorithm as A;
    let a: A = s
        .parse()
        .map_err(|_| format!("unknown algorithm {s:?} (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"))?;
    if a.family() == jsonwebtoken::AlgorithmFamily::Hmac {
        return Err(format!(
            "algorithm {s} is HMAC: a shared secret cannot authenticate a platform's tokens (and invites the public-key-as-secret attack)"
        ));
    }
    Ok(a)
}

/// A URL fwseald may fetch keys from: `https://`, or `http://` to a loopback host.
pub fn check_url(u: &str) -> Result<(), String> {
    if u.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = u.strip_prefix("http://") else {
        return Err(format!("{u:?} is not an https:// URL"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(format!(
            "{u:?}: plain http is only allowed to a loopback host; use https"
        ))
    }
}

impl IssuerConfig {
    pub(crate) fn source(&self) -> keys::Source {
        match (&self.jwks_file, &self.jwks_url) {
            (Some(_), _) => keys::Source::File,
            (None, Some(u)) => keys::Source::Url(u.clone()),
            (None, None) => keys::Source::Discovery(format!(
                "{}/.well-known/openid-configuration",
                self.issuer.trim_end_matches('/')
            )),
        }
    }

    /// The source host for `source_uri` and run URLs.
    pub fn source_host(&self) -> Option<String> {
        self.source_host.clone().or_else(|| match self.kind {
            IssuerKind::Github => Some("https://github.com".into()),
            IssuerKind::Gitlab => Some(self.issuer.clone()),
            IssuerKind::Generic => None,
        })
    }

    fn allowed_algorithms(&self) -> Vec<jsonwebtoken::Algorithm> {
        self.algorithms
            .iter()
            .filter_map(|a| parse_algorithm(a).ok())
            .collect()
    }
}

impl OidcConfig {
    /// Semantic checks (`products`: configured product names; `clients`: static client names,
    /// which a rule's client may not reuse).
    pub fn validate(
        &self,
        products: &HashSet<&str>,
        clients: &HashSet<&str>,
    ) -> Result<(), String> {
        let mut names = HashSet::new();
        let mut isss = HashSet::new();
        for i in &self.issuers {
            let at = format!("[[oidc.issuers]] {:?}", i.name);
            if i.name.is_empty() || i.name.len() > 64 {
                return Err(format!("{at}: name must be 1-64 characters"));
            }
            if !names.insert(i.name.as_str()) {
                return Err(format!("{at} is defined twice"));
            }
            if !isss.insert(i.issuer.as_str()) {
                return Err(format!("{at}: issuer {:?} is configured twice", i.issuer));
            }
            if !(i.issuer.starts_with("https://") || i.issuer.starts_with("http://")) {
                return Err(format!(
                    "{at}: issuer must be the issuer's URL (the exact iss)"
                ));
            }
            if i.audience.is_empty() || i.audience.iter().any(|a| a.is_empty()) {
                return Err(format!(
                    "{at}: audience must list at least one non-empty value"
                ));
            }
            if i.algorithms.is_empty() {
                return Err(format!("{at}: algorithms must not be empty"));
            }
            for a in &i.algorithms {
                parse_algorithm(a).map_err(|e| format!("{at}: {e}"))?;
            }
            if i.jwks_file.is_some() && i.jwks_url.is_some() {
                return Err(format!("{at}: jwks_file and jwks_url are exclusive"));
            }
            if i.jwks_file.is_none() {
                let u = i.jwks_url.clone().unwrap_or_else(|| i.issuer.clone());
                check_url(&u).map_err(|e| format!("{at}: keys: {e}"))?;
            }
            if let Some(h) = &i.source_host {
                if !h.starts_with("https://") && !h.starts_with("http://") {
                    return Err(format!("{at}: source_host must be a URL"));
                }
            }
            for (what, v, lo, hi) in [
                ("refresh_secs", i.refresh_secs, 1, 86_400),
                ("refetch_min_secs", i.refetch_min_secs, 0, 3600),
                ("max_key_age_secs", i.max_key_age_secs, 1, 30 * 86_400),
                ("http_timeout_secs", i.http_timeout_secs, 1, 60),
                ("skew_secs", i.skew_secs, 0, 300),
                ("max_lifetime_secs", i.max_lifetime_secs, 1, 7 * 86_400),
            ] {
                if !(lo..=hi).contains(&v) {
                    return Err(format!("{at}: {what} must be {lo}..={hi}, not {v}"));
                }
            }
            if i.refuse_replay && i.replay_cache_entries == 0 {
                return Err(format!("{at}: replay_cache_entries must be at least 1"));
            }
        }
        for (n, r) in self.rules.iter().enumerate() {
            let at = format!("[[oidc.rules]] #{} (client {:?})", n + 1, r.client);
            let Some(iss) = self.issuers.iter().find(|i| i.name == r.issuer) else {
                return Err(format!("{at}: unknown issuer {:?}", r.issuer));
            };
            if r.client.is_empty()
                || r.client == "anonymous"
                || r.client.starts_with("oidc:")
                || r.client.len() > 128
            {
                return Err(format!("{at}: client name is empty, too long or reserved"));
            }
            if clients.contains(r.client.as_str()) {
                return Err(format!(
                    "{at}: client {:?} is also a static [[client]]; give the rule its own name",
                    r.client
                ));
            }
            if r.claims.is_empty() {
                return Err(format!(
                    "{at}: a rule needs at least one claim matcher (a rule without any would accept every token of the issuer)"
                ));
            }
            for k in r.claims.keys() {
                if matches!(k.as_str(), "iss" | "aud" | "exp" | "iat" | "nbf" | "jti") {
                    return Err(format!(
                        "{at}: claim {k:?} is checked by the issuer's settings, not by rules"
                    ));
                }
            }
            let pins = pinning_claims(iss.kind);
            if !pins.is_empty()
                && !r
                    .claims
                    .iter()
                    .any(|(k, v)| pins.contains(&k.as_str()) && glob::pins(v))
            {
                return Err(format!(
                    "{at}: a rule for a {:?} issuer must pin one of {} with a matcher not starting with '*' (anyone can get a token from this platform)",
                    iss.kind,
                    pins.join(", ")
                ));
            }
            for (p, roles) in &r.roles {
                if p != "*" && !products.contains(p.as_str()) {
                    return Err(format!("{at}: role for unknown product {p:?}"));
                }
                if p != "*" && roles.contains(&Role::Metrics) {
                    return Err(format!(
                        "{at}: the metrics role is held on \"*\", not on {p:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Read every `jwks_file` (at configuration load; a SIGHUP reload reads them again).
    pub fn load_files(&mut self) -> Result<(), String> {
        for i in &mut self.issuers {
            if let Some(p) = &i.jwks_file {
                let bytes = std::fs::read(p).map_err(|e| {
                    format!(
                        "[[oidc.issuers]] {:?}: jwks_file {}: {e}",
                        i.name,
                        p.display()
                    )
                })?;
                keys::check_file(&bytes).map_err(|e| {
                    format!(
                        "[[oidc.issuers]] {:?}: jwks_file {}: {e}",
                        i.name,
                        p.display()
                    )
                })?;
                i.file_jwks = Some(Arc::new(bytes));
            }
        }
        Ok(())
    }

    /// The first rule of `issuer` (its `iss`) whose matchers all match `claims`, as
    /// (index, rule).
    pub fn rule_for(
        &self,
        issuer: &str,
        claims: &Map<String, Value>,
    ) -> Option<(usize, &RuleConfig)> {
        let name = &self.issuers.iter().find(|i| i.issuer == issuer)?.name;
        self.rules.iter().enumerate().find(|(_, r)| {
            &r.issuer == name
                && r.claims.iter().all(|(k, pat)| {
                    claims
                        .get(k)
                        .and_then(claims::text)
                        .is_some_and(|v| glob::matches(pat, &v))
                })
        })
    }
}

/// The check a token failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// Not a well-formed JWS compact token, or its header or claims are not JSON.
    Malformed,
    /// `alg` not in the issuer's allow-list (`none`, HMAC, another family).
    Algorithm,
    /// `iss` is not a configured issuer.
    Issuer,
    /// No key with the token's `kid`, even after a refetch.
    UnknownKid,
    /// The signature does not verify.
    Signature,
    /// `exp` has passed (beyond the skew).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the skew).
    NotYetValid,
    /// No accepted `aud`.
    Audience,
    /// `exp - iat` exceeds `max_lifetime_secs`.
    Lifetime,
    /// A required claim (`exp`, `iat`, `sub`, `aud`, `iss`) is missing or mistyped.
    MissingClaim,
    /// The `jti` was already used (or is missing) while replay refusal is on.
    Replay,
    /// Validly signed, but no rule matches its claims.
    NoMatchingRule,
    /// The issuer's keys are stale: fail closed (`503`).
    KeysStale,
    /// The replay cache is full of unexpired entries (`503`).
    ReplayCacheFull,
}

impl Check {
    /// Stable name (audit records).
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Malformed => "malformed",
            Check::Algorithm => "algorithm",
            Check::Issuer => "issuer",
            Check::UnknownKid => "unknown-kid",
            Check::Signature => "signature",
            Check::Expired => "expired",
            Check::NotYetValid => "not-yet-valid",
            Check::Audience => "audience",
            Check::Lifetime => "lifetime",
            Check::MissingClaim => "missing-claim",
            Check::Replay => "replay",
            Check::NoMatchingRule => "no-matching-rule",
            Check::KeysStale => "keys-stale",
            Check::ReplayCacheFull => "replay-cache-full",
        }
    }

    /// Whether the appliance, not the token, is at fault (`503`, not `401`).
    pub fn unavailable(self) -> bool {
        matches!(self, Check::KeysStale | Check::ReplayCacheFull)
    }
}

/// Why a token was refused: the check, the issuer's name if one was identified, a detail
/// (never the token), and — only once the signature verified — the subject and `jti`.
#[derive(Clone, Debug)]
pub struct Denial {
    /// The failed check.
    pub check: Check,
    /// The configured issuer name.
    pub issuer: Option<String>,
    /// `sub`, when the signature verified.
    pub subject: Option<String>,
    /// `jti`, when the signature verified.
    pub jti: Option<String>,
    /// What exactly (bounded, no token material).
    pub detail: String,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "oidc token refused: {}", self.check.as_str())?;
        if let Some(i) = &self.issuer {
            write!(f, " (issuer {i:?})")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl Denial {
    fn new(check: Check, issuer: Option<&str>, detail: impl Into<String>) -> Self {
        Denial {
            check,
            issuer: issuer.map(str::to_string),
            subject: None,
            jti: None,
            detail: detail.into(),
        }
    }

    /// The audit `extra` of this denial: `{"oidc": {"check", "issuer", "subject", "jti"}}`.
    pub fn audit_extra(&self) -> Value {
        serde_json::json!({"oidc": {
            "check": self.check.as_str(),
            "issuer": self.issuer,
            "subject": self.subject,
            "jti": self.jti,
        }})
    }
}

/// An OIDC-authenticated identity: what [`crate::auth::Identity`] carries.
#[derive(Clone, Debug)]
pub struct OidcIdentity {
    /// The configured issuer name.
    pub issuer_name: String,
    /// The verified claims (issuer, subject, jti, repository, …).
    pub verified: Arc<VerifiedClaims>,
    /// The claims rules match on ([`claims::matchable`]); roles are re-derived from them
    /// against the current configuration whenever authorisation is checked.
    pub claims: Map<String, Value>,
}

/// `jti`s seen, per issuer: (jti → expiry, Unix seconds).
#[derive(Default)]
struct Replay {
    seen: HashMap<String, i64>,
}

/// The runtime of `[oidc]`: key caches and replay caches per issuer. Rebuilt on every
/// configuration change ([`Oidc::reconfigure`]), keeping a fetched key cache whose issuer
/// settings did not change and every replay cache.
#[derive(Default)]
pub struct Oidc {
    caches: Mutex<HashMap<String, Arc<keys::KeyCache>>>,
    replay: Mutex<HashMap<String, Arc<Mutex<Replay>>>>,
}

impl Oidc {
    /// The runtime for `cfg` (fetches network keys now, bounded by each issuer's timeout).
    pub fn new(cfg: &OidcConfig) -> Self {
        let o = Oidc::default();
        o.reconfigure(cfg);
        o
    }

    /// Apply a new configuration.
    pub fn reconfigure(&self, cfg: &OidcConfig) {
        let old = std::mem::take(&mut *lock(&self.caches));
        let mut new = HashMap::new();
        for i in &cfg.issuers {
            let c = match old.get(&i.issuer) {
                Some(c) if c.serves(i) => c.clone(),
                _ => keys::KeyCache::new(i),
            };
            new.insert(i.issuer.clone(), c);
        }
        *lock(&self.caches) = new;
    }

    /// Verify `token` against `cfg`'s issuers and rules at `now` (Unix seconds). `consumes`:
    /// the request changes state (POST), so replay refusal applies.
    pub fn authenticate(
        &self,
        cfg: &OidcConfig,
        token: &str,
        now: i64,
        consumes: bool,
    ) -> Result<OidcIdentity, Denial> {
        let d = |c: Check, i: Option<&str>, m: &str| Denial::new(c, i, m);
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(d(Check::Malformed, None, "not three dot-separated parts"));
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: Value = b64
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| d(Check::Malformed, None, "header is not base64url JSON"))?;
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let kid = header.get("kid").and_then(Value::as_str);
        // Only to choose the issuer: nothing else of the payload is read before the signature
        // over it is verified.
        let unverified: Value = b64
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| d(Check::Malformed, None, "payload is not base64url JSON"))?;
        let iss = unverified.get("iss").and_then(Value::as_str).unwrap_or("");
        let Some(icfg) = cfg.issuers.iter().find(|i| i.issuer == iss) else {
            return Err(d(Check::Issuer, None, "iss is not a configured issuer"));
        };
        let name = Some(icfg.name.as_str());
        let alg = match parse_algorithm(alg_name) {
            Ok(a) if icfg.allowed_algorithms().contains(&a) => a,
            _ => {
                let shown: String = alg_name.chars().take(16).collect();
                return Err(d(
                    Check::Algorithm,
                    name,
                    &format!(
                        "alg {shown:?} is not allowed (allowed: {})",
                        icfg.algorithms.join(", ")
                    ),
                ));
            }
        };
        let cache = lock(&self.caches).get(&icfg.issuer).cloned();
        let Some(cache) = cache else {
            return Err(d(Check::KeysStale, name, "no key cache for the issuer"));
        };
        let (loaded, idx) = match cache.lookup(&icfg.name, kid, alg) {
            keys::Lookup::Found(l, i) => (l, i),
            keys::Lookup::UnknownKid => {
                let shown: String = kid.unwrap_or("(none)").chars().take(64).collect();
                return Err(d(
                    Check::UnknownKid,
                    name,
                    &format!("no key with kid {shown:?} in the issuer's JWKS"),
                ));
            }
            keys::Lookup::Stale(why) => {
                return Err(d(
                    Check::KeysStale,
                    name,
                    &format!(
                        "the issuer's keys are older than max_key_age_secs = {} and cannot be refreshed ({why})",
                        icfg.max_key_age_secs
                    ),
                ))
            }
        };
        let key = &loaded.keys[idx];
        if !keys::family_fits(&key.jwk, alg) {
            return Err(d(
                Check::Algorithm,
                name,
                &format!("alg {alg_name} does not fit the key the kid names"),
            ));
        }
        let mut v = jsonwebtoken::Validation::new(alg);
        v.leeway = icfg.skew_secs;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.set_issuer(&[icfg.issuer.as_str()]);
        v.set_audience(&icfg.audience);
        v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &v).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                let (c, m) = match e.kind() {
                    K::InvalidSignature => {
                        (Check::Signature, "the signature does not verify".into())
                    }
                    K::ExpiredSignature => (Check::Expired, "exp has passed".into()),
                    K::ImmatureSignature => (Check::NotYetValid, "nbf is in the future".into()),
                    K::InvalidAudience => (Check::Audience, "no accepted aud".into()),
                    K::InvalidIssuer => (Check::Issuer, "iss does not match".into()),
                    K::InvalidAlgorithm | K::MissingAlgorithm | K::InvalidAlgorithmName => {
                        (Check::Algorithm, "algorithm does not fit the key".into())
                    }
                    K::MissingRequiredClaim(c) => {
                        (Check::MissingClaim, format!("claim {c:?} is missing"))
                    }
                    K::InvalidClaimFormat(c) => (
                        Check::MissingClaim,
                        format!("claim {c:?} has the wrong type"),
                    ),
                    _ => (Check::Malformed, format!("{e}")),
                };
                let mut den = Denial::new(c, name, m);
                // The signature verified for every claim check: the subject and jti are then
                // the issuer's, and worth recording.
                if !matches!(c, Check::Signature | Check::Algorithm | Check::Malformed) {
                    den.subject = unverified.get("sub").and_then(Value::as_str).map(bounded);
                    den.jti = unverified.get("jti").and_then(Value::as_str).map(bounded);
                }
                den
            })?;
        let c = data.claims;
        let sub = c.get("sub").and_then(Value::as_str).map(bounded);
        let jti = c.get("jti").and_then(Value::as_str).map(bounded);
        let fail = |check: Check, detail: String| Denial {
            check,
            issuer: Some(icfg.name.clone()),
            subject: sub.clone(),
            jti: jti.clone(),
            detail,
        };
        let skew = i64::try_from(icfg.skew_secs).unwrap_or(0);
        let (Some(iat), Some(exp)) = (
            c.get("iat").and_then(Value::as_i64),
            c.get("exp").and_then(Value::as_i64),
        ) else {
            return Err(fail(
                Check::MissingClaim,
                "iat and exp must be integers".into(),
            ));
        };
        if iat > now.saturating_add(skew) {
            return Err(fail(Check::NotYetValid, "iat is in the future".into()));
        }
        let lifetime = exp.saturating_sub(iat);
        if lifetime > i64::try_from(icfg.max_lifetime_secs).unwrap_or(i64::MAX) {
            return Err(fail(
                Check::Lifetime,
                format!(
                    "lifetime exp - iat = {lifetime} s exceeds max_lifetime_secs = {}",
                    icfg.max_lifetime_secs
                ),
            ));
        }
        if sub.as_deref().unwrap_or("").is_empty() {
            return Err(fail(Check::MissingClaim, "sub is empty".into()));
        }
        let matchable = claims::matchable(&c);
        let mut with_iss = matchable.clone();
        with_iss.insert("iss".into(), Value::String(icfg.issuer.clone()));
        if cfg.rule_for(&icfg.issuer, &with_iss).is_none() {
            return Err(fail(
                Check::NoMatchingRule,
                "no [[oidc.rules]] entry matches the token's claims".into(),
            ));
        }
        if icfg.refuse_replay && consumes {
            let Some(j) = &jti else {
                return Err(fail(
                    Check::Replay,
                    "the token has no jti (replay refusal is on)".into(),
                ));
            };
            let cache = lock(&self.replay)
                .entry(icfg.issuer.clone())
                .or_default()
                .clone();
            let mut r = lock(&cache);
            if r.seen.get(j).is_some_and(|&until| until >= now) {
                return Err(fail(Check::Replay, "this jti was already used".into()));
            }
            if r.seen.len() >= icfg.replay_cache_entries {
                r.seen.retain(|_, until| *until >= now);
            }
            if r.seen.len() >= icfg.replay_cache_entries {
                return Err(fail(
                    Check::ReplayCacheFull,
                    format!(
                        "{} unexpired jti(s) remembered (replay_cache_entries)",
                        r.seen.len()
                    ),
                ));
            }
            r.seen.insert(j.clone(), exp.saturating_add(skew));
        }
        let verified = claims::verified(icfg.kind, &icfg.issuer, icfg.source_host().as_deref(), &c);
        Ok(OidcIdentity {
            issuer_name: icfg.name.clone(),
            verified: Arc::new(verified),
            claims: with_iss,
        })
    }
}

fn bounded(s: &str) -> String {
    s.chars().take(256).collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Whether a bearer token has the shape of a JWS compact serialisation (three base64url
/// parts, the first decoding to a JSON object). Only such tokens are tried as OIDC tokens, and
/// only after no static token matched.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|v| v.is_object())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_algorithms_and_jwt_shape() {
        assert!(check_url("https://token.actions.githubusercontent.com").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("http://[::1]:8080/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        assert!(check_url("http://idp.example/jwks").is_err());
        assert!(check_url("http://127.0.0.1.evil.example/jwks").is_err());
        assert!(check_url("ftp://x").is_err());
        assert!(parse_algorithm("RS256").is_ok() && parse_algorithm("ES256").is_ok());
        for bad in ["none", "HS256", "HS512", "rs256", ""] {
            assert!(parse_algorithm(bad).is_err(), "{bad}");
        }
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"));
        assert!(!looks_like_jwt("secret.with.dots"));
        assert!(!looks_like_jwt("secret-ci"));
        assert!(!looks_like_jwt("a.b.c.d"));
    }
}
