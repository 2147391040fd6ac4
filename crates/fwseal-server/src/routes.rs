//! Routes and handlers (`/v1/...`, health, metrics).

use crate::auth::{allowed, authenticate, bearer, Identity};
use crate::config::{Config, Policy, ProductConfig, Role};
use crate::keys::KeyError;
use crate::problem::Problem;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use fwseal_crypto::Signer;
use fwseal_formats::files::{self as pipeline, DetectError};
use fwseal_formats::{
    sign_prepared, Format, FormatError, ImageVersion, Mode, Prepared, Request as SignRequest,
};
use fwseal_store::{Action, AuditEntry, AuditLog, Decision};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

mod batch;
mod digest;

type Shared = Arc<AppState>;

/// The router.
pub fn app(state: Shared) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/products/{product}/sign", post(sign))
        .route(
            "/v1/products/{product}/sign-batch",
            post(batch::sign_batch).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/products/{product}/sign-digest",
            post(digest::sign_digest),
        )
        .route(
            "/v1/products/{product}/sign-params",
            get(digest::sign_params),
        )
        .route("/v1/products/{product}/artifacts", get(list))
        .route("/v1/products/{product}/keys", get(product_keys))
        .route("/v1/artifacts/{id}", get(artifact_meta))
        .route("/v1/artifacts/{id}/{part}", get(artifact_part))
        .route("/v1/audit/export", get(audit_export))
        .route("/v1/jobs", get(crate::approvals::list))
        .route("/v1/jobs/{id}", get(crate::approvals::show))
        .route("/v1/jobs/{id}/input", get(crate::approvals::input))
        .route("/v1/jobs/{id}/approve", post(crate::approvals::approve))
        .route("/v1/jobs/{id}/reject", post(crate::approvals::reject))
        .layer(middleware::from_fn_with_state(state.clone(), mtls_gate))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Mutual TLS: when the config names a client CA, a client whose config has `tls_subject` is
/// accepted only on a connection whose verified client certificate has that subject CN (token
/// AND certificate). Other clients, and plain-HTTP deployments, are unaffected.
async fn mtls_gate(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let cfg = st.config();
    if cfg
        .tls
        .as_ref()
        .and_then(|t| t.client_ca.as_ref())
        .is_none()
    {
        return next.run(req).await;
    }
    let who = bearer(req.headers()).and_then(|t| authenticate(&cfg, t));
    let want = who
        .as_ref()
        .and_then(|w| cfg.clients.iter().find(|c| c.name == w.name))
        .and_then(|c| c.tls_subject.clone());
    if let (Some(who), Some(want)) = (who, want) {
        let got = req
            .extensions()
            .get::<crate::tls::PeerIdentity>()
            .and_then(|p| p.0.clone());
        if got.as_deref() != Some(want.as_str()) {
            let reason = format!(
                "client certificate subject {:?} does not match the client's tls_subject",
                got.unwrap_or_default()
            );
            audit_denied(&st, &who.name, "authenticate", "", &reason).await;
            return Problem::unauthenticated().into_response();
        }
    }
    next.run(req).await
}

/// Request metrics by route template.
async fn observe(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let t = Instant::now();
    let resp = next.run(req).await;
    st.metrics
        .requests
        .get_or_create(&crate::metrics::RouteLabels {
            route: route.clone(),
            status: resp.status().as_u16(),
        })
        .inc();
    st.metrics
        .latency
        .get_or_create(&crate::metrics::RouteOnly { route })
        .observe(t.elapsed().as_secs_f64());
    resp
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(st): State<Shared>) -> Response {
    let keys = st.keys.clone();
    match tokio::task::spawn_blocking(move || keys.health()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => Problem::hsm_unavailable(e.to_string()).into_response(),
        Err(e) => Problem::internal(e.to_string()).into_response(),
    }
}

async fn metrics(State(st): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::SPEC,
    )
        .into_response()
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Authenticate, or audit the denial and answer 401.
pub(crate) async fn identify(
    st: &Shared,
    headers: &HeaderMap,
    action: &str,
    product: &str,
) -> Result<Identity, Response> {
    let cfg = st.config();
    match bearer(headers).and_then(|t| authenticate(&cfg, t)) {
        Some(id) => Ok(id),
        None => {
            audit_denied(st, "anonymous", action, product, "unauthenticated").await;
            Err(Problem::unauthenticated().into_response())
        }
    }
}

