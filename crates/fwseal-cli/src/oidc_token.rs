//! Where the bearer credential comes from: a static API token, or a CI platform's OIDC ID token.
//!
//! Selection (documented in `docs/ci.md`, "How fwseal finds its token"):
//!
//! 1. `FWSEAL_OIDC=github` — request an ID token from GitHub Actions: `GET
//!    $ACTIONS_ID_TOKEN_REQUEST_URL&audience=$FWSEAL_OIDC_AUDIENCE` with `Authorization: bearer
//!    $ACTIONS_ID_TOKEN_REQUEST_TOKEN`; the answer is `{"value": "<jwt>"}`. A token about to
//!    expire is requested again before the next call (long `--wait`s outlive one token).
//! 2. `FWSEAL_OIDC=gitlab` — read the ID token GitLab CI put in the variable the job's
//!    `id_tokens:` names: `FWSEAL_ID_TOKEN`, or the name in `FWSEAL_OIDC_VARIABLE`.
//! 3. Otherwise `FWSEAL_TOKEN`, then `FWSEAL_TOKEN_FILE` (a static API token, or an ID token
//!    the pipeline obtained itself).
//!
//! `FWSEAL_OIDC`, when set, wins: it is the more specific statement ("authenticate as this
//! pipeline"), and a static token left in the environment (a GitLab project variable, say) is
//! ignored with a warning that names the variable. A token is never taken from argv, and no
//! token — neither the ID token nor GitHub's request token — is ever printed: errors name
//! variables, hosts and HTTP statuses only. `FWSEAL_OIDC_AUDIENCE`, when set for GitLab, is
//! checked against the token's `aud` so a mismatch is reported here rather than as the
//! server's deliberately uninformative 401.
//!
//! The environment is passed in as a lookup function so tests never touch the process
//! environment.

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Selects the CI platform to take an OIDC ID token from.
pub const ENV_OIDC: &str = "FWSEAL_OIDC";
/// The audience to request (GitHub) or to expect in the token (GitLab).
pub const ENV_AUDIENCE: &str = "FWSEAL_OIDC_AUDIENCE";
/// GitLab: the name of the variable the job's `id_tokens:` declares.
pub const ENV_VARIABLE: &str = "FWSEAL_OIDC_VARIABLE";
/// GitLab: the default `id_tokens:` variable name.
pub const DEFAULT_GITLAB_VARIABLE: &str = "FWSEAL_ID_TOKEN";
/// GitHub Actions: the token-request endpoint (job has `permissions: id-token: write`).
pub const GH_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// GitHub Actions: the bearer for the token-request endpoint.
pub const GH_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// A GitHub token this close to its `exp` is requested again before use.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Bound on one token request (connect + answer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts at a token request that failed in transport or with a 5xx/429.
const ATTEMPTS: u32 = 3;
/// Largest token-service answer read.
const MAX_ANSWER: u64 = 64 << 10;

/// An environment lookup: `Some(value)` for a set variable.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as an [`Env`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Where the bearer comes from.
pub enum Credential {
    /// A fixed token: `FWSEAL_TOKEN`, `FWSEAL_TOKEN_FILE` or a GitLab ID token variable.
    Fixed(String),
    /// GitHub Actions: requested from the runner, re-requested when about to expire.
    Github(GithubSource),
}

/// GitHub Actions' token-request endpoint and the last token it gave.
pub struct GithubSource {
    request_url: String,
    request_token: String,
    audience: String,
    agent: ureq::Agent,
    cached: Mutex<Option<IdToken>>,
}

/// An ID token and its expiry (seconds since the epoch), when it states one.
struct IdToken {
    jwt: String,
    exp: Option<u64>,
}

