//! The HTTP client side: talks to fwseald's `/v1` API.

use anyhow::{anyhow, bail, Context, Result};
use fwseal_api::ProblemDoc;
use serde::de::DeserializeOwned;
use std::io::Read;
use std::path::Path;

/// Where the server is and who we are.
pub struct Client {
    base: String,
    cred: crate::oidc_token::Credential,
    agent: ureq::Agent,
}

/// A non-2xx answer, with the problem document's fields.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable code.
    pub code: String,
    /// Detail.
    pub detail: String,
}

impl ApiError {
    /// From a problem document the server sent with `status`.
    pub fn from_problem(status: u16, p: &ProblemDoc) -> Self {
        ApiError {
            status,
            code: p.code.clone(),
            detail: p.detail.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "server answered {} {}: {}",
            self.status, self.code, self.detail
        )
    }
}
impl std::error::Error for ApiError {}

/// A job ended without a signature (rejected, expired, failed): the request was refused.
#[derive(Debug)]
pub struct JobEnded(pub String);
impl std::fmt::Display for JobEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for JobEnded {}

/// Some submitted images are waiting for approvals (not signed yet). Carries the `--json`
/// output (the results so far and the job documents).
#[derive(Debug)]
pub struct PendingJobs(pub serde_json::Value);
impl std::fmt::Display for PendingJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("waiting for approvals; nothing signed yet")
    }
}
impl std::error::Error for PendingJobs {}

/// A failed request: the server could not be reached.
#[derive(Debug)]
pub struct Unreachable(pub String);
impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot reach the fwseal server: {}", self.0)
    }
}
impl std::error::Error for Unreachable {}

impl Client {
    /// From `--url`/`FWSEAL_URL` and the credential the environment selects (`FWSEAL_OIDC`,
    /// then `FWSEAL_TOKEN`, then `FWSEAL_TOKEN_FILE`; see [`crate::oidc_token`]). The token is
    /// never taken from argv.
    pub fn from_env(url: Option<&str>) -> Result<Self> {
        let base = url
            .map(str::to_string)
            .or_else(|| std::env::var("FWSEAL_URL").ok())
            .ok_or_else(|| anyhow!("no server URL: set FWSEAL_URL or pass --url"))?;
        let cred = crate::oidc_token::Credential::from_env(&crate::oidc_token::process_env)?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            cred,
            agent,
        })
    }

    /// The `Authorization` header value for the next request.
    fn authorization(&self) -> Result<String> {
        Ok(format!("Bearer {}", self.cred.bearer()?))
    }

    fn check(resp: ureq::http::Response<ureq::Body>) -> Result<ureq::http::Response<ureq::Body>> {
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let mut resp = resp;
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Err(match serde_json::from_str::<ProblemDoc>(&text) {
            Ok(p) => ApiError::from_problem(status, &p),
            // Not a problem document (a proxy's error page, say): show what came back.
            Err(_) => ApiError {
                status,
                code: "unknown".into(),
                detail: text,
            },
        }
        .into())
    }

    /// Read a 2xx body (at most 64 MiB) as `T`.
    fn parse<T: DeserializeOwned>(
        mut resp: ureq::http::Response<ureq::Body>,
        path: &str,
    ) -> Result<T> {
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()?;
        serde_json::from_str(&text).with_context(|| format!("unexpected answer to {path}"))
    }

    fn unreachable(e: ureq::Error) -> anyhow::Error {
        Unreachable(e.to_string()).into()
    }

    /// GET a text answer (a signed note, a bundle), at most 16 MiB.
    pub fn get_text(&self, path: &str) -> Result<String> {
        let resp = self
            .agent
            .get(&format!("{}{path}", self.base))
            .header("Authorization", &self.authorization()?)
            .call()
            .map_err(Self::unreachable)?;
        let mut resp = Self::check(resp)?;
        Ok(resp
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()?)
    }

    /// GET a JSON answer as `T` (a `fwseal_api` type).
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self
            .agent
            .get(&format!("{}{path}", self.base))
            .header("Authorization", &self.authorization()?)
            .call()
            .map_err(Self::unreachable)?;
        Self::parse(Self::check(resp)?, path)
    }

    /// POST several files in one `multipart/form-data` request (one part per file, the file
    /// name as the part's filename), streamed from disk; returns the answer as `T`.
    pub fn post_files<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
        files: &[std::path::PathBuf],
        quiet: bool,
    ) -> Result<T> {
        let boundary = format!(
            "fwseal-{:032x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let mut total = 0u64;
        let mut reader: Box<dyn Read + Send> = Box::new(std::io::empty());
        for f in files {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            // Quotes, backslashes and line breaks cannot appear in the quoted filename.
            let name: String = name
                .chars()
                .map(|c| {
                    if matches!(c, '"' | '\\' | '\r' | '\n') {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            let head = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            );
            let file = std::fs::File::open(f).with_context(|| format!("open {}", f.display()))?;
            total += head.len() as u64 + file.metadata()?.len() + 2;
            reader = Box::new(
                reader
                    .chain(std::io::Cursor::new(head.into_bytes()))
                    .chain(file)
                    .chain(std::io::Cursor::new(b"\r\n".to_vec())),
            );
        }
        let tail = format!("--{boundary}--\r\n");
        total += tail.len() as u64;
        let reader = reader.chain(std::io::Cursor::new(tail.into_bytes()));
        self.post_stream(
            path,
            query,
            &format!("multipart/form-data; boundary={boundary}"),
            total,
            reader,
            quiet,
        )
    }

    /// POST `len` bytes from `reader` (streamed, with a progress bar for big ones), returning
    /// the answer as `T`.
    fn post_stream<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
        content_type: &str,
        len: u64,
        reader: impl Read + Send + 'static,
        quiet: bool,
    ) -> Result<T> {
        let bar = progress(Some(len), quiet);
        let reader = Progress {
            inner: reader,
            bar: bar.clone(),
            done: 0,
        };
        let mut req = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("Authorization", &self.authorization()?)
            .header("Content-Type", content_type)
            .header("Content-Length", &len.to_string());
        for (k, v) in query {
            req = req.query(k, v);
        }
        let resp = req
            .send(ureq::SendBody::from_owned_reader(reader))
            .map_err(Self::unreachable)?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Self::parse(Self::check(resp)?, path)
    }

    /// POST a JSON body (a `fwseal_api` type), returning the answer as `R`.
    pub fn post_json<T: serde::Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<R> {
        let data = serde_json::to_vec(body)?;
        let resp = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("Authorization", &self.authorization()?)
            .header("Content-Type", "application/json")
            .send(&data[..])
            .map_err(Self::unreachable)?;
        Self::parse(Self::check(resp)?, path)
    }

    /// GET a body into a file (atomically: temp file + rename), with a progress bar for big ones.
    pub fn download(&self, path: &str, out: &Path, quiet: bool) -> Result<u64> {
        let resp = self
            .agent
            .get(&format!("{}{path}", self.base))
            .header("Authorization", &self.authorization()?)
            .call()
            .map_err(Self::unreachable)?;
        let resp = Self::check(resp)?;
        let len: Option<u64> = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok());
        let mut tmp = temp_beside(out)?;
        let mut reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
        let bar = progress(len, quiet);
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            std::io::Write::write_all(&mut tmp, &buf[..n])?;
            total += n as u64;
            if let Some(b) = &bar {
                b.set_position(total);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        persist(tmp, out)?;
        Ok(total)
    }

    /// POST a file as the body (streamed), returning the answer as `T`.
    pub fn post_file<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
        file: &Path,
        quiet: bool,
    ) -> Result<T> {
        let f = std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?;
        let len = f.metadata()?.len();
        self.post_stream(path, query, "application/octet-stream", len, f, quiet)
    }
}