/// Authorise `role` on `product`; unknown and forbidden products look the same (404).
async fn authorize(
    st: &Shared,
    who: &Identity,
    product: &str,
    role: Role,
    action: &str,
) -> Result<Arc<Config>, Response> {
    let cfg = st.config();
    if allowed(&cfg, who, product, role) {
        Ok(cfg)
    } else {
        audit_denied(
            st,
            &who.name,
            action,
            product,
            &format!("no {role:?} role on product (or no such product)"),
        )
        .await;
        Err(Problem::no_such_product().into_response())
    }
}

/// Authenticate and authorise a submitter of `product` (denials audited); the config it was
/// checked against and the product's part of it.
async fn submitter(
    st: &Shared,
    headers: &HeaderMap,
    product: &str,
) -> Result<(Identity, Arc<Config>, ProductConfig), Response> {
    let who = identify(st, headers, "sign", product).await?;
    let cfg = authorize(st, &who, product, Role::Submitter, "sign").await?;
    let Some(pcfg) = cfg.product(product).cloned() else {
        return Err(Problem::no_such_product().into_response());
    };
    Ok((who, cfg, pcfg))
}

/// An audit entry stamped now. An empty product is recorded as absent.
pub(crate) fn entry(client: &str, action: &str, product: &str, decision: Decision) -> AuditEntry {
    let mut e = AuditEntry::new(now_rfc3339(), client, Action::from_name(action), decision);
    e.product = (!product.is_empty()).then(|| product.to_string());
    e
}

pub(crate) async fn audit_denied(
    st: &Shared,
    client: &str,
    action: &str,
    product: &str,
    reason: &str,
) {
    let mut ev = entry(client, action, product, Decision::Deny);
    ev.reason = Some(reason.to_string());
    let store = st.store.clone();
    match tokio::task::spawn_blocking(move || store.append(&ev)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "audit append for a denial failed"),
        Err(e) => tracing::error!(error = %e, "audit append for a denial panicked"),
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> (String, Problem) {
    (e.to_string(), Problem::internal(e.to_string()))
}

/// Query parameters of `POST /v1/products/{product}/sign`; stored with a pending job (as its
/// `params`) so the release signs exactly what was requested.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(crate) struct SignQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) source_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) commit: Option<String>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub(crate) git_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ci_run_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) builder_id: Option<String>,
}

/// One signature in a sign response.
#[derive(Debug, Serialize)]
struct SigOut {
    alg: fwseal_crypto::SigAlg,
    key_id: String,
}

/// Response of a successful sign.
#[derive(Debug, Serialize)]
pub(crate) struct SignResponse {
    artifact_id: String,
    product: String,
    format: Format,
    mode: Mode,
    input_sha256: String,
    output_sha256: String,
    digest: serde_json::Value,
    signatures: Vec<SigOut>,
    /// Approver identities (M-of-N products); absent for an immediate sign.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    approvers: Vec<String>,
    links: serde_json::Value,
}

impl SignResponse {
    /// The new artifact's id.
    pub(crate) fn artifact_id(&self) -> &str {
        &self.artifact_id
    }
}

pub(crate) fn format_problem(e: FormatError) -> Problem {
    match e {
        FormatError::TooLarge { limit } => Problem::too_large(limit),
        FormatError::Unsupported(m) => Problem::unsupported(m),
        e @ FormatError::UnsupportedFlavour(_) => Problem::unsupported(e.to_string()),
        FormatError::Misuse(m) => Problem::internal(m),
        FormatError::Crypto(c) => Problem::hsm_unavailable(c.to_string()),
        other => Problem::malformed(other.to_string()),
    }
}

pub(crate) fn detect_problem(e: DetectError) -> Problem {
    match e {
        DetectError::Io(e) => Problem::internal(e.to_string()),
        DetectError::Format(f) => format_problem(f),
    }
}