impl Credential {
    /// The credential this environment selects (see the module docs for the order).
    pub fn from_env(env: Env<'_>) -> Result<Self> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(platform) = set(ENV_OIDC) {
            for shadowed in ["FWSEAL_TOKEN", "FWSEAL_TOKEN_FILE"] {
                if set(shadowed).is_some() {
                    eprintln!(
                        "fwseal: warning: {ENV_OIDC}={} is set, so {shadowed} is ignored",
                        platform.trim()
                    );
                }
            }
            return match platform.trim().to_ascii_lowercase().as_str() {
                "github" => {
                    let g = GithubSource::from_env(env)?;
                    g.fetch_now()?;
                    Ok(Credential::Github(g))
                }
                "gitlab" => gitlab_token(env).map(Credential::Fixed),
                other => {
                    bail!("{ENV_OIDC}={other:?} is not a CI platform fwseal knows (github, gitlab)")
                }
            };
        }
        if let Some(t) = env("FWSEAL_TOKEN") {
            if t.trim().is_empty() {
                bail!("FWSEAL_TOKEN is set but empty (a CI secret that is not defined?)");
            }
            return Ok(Credential::Fixed(t.trim().to_string()));
        }
        if let Some(p) = env("FWSEAL_TOKEN_FILE") {
            let t = std::fs::read_to_string(&p)
                .with_context(|| format!("read FWSEAL_TOKEN_FILE {p}"))?;
            let t = t.trim();
            if t.is_empty() {
                bail!("FWSEAL_TOKEN_FILE {p} is empty");
            }
            return Ok(Credential::Fixed(t.to_string()));
        }
        bail!(
            "no API token: set FWSEAL_TOKEN (or FWSEAL_TOKEN_FILE), or {ENV_OIDC}=github|gitlab \
             to use the CI job's OIDC ID token"
        )
    }

    /// The bearer for the next request (GitHub: a fresh token when the last one is about to
    /// expire).
    pub fn bearer(&self) -> Result<String> {
        match self {
            Credential::Fixed(t) => Ok(t.clone()),
            Credential::Github(g) => g.bearer(),
        }
    }
}

/// GitLab: the ID token in the job's `id_tokens:` variable.
fn gitlab_token(env: Env<'_>) -> Result<String> {
    let var = env(ENV_VARIABLE)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_GITLAB_VARIABLE.to_string());
    let Some(tok) = env(&var)
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
    else {
        bail!(
            "{ENV_OIDC}=gitlab but ${var} is not set: declare it in the job's `id_tokens:` \
             ({var}: {{aud: <the fwseald audience>}}), or name another variable in {ENV_VARIABLE}"
        );
    };
    let claims = claims(&tok).with_context(|| format!("${var} does not hold an OIDC ID token"))?;
    if let Some(want) = env(ENV_AUDIENCE).filter(|a| !a.trim().is_empty()) {
        check_audience(&claims, want.trim(), &format!("the ID token in ${var}"))?;
    }
    if let Some(exp) = claims.get("exp").and_then(serde_json::Value::as_u64) {
        if exp < now() {
            bail!("the ID token in ${var} expired {}s ago", now() - exp);
        }
    }
    Ok(tok)
}