/// The query parameters of a `fwseal_api` query type, as `(name, value)` pairs (serde names,
/// unset parameters left out).
pub fn query_pairs<T: serde::Serialize>(q: &T) -> Result<Vec<(String, String)>> {
    let v = serde_json::to_value(q)?;
    let Some(o) = v.as_object() else {
        bail!("a query must serialize as an object");
    };
    o.iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
            serde_json::Value::Number(n) => Ok((k.clone(), n.to_string())),
            serde_json::Value::Bool(b) => Ok((k.clone(), b.to_string())),
            other => bail!("query parameter {k} = {other} is not a scalar"),
        })
        .collect()
}

/// `path?k=v&…` for a `fwseal_api` query type, values percent-encoded (`path` when no
/// parameter is set).
pub fn with_query<T: serde::Serialize>(path: &str, q: &T) -> Result<String> {
    let pairs = query_pairs(q)?;
    if pairs.is_empty() {
        return Ok(path.to_string());
    }
    let q: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect();
    Ok(format!("{path}?{}", q.join("&")))
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn urlencode(s: &str) -> String {
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

/// Progress bars only for transfers over 4 MB and only on a terminal.
fn progress(len: Option<u64>, quiet: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    let len = len?;
    if quiet || len < (4 << 20) || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new(len);
    b.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(b)
}

struct Progress<R> {
    inner: R,
    bar: Option<indicatif::ProgressBar>,
    done: u64,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if let Some(b) = &self.bar {
            b.set_position(self.done);
        }
        Ok(n)
    }
}

/// A temporary file next to `out`, to be [`persist`]ed once complete (never a partial file).
pub fn temp_beside(out: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("create a file in {}", dir.display()))
}

/// Flush `tmp` to disk and rename it to `out`.
pub fn persist(tmp: tempfile::NamedTempFile, out: &Path) -> Result<()> {
    tmp.as_file().sync_all()?;
    tmp.persist(out)
        .map_err(|e| e.error)
        .with_context(|| format!("write {}", out.display()))?;
    Ok(())
}

/// Write `data` to `out` atomically.
pub fn write_atomic(out: &Path, data: &[u8]) -> Result<()> {
    let mut tmp = temp_beside(out)?;
    std::io::Write::write_all(&mut tmp, data)?;
    persist(tmp, out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use fwseal_api::{JobsFilter, JobsQuery, SignParamsQuery};

    #[test]
    fn queries_come_from_the_api_types() {
        let q = SignParamsQuery {
            format: "mcuboot".into(),
            version: Some("1.2.3+4".into()),
        };
        assert_eq!(
            with_query("/v1/products/p/sign-params", &q).unwrap(),
            "/v1/products/p/sign-params?format=mcuboot&version=1.2.3%2B4"
        );
        assert_eq!(
            with_query("/v1/jobs", &JobsQuery::default()).unwrap(),
            "/v1/jobs"
        );
        let q = JobsQuery {
            product: Some("a b".into()),
            state: Some(JobsFilter::All),
        };
        assert_eq!(
            with_query("/v1/jobs", &q).unwrap(),
            "/v1/jobs?product=a%20b&state=all"
        );
    }
}