/// Spool an upload (a request body or one multipart part) to a file in the spool dir, hashing
/// it; enforce the size limit.
async fn spool<E: std::fmt::Display>(
    st: &Shared,
    mut stream: impl futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
    limit: u64,
) -> Result<(tempfile::TempPath, u64, [u8; 32]), Problem> {
    let tmp = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(&st.spool)
        .map_err(|e| Problem::internal(format!("spool: {e}")))?;
    let (file, path) = tmp.into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut h = Sha256::new();
    let mut len = 0u64;
    use tokio::io::AsyncWriteExt;
    while let Some(chunk) = stream.next().await {
        let chunk: Bytes = chunk.map_err(|e| {
            if e.to_string().contains("length limit") {
                Problem::too_large(limit)
            } else {
                Problem::bad_request(format!("reading the upload: {e}"))
            }
        })?;
        len += chunk.len() as u64;
        if len > limit {
            return Err(Problem::too_large(limit));
        }
        h.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| Problem::internal(format!("spool: {e}")))?;
    }
    file.flush()
        .await
        .map_err(|e| Problem::internal(format!("spool: {e}")))?;
    Ok((path, len, h.finalize().into()))
}

fn requested_algs(
    p: &ProductConfig,
    format: Format,
) -> (Option<fwseal_crypto::SigAlg>, Option<fwseal_crypto::SigAlg>) {
    use fwseal_crypto::SigAlg;
    // RSA keys sign PSS for MCUboot and PKCS#1 v1.5 for Authenticode, whatever the product says.
    let c = p.classical_alg().map(|c| match (c, format) {
        (SigAlg::RsaPkcs1Sha256 | SigAlg::RsaPssSha256, Format::Mcuboot) => SigAlg::RsaPssSha256,
        (SigAlg::RsaPkcs1Sha256 | SigAlg::RsaPssSha256, Format::Efi) => SigAlg::RsaPkcs1Sha256,
        (c, _) => c,
    });
    (c, p.pq_alg())
}

async fn sign(
    State(st): State<Shared>,
    Path(product): Path<String>,
    Query(q): Query<SignQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match sign_inner(&st, &product, q, &headers, body).await {
        Ok(r) => r,
        Err(r) => r,
    }
}

/// A refusal: the reason recorded in the audit log and the problem the client gets.
pub(crate) type Refusal = (String, Problem);

/// Check the request's version / format / mode parameters against the product.
fn parse_params(
    pcfg: &ProductConfig,
    q: &SignQuery,
) -> Result<(Option<ImageVersion>, Option<Format>, Mode), Refusal> {
    let version = match q.version.as_deref().map(str::parse::<ImageVersion>) {
        Some(Err(e)) => {
            return Err((
                format!("bad version: {e}"),
                Problem::bad_request(format!("version: {e}")),
            ))
        }
        Some(Ok(v)) => Some(v),
        None => None,
    };
    let format = match q.format.as_deref() {
        Some(f) => match Format::from_name(f) {
            Some(f) => Some(f),
            None => {
                return Err((
                    format!("unknown format {f}"),
                    Problem::bad_request(format!("unknown format {f:?}")),
                ))
            }
        },
        None => None,
    };
    Ok((version, format, q.mode.unwrap_or(pcfg.default_mode)))
}

/// What the intake stage produced: the input on disk, its hash, and the signing plan (which
/// holds the format-aware digest). Signing needs nothing else.
pub(crate) struct Intake {
    /// Keeps a spooled upload alive until signed; `None` when `path` is a stored blob.
    pub(crate) spool: Option<tempfile::TempPath>,
    pub(crate) path: std::path::PathBuf,
    pub(crate) len: u64,
    pub(crate) input_sha: [u8; 32],
    pub(crate) name: String,
    pub(crate) format: Format,
    pub(crate) mode: Mode,
    pub(crate) version: Option<ImageVersion>,
    pub(crate) plan: Box<dyn Prepared>,
}

/// Blocking: detect the format (unless given), check the product accepts it, and prepare the
/// signing plan by streaming the file through the format engine.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_blocking(
    pcfg: &ProductConfig,
    format_override: Option<Format>,
    path: &std::path::Path,
    len: u64,
    name: &str,
    mode: Mode,
    version: Option<ImageVersion>,
    random_limit: u64,
) -> Result<(Format, Box<dyn Prepared>), Refusal> {
    let ext = std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str());
    let format = match format_override {
        Some(f) => f,
        None => pipeline::detect_file(path, len, ext).map_err(|e| {
            let p = detect_problem(e);
            (p.detail.clone(), p)
        })?,
    };
    if !pcfg.allows(format) {
        let m = format!("product {} does not accept {format} images", pcfg.name);
        return Err((m.clone(), Problem::unsupported(m)));
    }
    let (classical, pq) = requested_algs(pcfg, format);
    let req = SignRequest {
        classical,
        pq,
        mode,
        options: pcfg.sign_options(version),
    };
    let plan = pipeline::prepare_file(format, path, &req, random_limit).map_err(|e| {
        let p = detect_problem(e);
        (p.detail.clone(), p)
    })?;
    Ok((format, plan))
}