impl GithubSource {
    fn from_env(env: Env<'_>) -> Result<Self> {
        let need = |name: &str| {
            env(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                anyhow!(
                    "{ENV_OIDC}=github but {name} is not set: the job needs `permissions: \
                     id-token: write` (and must run on GitHub Actions)"
                )
            })
        };
        let request_url = need(GH_REQUEST_URL)?;
        let request_token = need(GH_REQUEST_TOKEN)?;
        let audience = env(ENV_AUDIENCE)
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "{ENV_OIDC}=github needs {ENV_AUDIENCE}: the audience fwseald's \
                     [[oidc.issuers]] entry accepts"
                )
            })?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .new_agent();
        Ok(GithubSource {
            request_url: request_url.trim().to_string(),
            request_token: request_token.trim().to_string(),
            audience,
            agent,
            cached: Mutex::new(None),
        })
    }

    /// The request URL with `audience` appended: the runner's URL already carries a query
    /// (`?api-version=…`), so the parameter joins it with `&`.
    fn url(&self) -> String {
        let sep = if self.request_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{sep}audience={}",
            self.request_url,
            crate::client::urlencode(&self.audience)
        )
    }

    /// The token endpoint for messages: scheme, host and path, never the query.
    fn where_(&self) -> &str {
        self.request_url
            .split('?')
            .next()
            .unwrap_or(&self.request_url)
    }

    fn bearer(&self) -> Result<String> {
        {
            let c = self
                .cached
                .lock()
                .map_err(|_| anyhow!("token cache poisoned"))?;
            if let Some(t) = c.as_ref() {
                let fresh = t
                    .exp
                    .is_none_or(|exp| exp > now() + REFRESH_MARGIN.as_secs());
                if fresh {
                    return Ok(t.jwt.clone());
                }
            }
        }
        self.fetch_now()
    }

    /// Request a token now (with retries on transport errors, 429 and 5xx) and cache it.
    fn fetch_now(&self) -> Result<String> {
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(500 << attempt));
            }
            match self.request() {
                Ok(t) => {
                    let jwt = t.jwt.clone();
                    *self
                        .cached
                        .lock()
                        .map_err(|_| anyhow!("token cache poisoned"))? = Some(t);
                    return Ok(jwt);
                }
                Err(Fetch::Retry(e)) => last = Some(e),
                Err(Fetch::Fatal(e)) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("GitHub token request failed")))
    }

    fn request(&self) -> Result<IdToken, Fetch> {
        let resp = self
            .agent
            .get(&self.url())
            .header("Authorization", &format!("bearer {}", self.request_token))
            .header("Accept", "application/json; api-version=2.0")
            .call();
        let mut resp = match resp {
            Ok(r) => r,
            Err(e) => {
                return Err(Fetch::Retry(anyhow!(
                    "cannot reach the GitHub Actions token service at {}: {e}",
                    self.where_()
                )))
            }
        };
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .unwrap_or_default();
        if !(200..300).contains(&status) {
            // An error answer carries no ID token; still, never echo the request token.
            let mut detail: String = body
                .replace(&self.request_token, "<request token>")
                .chars()
                .take(300)
                .collect();
            if detail.trim().is_empty() {
                detail = "(empty body)".into();
            }
            let e = anyhow!(
                "the GitHub Actions token service at {} answered HTTP {status}: {}{}",
                self.where_(),
                detail.trim(),
                if status == 401 || status == 403 {
                    " (does the job have `permissions: id-token: write`?)"
                } else {
                    ""
                }
            );
            return Err(if status == 429 || status >= 500 {
                Fetch::Retry(e)
            } else {
                Fetch::Fatal(e)
            });
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            value: Option<String>,
        }
        // A 200 answer holds the token: report its shape, never its text.
        let answer: Answer = serde_json::from_str(&body).map_err(|_| {
            Fetch::Fatal(anyhow!(
                "the GitHub Actions token service at {} answered HTTP {status} with a body \
                 that is not JSON",
                self.where_()
            ))
        })?;
        let jwt = answer
            .value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Fetch::Fatal(anyhow!(
                    "the GitHub Actions token service at {} answered without a `value` (no ID \
                     token)",
                    self.where_()
                ))
            })?;
        let claims = claims(&jwt).map_err(|e| {
            Fetch::Fatal(e.context("the GitHub Actions token service's `value` is not a JWT"))
        })?;
        check_audience(&claims, &self.audience, "the GitHub Actions ID token")
            .map_err(Fetch::Fatal)?;
        Ok(IdToken {
            exp: claims.get("exp").and_then(serde_json::Value::as_u64),
            jwt,
        })
    }
}

enum Fetch {
    Retry(anyhow::Error),
    Fatal(anyhow::Error),
}

/// The claims of a compact JWS, read **without** checking the signature: only to report a
/// wrong audience or an expired token early and to know when to refresh. fwseald verifies.
fn claims(jwt: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        bail!(
            "a compact JWT has three dot-separated parts, this has {}",
            parts.len()
        );
    }
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|_| anyhow!("the JWT payload is not base64url"))?;
    match serde_json::from_slice::<serde_json::Value>(&payload) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => bail!("the JWT payload is not a JSON object"),
    }
}

