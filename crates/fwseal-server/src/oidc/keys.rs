//! An issuer's signing keys: a JWKS from a file (read when the configuration is loaded) or
//! from the network (`jwks_url`, or the issuer's discovery document's `jwks_uri`), fetched at
//! start, refreshed every `refresh_secs` by a background thread, and refetched (at most once
//! per `refetch_min_secs`) when a token names a `kid` the cache does not hold — so a rotation
//! is picked up without a restart. Every fetch is bounded (`http_timeout_secs` overall, 1 MiB
//! body). A failed refresh keeps the cached keys; once they are older than `max_key_age_secs`
//! they are **not used** ([`Lookup::Stale`]): verification fails closed.

use super::IssuerConfig;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::DecodingKey;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

/// Largest JWKS or discovery document accepted, bytes.
const MAX_DOCUMENT: u64 = 1 << 20;

/// One usable key.
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    pub(crate) jwk: Jwk,
    pub(crate) key: DecodingKey,
}

/// A key set as last fetched.
pub(crate) struct Loaded {
    pub(crate) keys: Vec<Key>,
    pub(crate) fetched: Instant,
}

/// Parse a JWKS, keeping the keys `jsonwebtoken` can verify with (a key of an unsupported type
/// is skipped, not fatal: issuers publish several kinds). Errors name what is wrong.
pub(crate) fn parse_jwks(bytes: &[u8]) -> Result<Vec<Key>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("JWKS is not JSON: {e}"))?;
    let Some(list) = v.get("keys").and_then(|k| k.as_array()) else {
        return Err("JWKS has no \"keys\" array".into());
    };
    let mut keys = Vec::new();
    for k in list {
        let Ok(jwk) = serde_json::from_value::<Jwk>(k.clone()) else {
            continue;
        };
        // HMAC "keys" in a JWKS are never used: the algorithm allow-list refuses HS*.
        if matches!(
            jwk.algorithm,
            jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
        ) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        keys.push(Key {
            kid: jwk.common.key_id.clone(),
            jwk,
            key,
        });
    }
    Ok(keys)
}

/// Check a JWKS file's content (config load): it must hold at least one usable key.
pub(crate) fn check_file(bytes: &[u8]) -> Result<(), String> {
    if parse_jwks(bytes)?.is_empty() {
        return Err("JWKS holds no usable (RSA / EC / OKP) key".into());
    }
    Ok(())
}

/// Where the keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Read at configuration load.
    File,
    /// This JWKS URL.
    Url(String),
    /// The issuer's discovery document names the JWKS URL.
    Discovery(String),
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// The key for the token.
    Found(Arc<Loaded>, usize),
    /// No key with this `kid` (after a refetch if one was allowed).
    UnknownKid,
    /// The cached keys are older than `max_key_age_secs` (or were never fetched) and a refresh
    /// failed: fail closed. The string is the last fetch error.
    Stale(String),
}

/// One issuer's key cache.
pub(crate) struct KeyCache {
    source: Source,
    timeout: Duration,
    refresh: Duration,
    refetch_min: Duration,
    max_age: Duration,
    expected_issuer: String,
    loaded: RwLock<Option<Arc<Loaded>>>,
    /// When the last fetch was attempted (rate limit for unknown-kid refetches), and its error.
    fetch: Mutex<(Option<Instant>, Option<String>)>,
}