/// Who and what a signature is made for, besides the plan.
pub(crate) struct Finalize {
    /// The client that submitted the image (the artifact's `client`).
    pub(crate) requester: String,
    pub(crate) pcfg: ProductConfig,
    pub(crate) q: SignQuery,
    pub(crate) started: String,
    /// For a released job: its id and the approver identities.
    pub(crate) job: Option<(String, Vec<String>)>,
}

async fn sign_inner(
    st: &Shared,
    product: &str,
    q: SignQuery,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    let started = now_rfc3339();
    let (who, cfg, pcfg) = submitter(st, headers, product).await?;
    let deny = |(reason, p): Refusal| {
        let st = st.clone();
        let who = who.name.clone();
        let product = product.to_string();
        async move {
            audit_denied(&st, &who, "sign", &product, &reason).await;
            p.into_response()
        }
    };
    let params = match parse_params(&pcfg, &q) {
        Ok(x) => x,
        Err(r) => return Err(deny(r).await),
    };
    sign_upload(
        st,
        &who,
        &cfg,
        &pcfg,
        q,
        params,
        started,
        body.into_data_stream(),
    )
    .await
}

/// Everything after authorisation, for one uploaded image: spool, intake, then a pending job
/// (approval policy) or an immediate sign. Shared by `sign` and `sign-batch`.
#[allow(clippy::too_many_arguments)]
async fn sign_upload<E: std::fmt::Display>(
    st: &Shared,
    who: &Identity,
    cfg: &Config,
    pcfg: &ProductConfig,
    q: SignQuery,
    (version, format_override, mode): (Option<ImageVersion>, Option<Format>, Mode),
    started: String,
    upload: impl futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
) -> Result<Response, Response> {
    let product = pcfg.name.as_str();
    let deny = |(reason, p): Refusal| {
        let st = st.clone();
        let who = who.name.clone();
        let product = product.to_string();
        async move {
            audit_denied(&st, &who, "sign", &product, &reason).await;
            p.into_response()
        }
    };
    let (spooled, len, input_sha) = match spool(st, upload, cfg.max_upload_bytes).await {
        Ok(x) => x,
        Err(p) => return Err(deny((p.detail.clone(), p)).await),
    };
    let name = q
        .name
        .clone()
        .unwrap_or_else(|| format!("image-{}", &hex::encode(input_sha)[..12]));

    // Intake: detect and prepare (blocking), which yields the format-aware digest.
    let pcfg2 = pcfg.clone();
    let random_limit = cfg.max_random_access_bytes;
    let path = spooled.to_path_buf();
    let (name2, path2) = (name.clone(), path.clone());
    let keys = st.keys.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        let (format, plan) = prepare_blocking(
            &pcfg2,
            format_override,
            &path2,
            len,
            &name2,
            mode,
            version,
            random_limit,
        )?;
        // Only a policy restricted to key versions needs to know the current one.
        let key_version = match &pcfg2.approvals {
            Some(a) if !a.key_versions.is_empty() => keys
                .current_version(&pcfg2.name)
                .map_err(|e| (e.to_string(), Problem::hsm_unavailable(e.to_string())))?,
            _ => None,
        };
        Ok::<_, Refusal>((format, plan, key_version))
    })
    .await;
    let (format, plan, key_version) = match prepared {
        Ok(Ok(x)) => x,
        Ok(Err(r)) => return Err(deny(r).await),
        Err(e) => return Err(Problem::internal(e.to_string()).into_response()),
    };
    let intake = Intake {
        spool: Some(spooled),
        path,
        len,
        input_sha,
        name,
        format,
        mode,
        version,
        plan,
    };
    if let Some(policy) = pcfg.approvals.clone().filter(|a| a.applies_to(key_version)) {
        // M-of-N product: store the input and a pending job; nothing is signed yet.
        let mut q = q;
        q.format = Some(format.name().to_string());
        q.mode = Some(mode);
        return crate::approvals::submit(st, who, pcfg, &policy, intake, q, key_version).await;
    }
    let fin = Finalize {
        requester: who.name.clone(),
        pcfg: pcfg.clone(),
        q,
        started,
        job: None,
    };
    match sign_and_finalize(st, intake, fin).await {
        Ok(resp) => Ok((StatusCode::CREATED, Json(resp)).into_response()),
        Err(r) => Err(deny(r).await),
    }
}