/// `aud` (a string or an array of strings) must contain `want`.
fn check_audience(
    claims: &serde_json::Map<String, serde_json::Value>,
    want: &str,
    what: &str,
) -> Result<()> {
    let auds: Vec<&str> = match claims.get("aud") {
        Some(serde_json::Value::String(s)) => vec![s.as_str()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => vec![],
    };
    if auds.contains(&want) {
        return Ok(());
    }
    bail!("{what} is for audience {auds:?}, not {want:?} ({ENV_AUDIENCE})")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;

    /// An unsigned JWT-shaped token with these claims (the CLI never checks signatures; the
    /// end-to-end tests use tokens minted by an independent library).
    fn jwt(claims: serde_json::Value) -> String {
        let b = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{}",
            b(br#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#),
            b(claims.to_string().as_bytes()),
            b(b"not-a-signature")
        )
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    /// What the loopback token service saw of one request.
    #[derive(Debug, Clone)]
    struct Seen {
        target: String,
        authorization: Option<String>,
    }

    /// A loopback HTTP/1.1 server playing GitHub's token-request endpoint: answers with
    /// `respond(request)` (status, body) and records each request.
    fn token_service(
        respond: impl Fn(&Seen) -> (u16, String) + Send + 'static,
    ) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { break };
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut authorization = None;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            authorization = Some(v.trim().to_string());
                        }
                    }
                }
                let s = Seen {
                    target,
                    authorization,
                };
                let (status, body) = respond(&s);
                log.lock().unwrap().push(s);
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (format!("http://{addr}/_apis/idtoken?api-version=2.0"), seen)
    }

    /// The endpoint as GitHub runs it: the bearer must be the request token, and the token it
    /// mints carries the requested audience.
    fn github_like(request_token: &'static str, exp: u64) -> impl Fn(&Seen) -> (u16, String) {
        move |s: &Seen| {
            if s.authorization.as_deref() != Some(&format!("bearer {request_token}")) {
                return (401, r#"{"message":"bad request token"}"#.into());
            }
            let aud = s
                .target
                .split_once("&audience=")
                .map(|(_, a)| a.replace("%3A", ":").replace("%2F", "/"));
            let Some(aud) = aud else {
                return (400, r#"{"message":"no audience"}"#.into());
            };
            let t = jwt(serde_json::json!({
                "iss": "https://token.actions.githubusercontent.com",
                "aud": aud, "exp": exp, "repository": "acme/widget"
            }));
            (200, serde_json::json!({"count": 1, "value": t}).to_string())
        }
    }

    #[test]
    fn github_request_sends_the_bearer_and_joins_the_audience_to_the_query() {
        let (url, seen) = token_service(github_like("req-secret", now() + 600));
        let env = env_of(&[
            ("FWSEAL_OIDC", "github"),
            ("FWSEAL_OIDC_AUDIENCE", "https://fwseal.example"),
            (GH_REQUEST_URL, &url),
            (GH_REQUEST_TOKEN, "req-secret"),
        ]);
        let c = Credential::from_env(&env).unwrap();
        let tok = c.bearer().unwrap();
        let cl = claims(&tok).unwrap();
        assert_eq!(cl["aud"], "https://fwseal.example");
        assert_eq!(cl["repository"], "acme/widget");
        // A fresh token is reused: one request in all.
        assert_eq!(c.bearer().unwrap(), tok);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            seen[0].target,
            "/_apis/idtoken?api-version=2.0&audience=https%3A%2F%2Ffwseal.example"
        );
        assert_eq!(seen[0].authorization.as_deref(), Some("bearer req-secret"));
    }

    #[test]
    fn github_token_about_to_expire_is_requested_again() {
        let (url, seen) = token_service(github_like("r", now() + 10));
        let env = env_of(&[
            ("FWSEAL_OIDC", "github"),
            ("FWSEAL_OIDC_AUDIENCE", "fwseal"),
            (GH_REQUEST_URL, &url),
            (GH_REQUEST_TOKEN, "r"),
        ]);
        let c = Credential::from_env(&env).unwrap();
        c.bearer().unwrap();
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn github_failures_name_the_cause_and_never_the_tokens() {
        // Wrong request token: the status and a hint, not the token.
        let (url, _) = token_service(github_like("right", now() + 600));
        let env = env_of(&[
            ("FWSEAL_OIDC", "github"),
            ("FWSEAL_OIDC_AUDIENCE", "fwseal"),
            (GH_REQUEST_URL, &url),
            (GH_REQUEST_TOKEN, "wrong-request-token"),
        ]);
        let e = format!("{:#}", Credential::from_env(&env).err().unwrap());
        assert!(
            e.contains("HTTP 401") && e.contains("id-token: write"),
            "{e}"
        );
        assert!(
            !e.contains("wrong-request-token") && !e.contains("api-version"),
            "{e}"
        );

        // An answer without `value`.
        let (url, _) = token_service(|_| (200, r#"{"count":0}"#.into()));
        let env = env_of(&[
            ("FWSEAL_OIDC", "github"),
            ("FWSEAL_OIDC_AUDIENCE", "fwseal"),
            (GH_REQUEST_URL, &url),
            (GH_REQUEST_TOKEN, "r"),
        ]);
        let e = format!("{:#}", Credential::from_env(&env).err().unwrap());
        assert!(e.contains("without a `value`"), "{e}");

        // A token minted for another audience: named, and the token is not printed.
        let other = jwt(serde_json::json!({"aud": "sts.amazonaws.com"}));
        let body = serde_json::json!({ "value": other }).to_string();
        let (url, _) = token_service(move |_| (200, body.clone()));
        let env = env_of(&[
            ("FWSEAL_OIDC", "github"),
            ("FWSEAL_OIDC_AUDIENCE", "fwseal"),
            (GH_REQUEST_URL, &url),
            (GH_REQUEST_TOKEN, "r"),
        ]);
        let e = format!("{:#}", Credential::from_env(&env).err().unwrap());
        assert!(
            e.contains("sts.amazonaws.com") && e.contains("\"fwseal\""),
            "{e}"
        );
        assert!(!e.contains(&other), "{e}");

        // A 5xx is retried, then reported with its status.
        let (url, seen) = token_service(|_| (503, "busy".into()));
        let env = env_of(&[
            ("FWSEAL_OIDC", "github"),
            ("FWSEAL_OIDC_AUDIENCE", "fwseal"),
            (GH_REQUEST_URL, &url),
            (GH_REQUEST_TOKEN, "r"),
        ]);
        let e = format!("{:#}", Credential::from_env(&env).err().unwrap());
        assert!(e.contains("HTTP 503: busy"), "{e}");
        assert_eq!(seen.lock().unwrap().len(), ATTEMPTS as usize);

        // Missing runner variables and audience.
        let env = env_of(&[("FWSEAL_OIDC", "github"), ("FWSEAL_OIDC_AUDIENCE", "a")]);
        let e = format!("{:#}", Credential::from_env(&env).err().unwrap());
        assert!(
            e.contains(GH_REQUEST_URL) && e.contains("id-token: write"),
            "{e}"
        );
        let env = env_of(&[
            ("FWSEAL_OIDC", "github"),
            (GH_REQUEST_URL, "http://127.0.0.1:9/x"),
            (GH_REQUEST_TOKEN, "r"),
        ]);
        let e = format!("{:#}", Credential::from_env(&env).err().unwrap());
        assert!(e.contains(ENV_AUDIENCE), "{e}");
    }

    #[test]
    fn gitlab_reads_the_id_tokens_variable_and_checks_the_audience() {
        let t = jwt(serde_json::json!({"aud": "https://fwseal.example", "exp": now() + 300}));
        let env = env_of(&[("FWSEAL_OIDC", "gitlab"), ("FWSEAL_ID_TOKEN", &t)]);
        assert_eq!(Credential::from_env(&env).unwrap().bearer().unwrap(), t);
        let env = env_of(&[
            ("FWSEAL_OIDC", "GitLab"),
            ("FWSEAL_OIDC_VARIABLE", "SIGNING_ID_TOKEN"),
            ("SIGNING_ID_TOKEN", &t),
            ("FWSEAL_OIDC_AUDIENCE", "https://fwseal.example"),
        ]);
        assert_eq!(Credential::from_env(&env).unwrap().bearer().unwrap(), t);
        // Wrong audience, expired, missing, not a JWT: each named, the token never printed.
        let env = env_of(&[
            ("FWSEAL_OIDC", "gitlab"),
            ("FWSEAL_ID_TOKEN", &t),
            ("FWSEAL_OIDC_AUDIENCE", "fwseal-prod"),
        ]);
        let e = format!("{:#}", Credential::from_env(&env).err().unwrap());
        assert!(e.contains("fwseal-prod") && !e.contains(&t), "{e}");
        let old = jwt(serde_json::json!({"aud": "a", "exp": now() - 100}));
        let env = env_of(&[("FWSEAL_OIDC", "gitlab"), ("FWSEAL_ID_TOKEN", &old)]);
        let e = format!("{:#}", Credential::from_env(&env).err().unwrap());
        assert!(e.contains("expired"), "{e}");
        let env = env_of(&[("FWSEAL_OIDC", "gitlab")]);
        let e = format!("{:#}", Credential::from_env(&env).err().unwrap());
        assert!(
            e.contains("$FWSEAL_ID_TOKEN") && e.contains("id_tokens"),
            "{e}"
        );
        let env = env_of(&[
            ("FWSEAL_OIDC", "gitlab"),
            ("FWSEAL_ID_TOKEN", "static-secret"),
        ]);
        let e = format!("{:#}", Credential::from_env(&env).err().unwrap());
        assert!(e.contains("not hold an OIDC ID token") && !e.contains("static-secret"));
    }

    #[test]
    fn precedence_oidc_then_token_then_file() {
        let t = jwt(serde_json::json!({"aud": "a"}));
        // FWSEAL_OIDC wins over a static token.
        let env = env_of(&[
            ("FWSEAL_OIDC", "gitlab"),
            ("FWSEAL_ID_TOKEN", &t),
            ("FWSEAL_TOKEN", "static"),
        ]);
        assert_eq!(Credential::from_env(&env).unwrap().bearer().unwrap(), t);
        // Then FWSEAL_TOKEN over FWSEAL_TOKEN_FILE.
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "from-file\n").unwrap();
        let p = f.path().to_str().unwrap();
        let env = env_of(&[("FWSEAL_TOKEN", "static"), ("FWSEAL_TOKEN_FILE", p)]);
        assert_eq!(
            Credential::from_env(&env).unwrap().bearer().unwrap(),
            "static"
        );
        let env = env_of(&[("FWSEAL_TOKEN_FILE", p)]);
        assert_eq!(
            Credential::from_env(&env).unwrap().bearer().unwrap(),
            "from-file"
        );
        // Unknown platform, empty secret, nothing at all.
        let env = env_of(&[("FWSEAL_OIDC", "jenkins")]);
        let e = format!("{:#}", Credential::from_env(&env).err().unwrap());
        assert!(e.contains("github, gitlab"), "{e}");
        let env = env_of(&[("FWSEAL_TOKEN", "")]);
        let e = format!("{:#}", Credential::from_env(&env).err().unwrap());
        assert!(e.contains("empty"), "{e}");
        let e = format!("{:#}", Credential::from_env(&env_of(&[])).err().unwrap());
        assert!(e.contains("FWSEAL_OIDC"), "{e}");
    }
}