impl KeyCache {
    /// A cache for `cfg`. File keys are loaded now; network keys are fetched now (bounded by
    /// the timeout) and then refreshed by a background thread that ends when the cache is
    /// dropped (a configuration reload that changes the issuer drops it).
    pub(crate) fn new(cfg: &IssuerConfig) -> Arc<Self> {
        let source = cfg.source();
        let c = Arc::new(KeyCache {
            source: source.clone(),
            timeout: Duration::from_secs(cfg.http_timeout_secs),
            refresh: Duration::from_secs(cfg.refresh_secs),
            refetch_min: Duration::from_secs(cfg.refetch_min_secs),
            max_age: Duration::from_secs(cfg.max_key_age_secs),
            expected_issuer: cfg.issuer.clone(),
            loaded: RwLock::new(None),
            fetch: Mutex::new((None, None)),
        });
        match source {
            Source::File => {
                let keys = cfg
                    .file_jwks
                    .as_ref()
                    .and_then(|b| parse_jwks(b).ok())
                    .unwrap_or_default();
                c.store(keys);
            }
            Source::Url(_) | Source::Discovery(_) => {
                c.refetch(&cfg.name);
                let weak = Arc::downgrade(&c);
                let name = cfg.name.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("jwks-{}", cfg.name))
                    .spawn(move || refresher(weak, name));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start the JWKS refresh thread");
                }
            }
        }
        c
    }

    /// Whether this cache serves `cfg` unchanged (a reload keeps it, and its keys).
    pub(crate) fn serves(&self, cfg: &IssuerConfig) -> bool {
        self.source == cfg.source()
            && self.source != Source::File
            && self.timeout == Duration::from_secs(cfg.http_timeout_secs)
            && self.refresh == Duration::from_secs(cfg.refresh_secs)
            && self.refetch_min == Duration::from_secs(cfg.refetch_min_secs)
            && self.max_age == Duration::from_secs(cfg.max_key_age_secs)
            && self.expected_issuer == cfg.issuer
    }

    fn store(&self, keys: Vec<Key>) {
        let l = Arc::new(Loaded {
            keys,
            fetched: Instant::now(),
        });
        match self.loaded.write() {
            Ok(mut g) => *g = Some(l),
            Err(p) => *p.into_inner() = Some(l),
        }
    }

    fn current(&self) -> Option<Arc<Loaded>> {
        match self.loaded.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn fresh(&self, l: &Loaded) -> bool {
        self.source == Source::File || l.fetched.elapsed() <= self.max_age
    }

    /// Fetch now (network sources), replacing the keys on success; on failure the cached keys
    /// stay and the error is logged and kept.
    fn refetch(&self, issuer_name: &str) {
        let mut g = match self.fetch.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.0 = Some(Instant::now());
        match self.download() {
            Ok(keys) => {
                tracing::debug!(issuer = issuer_name, keys = keys.len(), "JWKS fetched");
                self.store(keys);
                g.1 = None;
            }
            Err(e) => {
                tracing::warn!(issuer = issuer_name, error = %e, "JWKS fetch failed; cached keys kept");
                g.1 = Some(e);
            }
        }
    }

    /// Refetch unless one was attempted within `refetch_min` (or by the refresher just now).
    fn refetch_limited(&self, issuer_name: &str) {
        let recent = match self.fetch.lock() {
            Ok(g) => g.0.is_some_and(|t| t.elapsed() < self.refetch_min),
            Err(_) => false,
        };
        if !recent && self.source != Source::File {
            self.refetch(issuer_name);
        }
    }

    fn last_error(&self) -> String {
        match self.fetch.lock() {
            Ok(g) => g.1.clone(),
            Err(_) => None,
        }
        .unwrap_or_else(|| "no keys fetched yet".into())
    }

    /// The key for a token's `kid` (and `alg`), refetching (rate-limited) when the keys are
    /// stale or the `kid` is unknown.
    pub(crate) fn lookup(
        &self,
        issuer_name: &str,
        kid: Option<&str>,
        alg: jsonwebtoken::Algorithm,
    ) -> Lookup {
        let find = |l: &Loaded| -> Option<usize> {
            match kid {
                Some(k) => l.keys.iter().position(|x| x.kid.as_deref() == Some(k)),
                // No kid: only an unambiguous key of the right family.
                None => {
                    let fam: Vec<usize> = l
                        .keys
                        .iter()
                        .enumerate()
                        .filter(|(_, x)| family_fits(&x.jwk, alg))
                        .map(|(i, _)| i)
                        .collect();
                    (fam.len() == 1).then(|| fam[0])
                }
            }
        };
        let mut cur = self.current().filter(|l| self.fresh(l));
        if cur.is_none() {
            self.refetch_limited(issuer_name);
            cur = self.current().filter(|l| self.fresh(l));
        }
        let Some(l) = cur else {
            return Lookup::Stale(self.last_error());
        };
        if let Some(i) = find(&l) {
            return Lookup::Found(l, i);
        }
        self.refetch_limited(issuer_name);
        match self.current().filter(|l| self.fresh(l)) {
            Some(l) => match find(&l) {
                Some(i) => Lookup::Found(l, i),
                None => Lookup::UnknownKid,
            },
            None => Lookup::Stale(self.last_error()),
        }
    }

    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(true)
            .max_redirects(0)
            .build()
            .into()
    }

    fn get(&self, agent: &ureq::Agent, url: &str) -> Result<Vec<u8>, String> {
        let mut resp = agent
            .get(url)
            .call()
            .map_err(|e| format!("GET {url}: {e}"))?;
        resp.body_mut()
            .with_config()
            .limit(MAX_DOCUMENT)
            .read_to_vec()
            .map_err(|e| format!("GET {url}: reading the body: {e}"))
    }

    fn download(&self) -> Result<Vec<Key>, String> {
        let agent = self.agent();
        let url = match &self.source {
            Source::File => return Err("a JWKS file is not fetched".into()),
            Source::Url(u) => u.clone(),
            Source::Discovery(d) => {
                let doc: serde_json::Value = serde_json::from_slice(&self.get(&agent, d)?)
                    .map_err(|e| format!("{d}: not JSON: {e}"))?;
                // OpenID Connect Discovery 1.0 §4.3: the document's issuer must be ours.
                if doc.get("issuer").and_then(|v| v.as_str()) != Some(&self.expected_issuer) {
                    return Err(format!(
                        "{d}: the discovery document's issuer is not {:?}",
                        self.expected_issuer
                    ));
                }
                let u = doc
                    .get("jwks_uri")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| format!("{d}: no jwks_uri"))?;
                super::check_url(u).map_err(|e| format!("{d}: jwks_uri: {e}"))?;
                u.to_string()
            }
        };
        parse_jwks(&self.get(&agent, &url)?)
    }
}

/// Whether a JWK can verify `alg` (its family; and its own `alg`, if it states one).
pub(crate) fn family_fits(jwk: &Jwk, alg: jsonwebtoken::Algorithm) -> bool {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    use jsonwebtoken::AlgorithmFamily as F;
    let fam = match jwk.algorithm {
        P::RSA(_) => F::Rsa,
        P::EllipticCurve(_) => F::Ec,
        P::OctetKeyPair(_) => F::Ed,
        P::OctetKey(_) => F::Hmac,
    };
    let stated = jwk
        .common
        .key_algorithm
        .and_then(|a| a.to_string().parse::<jsonwebtoken::Algorithm>().ok());
    fam == alg.family() && stated.is_none_or(|s| s == alg)
}

fn refresher(cache: Weak<KeyCache>, name: String) {
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let Some(c) = cache.upgrade() else { return };
        if since.elapsed() >= c.refresh {
            c.refetch(&name);
            since = Instant::now();
        }
    }
}