/// Sign and finalize: product signers, signatures (PQ first), embed, store the blobs, sign the
/// provenance, commit the audit record and the artifact index. Used by an immediate sign and by
/// a job's release after its quorum, so both produce exactly the same artifacts.
pub(crate) async fn sign_and_finalize(
    st: &Shared,
    intake: Intake,
    fin: Finalize,
) -> Result<SignResponse, Refusal> {
    let product = fin.pcfg.name.clone();
    let Intake {
        spool,
        path,
        len,
        input_sha,
        name,
        format,
        mode,
        version,
        plan,
    } = intake;
    let st2 = st.clone();
    let pcfg2 = fin.pcfg.clone();
    let work = tokio::task::spawn_blocking(move || -> Result<Signed, Refusal> {
        let (classical, pq) = requested_algs(&pcfg2, format);
        let signers = st2
            .keys
            .product_signers(&pcfg2.name, classical, pq)
            .map_err(|e| {
                st2.metrics.hsm_errors.inc();
                match e {
                    KeyError::Missing { .. } => {
                        (e.to_string(), Problem::unsupported(e.to_string()))
                    }
                    KeyError::Unavailable(_) => {
                        (e.to_string(), Problem::hsm_unavailable(e.to_string()))
                    }
                }
            })?;
        let certs = signers.certificate.clone().into_iter().collect();
        let set = sign_prepared(
            plan.as_ref(),
            signers.classical.as_deref().map(|s| s as &dyn Signer),
            signers.pq.as_deref().map(|s| s as &dyn Signer),
            certs,
        )
        .map_err(|e| {
            st2.metrics.hsm_errors.inc();
            (e.to_string(), Problem::hsm_unavailable(e.to_string()))
        })?;
        let doc = plan
            .detached(&set)
            .map_err(|e| (e.to_string(), format_problem(e)))?;
        let doc_json = doc.to_json().into_bytes();
        // The image artifact: the signed image (embedded) or the unchanged input (detached).
        let parts = match mode {
            Mode::Embedded => plan
                .embed(&set)
                .map_err(|e| (e.to_string(), format_problem(e)))?,
            Mode::Detached => vec![fwseal_formats::Part::Input { start: 0, len }],
        };
        let mut w = st2.blobs.writer().map_err(internal)?;
        pipeline::write_parts(&parts, &path, &mut w).map_err(internal)?;
        let image_sha = w.finish().map_err(internal)?.sha256;
        let doc_sha = st2.blobs.put(&doc_json).map_err(internal)?.sha256;
        let (da, dv) = plan.digest();
        Ok(Signed {
            set,
            image_sha,
            doc_sha,
            digest: (da, dv),
            policy: pcfg2.policy,
            certificate: signers.certificate,
        })
    })
    .await;
    drop(spool);
    let signed = match work {
        Ok(Ok(s)) => s,
        Ok(Err(r)) => return Err(r),
        Err(e) => return Err(internal(e)),
    };
    for s in &signed.set.signatures {
        st.metrics
            .signatures
            .get_or_create(&crate::metrics::SigLabels {
                product: product.clone(),
                alg: s.alg.name().to_string(),
            })
            .inc();
    }

    // Provenance, signed by the appliance's own keys.
    let artifact_id = fwseal_store::new_artifact_id().map_err(internal)?;
    let q = &fin.q;
    let claims = fwseal_provenance::ClientClaims {
        source_uri: q.source_uri.clone(),
        commit: q.commit.clone(),
        git_ref: q.git_ref.clone(),
        ci_run_url: q.ci_run_url.clone(),
        builder_id: q.builder_id.clone(),
    };
    let approvers = fin.job.as_ref().map(|j| j.1.clone()).unwrap_or_default();
    let st3 = st.clone();
    let prov_in = fwseal_provenance::SigningRecord {
        artifact_name: signed_name(&name, mode),
        artifact_sha256: hex::encode(signed.image_sha),
        input_name: name.clone(),
        input_sha256: hex::encode(input_sha),
        detached_sha256: Some(hex::encode(signed.doc_sha)),
        product: product.clone(),
        format: format.name().to_string(),
        mode: mode_name(mode).to_string(),
        hash_locally: false,
        key_ids: signed
            .set
            .signatures
            .iter()
            .map(|s| (s.alg.name().to_string(), s.key_id.to_hex()))
            .collect(),
        signature_sha256: signed
            .set
            .signatures
            .iter()
            .map(|s| hex::encode(Sha256::digest(&s.bytes)))
            .collect(),
        policy: policy_name(signed.policy).to_string(),
        approvers: approvers.clone(),
        builder_id: st.config().identity.clone(),
        invocation_id: artifact_id.clone(),
        started_on: fin.started.clone(),
        finished_on: now_rfc3339(),
        client_claims: claims,
    };
    let prov = tokio::task::spawn_blocking(move || -> Result<[u8; 32], String> {
        let keys = st3.keys.appliance_signers().map_err(|e| e.to_string())?;
        let env =
            fwseal_provenance::sign_record(&prov_in, keys.classical.as_ref(), keys.pq.as_ref())
                .map_err(|e| e.to_string())?;
        let line = env.to_jsonl();
        Ok(st3
            .blobs
            .put(line.as_bytes())
            .map_err(|e| e.to_string())?
            .sha256)
    })
    .await;
    let prov_sha = match prov {
        Ok(Ok(sha)) => sha,
        Ok(Err(e)) => {
            let m = format!("provenance signing failed: {e}");
            return Err((m.clone(), Problem::hsm_unavailable(m)));
        }
        Err(e) => return Err(internal(e)),
    };

    // The audit record is durably committed BEFORE the signature leaves.
    let key_ids: Vec<fwseal_crypto::KeyId> =
        signed.set.signatures.iter().map(|s| s.key_id).collect();
    let mut ev = entry(&fin.requester, "sign", &product, Decision::Allow);
    ev.key_ids = key_ids.clone();
    ev.cert_sha256 = signed
        .certificate
        .as_ref()
        .map(|c| Sha256::digest(c).into());
    ev.input_sha256 = Some(input_sha);
    ev.output_sha256 = Some(signed.image_sha);
    ev.format = Some(format.name().to_string());
    ev.mode = Some(mode_name(mode).to_string());
    let mut extra = serde_json::json!({
        "artifact": artifact_id,
        "detached_sha256": hex::encode(signed.doc_sha),
        "provenance_sha256": hex::encode(prov_sha),
    });
    if let Some((job, approvers)) = &fin.job {
        extra["job"] = serde_json::json!(job);
        extra["approvers"] = serde_json::json!(approvers);
        extra["digest"] = serde_json::json!({
            "alg": signed.digest.0, "value": hex::encode(&signed.digest.1)
        });
    }
    let ev = ev.with_extra(&extra);
    let meta = fwseal_store::ArtifactMeta {
        id: artifact_id.clone(),
        product: product.clone(),
        format: format.name().to_string(),
        mode: mode_name(mode).to_string(),
        version: version.map(|v| v.to_string()),
        input_sha256: input_sha,
        output_sha256: signed.image_sha,
        detached_sha256: Some(signed.doc_sha),
        provenance_sha256: Some(prov_sha),
        key_ids,
        client: Some(fin.requester.clone()),
        created: now_rfc3339(),
    };
    let store = st.store.clone();
    let committed = tokio::task::spawn_blocking(move || -> Result<(), String> {
        store
            .commit(&ev, Some(&meta))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
    match committed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let m = format!("audit log: {e}; signature withheld");
            return Err((m.clone(), Problem::internal(m)));
        }
        Err(e) => return Err(internal(e)),
    }
    let base = format!("/v1/artifacts/{artifact_id}");
    Ok(SignResponse {
        artifact_id: artifact_id.clone(),
        product,
        format,
        mode,
        input_sha256: hex::encode(input_sha),
        output_sha256: hex::encode(signed.image_sha),
        digest: serde_json::json!({"alg": signed.digest.0, "value": hex::encode(&signed.digest.1)}),
        signatures: signed
            .set
            .signatures
            .iter()
            .map(|s| SigOut {
                alg: s.alg,
                key_id: s.key_id.to_hex(),
            })
            .collect(),
        approvers,
        links: serde_json::json!({
            "self": base,
            "image": format!("{base}/image"),
            "detached": format!("{base}/detached"),
            "provenance": format!("{base}/provenance"),
        }),
    })
}

struct Signed {
    set: fwseal_crypto::SignatureSet,
    image_sha: [u8; 32],
    doc_sha: [u8; 32],
    digest: (fwseal_crypto::DigestAlg, Vec<u8>),
    policy: Policy,
    certificate: Option<Vec<u8>>,
}

fn signed_name(name: &str, mode: Mode) -> String {
    match mode {
        Mode::Detached => name.to_string(),
        Mode::Embedded => match name.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}.signed.{ext}"),
            None => format!("{name}.signed"),
        },
    }
}

pub(crate) fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Embedded => "embedded",
        Mode::Detached => "detached",
    }
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::Hybrid => "hybrid",
        Policy::ClassicalOnly => "classical-only",
        Policy::PqOnly => "pq-only",
    }
}

/// Filters of the artifact list.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    version: Option<String>,
    digest: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(st): State<Shared>,
    Path(product): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let who = match identify(&st, &headers, "list", &product).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if let Err(r) = authorize(&st, &who, &product, Role::Factory, "list").await {
        return r;
    }
    let store = st.store.clone();
    let digest = match q.digest.as_deref().map(fwseal_store::record::hash_from_hex) {
        None => None,
        Some(Some(d)) => Some(d),
        Some(None) => {
            return Problem::bad_request("digest must be 64 hex digits (SHA-256)").into_response()
        }
    };
    let filter = fwseal_store::ArtifactQuery {
        version: q.version,
        digest,
        since: q.since,
        until: q.until,
        limit: Some(
            q.limit
                .map_or(100, |l| l as usize)
                .min(fwseal_store::meta::MAX_LIST),
        ),
    };
    let p = product.clone();
    match tokio::task::spawn_blocking(move || {
        fwseal_store::ArtifactIndex::list_artifacts(store.as_ref(), &p, &filter)
    })
    .await
    {
        Ok(Ok(v)) => {
            Json(serde_json::json!({ "product": product, "artifacts": v })).into_response()
        }
        Ok(Err(e)) => Problem::internal(e.to_string()).into_response(),
        Err(e) => Problem::internal(e.to_string()).into_response(),
    }
}

/// Look up an artifact and check the caller may fetch it; a missing and a forbidden artifact
/// look the same.
async fn fetchable(
    st: &Shared,
    headers: &HeaderMap,
    id: &str,
    action: &str,
) -> Result<(Identity, fwseal_store::ArtifactMeta), Response> {
    let who = identify(st, headers, action, "").await?;
    let store = st.store.clone();
    let idc = id.to_string();
    let meta = match tokio::task::spawn_blocking(move || {
        fwseal_store::ArtifactIndex::artifact(store.as_ref(), &idc)
    })
    .await
    {
        Ok(Ok(Some(m))) => m,
        Ok(Ok(None)) => {
            audit_denied(st, &who.name, action, "", &format!("no artifact {id}")).await;
            return Err(Problem::no_such_artifact(id).into_response());
        }
        Ok(Err(e)) => return Err(Problem::internal(e.to_string()).into_response()),
        Err(e) => return Err(Problem::internal(e.to_string()).into_response()),
    };
    let cfg = st.config();
    if !(allowed(&cfg, &who, &meta.product, Role::Factory)
        || allowed(&cfg, &who, &meta.product, Role::Submitter))
    {
        audit_denied(
            st,
            &who.name,
            action,
            &meta.product,
            &format!("artifact {id}: no factory role"),
        )
        .await;
        return Err(Problem::no_such_artifact(id).into_response());
    }
    Ok((who, meta))
}

async fn artifact_meta(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match fetchable(&st, &headers, &id, "fetch").await {
        Ok((_, m)) => Json(m).into_response(),
        Err(r) => r,
    }
}

async fn artifact_part(
    State(st): State<Shared>,
    Path((id, part)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (who, meta) = match fetchable(&st, &headers, &id, "fetch").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let ext = match meta.format.as_str() {
        "ihex" | "hex" => "hex",
        "efi" => "efi",
        "dfu" => "dfu",
        _ => "bin",
    };
    let (sha, ctype, fname) = match part.as_str() {
        "image" => (
            Some(meta.output_sha256),
            "application/octet-stream",
            format!("{id}.{ext}"),
        ),
        "detached" => (
            meta.detached_sha256,
            "application/json",
            format!("{id}.sig.json"),
        ),
        "provenance" => (
            meta.provenance_sha256,
            "application/vnd.in-toto+json",
            format!("{id}.intoto.jsonl"),
        ),
        _ => return Problem::no_such_artifact(&format!("{id}/{part}")).into_response(),
    };
    let Some(sha) = sha else {
        return Problem::no_such_artifact(&format!("{id}/{part}")).into_response();
    };
    let mut ev = entry(&who.name, "fetch", &meta.product, Decision::Allow);
    ev.output_sha256 = Some(sha);
    let ev = ev.with_extra(&serde_json::json!({"artifact": id, "part": part}));
    let store = st.store.clone();
    let blobs = st.blobs.clone();
    let file =
        match tokio::task::spawn_blocking(move || -> Result<Option<std::fs::File>, String> {
            store.append(&ev).map_err(|e| e.to_string())?;
            blobs.open(&sha).map_err(|e| e.to_string())
        })
        .await
        {
            Ok(Ok(Some(f))) => tokio::fs::File::from_std(f),
            Ok(Ok(None)) => {
                return Problem::internal("artifact content missing from the store").into_response()
            }
            Ok(Err(e)) => return Problem::internal(e).into_response(),
            Err(e) => return Problem::internal(e.to_string()).into_response(),
        };
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    (
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{fname}\""),
            ),
        ],
        body,
    )
        .into_response()
}

async fn product_keys(
    State(st): State<Shared>,
    Path(product): Path<String>,
    headers: HeaderMap,
) -> Response {
    let who = match identify(&st, &headers, "keys", &product).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let cfg = st.config();
    let ok = [Role::Factory, Role::Submitter, Role::Auditor]
        .iter()
        .any(|r| allowed(&cfg, &who, &product, *r));
    if !ok {
        audit_denied(&st, &who.name, "keys", &product, "no role on product").await;
        return Problem::no_such_product().into_response();
    }
    let Some(p) = cfg.product(&product).cloned() else {
        return Problem::no_such_product().into_response();
    };
    let keys = st.keys.clone();
    let res = tokio::task::spawn_blocking(move || {
        let fmt = if p.formats.iter().any(|f| f == "efi") {
            Format::Efi
        } else {
            Format::Raw
        };
        let (c, q) = requested_algs(&p, fmt);
        keys.product_signers(&p.name, c, q)
    })
    .await;
    match res {
        Ok(Ok(s)) => {
            let mut out = Vec::new();
            for signer in [s.classical, s.pq].into_iter().flatten() {
                let pk = signer.public_key();
                out.push(serde_json::json!({
                    "alg": pk.alg(),
                    "key_id": pk.key_id().to_hex(),
                    "spki_pem": pk.spki_pem(),
                }));
            }
            let cert = s
                .certificate
                .map(|c| fwseal_crypto::verify::pem_encode("CERTIFICATE", &c));
            Json(serde_json::json!({"product": product, "keys": out, "certificate_pem": cert}))
                .into_response()
        }
        Ok(Err(KeyError::Unavailable(e))) => Problem::hsm_unavailable(e).into_response(),
        Ok(Err(e)) => Problem::unsupported(e.to_string()).into_response(),
        Err(e) => Problem::internal(e.to_string()).into_response(),
    }
}

async fn audit_export(State(st): State<Shared>, headers: HeaderMap) -> Response {
    let who = match identify(&st, &headers, "audit-read", "*").await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let cfg = st.config();
    let ok = cfg.clients.iter().any(|c| {
        c.name == who.name
            && c.roles
                .get("*")
                .is_some_and(|r| r.contains(&Role::Auditor) || r.contains(&Role::Admin))
    });
    if !ok {
        audit_denied(
            &st,
            &who.name,
            "audit-read",
            "*",
            "no auditor role on \"*\"",
        )
        .await;
        return Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            "the audit log needs the auditor role on \"*\"",
        )
        .into_response();
    }
    let store = st.store.clone();
    let client = who.name.clone();
    let res = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, fwseal_store::StoreError> {
        store.append(&entry(&client, "audit-read", "", Decision::Allow))?;
        let mut out = Vec::new();
        store.export(&mut out)?;
        Ok(out)
    })
    .await;
    match res {
        Ok(Ok(s)) => ([(header::CONTENT_TYPE, "application/jsonl")], s).into_response(),
        Ok(Err(e)) => Problem::internal(e.to_string()).into_response(),
        Err(e) => Problem::internal(e.to_string()).into_response(),
    }
}
