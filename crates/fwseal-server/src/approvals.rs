//! M-of-N approvals: pending jobs, `/v1/jobs…` handlers, and a job's release after its quorum.
//!
//! A sign request for a product with an `approvals` policy is stored as a pending job (the
//! input in the artifact store, the job and its format-aware digest in SQLite) and answered
//! 202. Approvers send back the digest they inspected; the store records each distinct
//! approval in a transaction that also checks state, expiry, self-approval and the digest, so
//! exactly one approval reaches the quorum. That request then re-prepares the stored input,
//! refuses unless the recomputed digest equals the one approved, and signs through the same
//! [`crate::routes::sign_and_finalize`] as an immediate request, with the approvers recorded in
//! the provenance and the audit log.
//!
//! Visibility mirrors products: a job is visible to its requester and to holders of the
//! policy's role on its product. A client with no role at all on the product gets the same 404
//! as for an unknown job; a client with another role on it is told it lacks the approver role.

use crate::auth::{allowed, Identity};
use crate::config::{ApprovalPolicy, Config, ProductConfig, Role};
use crate::problem::Problem;
use crate::routes::{
    audit_denied, entry, identify, internal, mode_name, now_rfc3339, prepare_blocking,
    sign_and_finalize, Finalize, Intake, Refusal, SignQuery,
};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fwseal_store::{ApproveOutcome, AuditLog, Decision, Job, JobQueue, JobRefusal, JobState};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

type Shared = Arc<AppState>;

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn rfc3339_at(unix: i64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

fn no_such_job(id: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-such-job",
        "No such job",
        format!("no job {id:?} is available to this client"),
    )
}

fn conflict(code: &'static str, title: &'static str, detail: String) -> Problem {
    Problem::new(StatusCode::CONFLICT, code, title, detail)
}

/// The refusal for a job the store declined to change.
fn refusal_problem(id: &str, r: &JobRefusal, digest_hex: &str) -> Problem {
    match r {
        JobRefusal::NotFound => no_such_job(id),
        JobRefusal::SelfApproval => Problem::new(
            StatusCode::FORBIDDEN,
            "self-approval",
            "Self-approval refused",
            format!("job {id}: the requester of a job cannot approve it"),
        ),
        JobRefusal::AlreadyApproved => conflict(
            "already-approved",
            "Already approved",
            format!("job {id}: this client has already approved it; one identity counts once"),
        ),
        JobRefusal::Expired => conflict(
            "job-expired",
            "Job expired",
            format!("job {id} has expired; submit the image again"),
        ),
        JobRefusal::Rejected(why) => conflict(
            "job-rejected",
            "Job rejected",
            format!(
                "job {id} was rejected ({}); it cannot be approved",
                why.as_deref().unwrap_or("no reason given")
            ),
        ),
        JobRefusal::AlreadySigned(a) => conflict(
            "job-signed",
            "Job already signed",
            match a {
                Some(a) => format!("job {id} is already signed as artifact {a}"),
                None => format!("job {id} is already being signed"),
            },
        ),
        JobRefusal::Failed(why) => conflict(
            "job-failed",
            "Job failed",
            format!(
                "job {id} failed after its approvals ({}); submit the image again",
                why.as_deref().unwrap_or("unknown reason")
            ),
        ),
        JobRefusal::DigestMismatch => conflict(
            "digest-mismatch",
            "Digest mismatch",
            format!(
                "job {id}: the approved digest does not match the job's image digest {digest_hex}; \
                 inspect the job again"
            ),
        ),
        _ => Problem::internal(format!("job {id}: refused")),
    }
}

/// How the caller relates to a job's product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// Holds the policy's role (or admin) on the product.
    Approver,
    /// Submitted the job (and is not an approver).
    Requester,
    /// Has some other role on the product: may know it exists, may not see its jobs.
    OtherRole,
    /// No role on the product: the job looks like an unknown one.
    None,
}

fn job_role(cfg: &Config, job: &Job) -> Role {
    cfg.product(&job.job.product)
        .and_then(|p| p.approvals.as_ref())
        .map(|a| a.of_role)
        .or_else(|| Role::from_name(&job.job.of_role))
        .unwrap_or(Role::Admin)
}

fn access(cfg: &Config, who: &Identity, job: &Job) -> Access {
    let p = job.job.product.as_str();
    if allowed(cfg, who, p, job_role(cfg, job)) {
        Access::Approver
    } else if job.job.requester == who.name && cfg.product(p).is_some() {
        Access::Requester
    } else if [Role::Submitter, Role::Factory, Role::Auditor]
        .iter()
        .any(|r| allowed(cfg, who, p, *r))
    {
        Access::OtherRole
    } else {
        Access::None
    }
}

/// The job as the API shows it. `approvals_required` is the effective M: the stored one, or the
/// current policy's when that is stricter (see [`JobQueue::approve`]).
fn job_json(job: &Job, now: i64, cfg: &Config) -> serde_json::Value {
    let j = &job.job;
    let required = cfg
        .product(&j.product)
        .and_then(|p| p.approvals.as_ref())
        .map_or(j.required, |a| a.required.max(j.required));
    let base = format!("/v1/jobs/{}", j.id);
    let state = job.state_at(now);
    let mut links = serde_json::json!({
        "self": base,
        "input": format!("{base}/input"),
        "approve": format!("{base}/approve"),
        "reject": format!("{base}/reject"),
    });
    if let Some(a) = &job.artifact_id {
        links["artifact"] = serde_json::json!(format!("/v1/artifacts/{a}"));
    }
    serde_json::json!({
        "id": j.id,
        "product": j.product,
        "format": j.format,
        "mode": j.mode,
        "name": j.name,
        "version": j.version,
        "input_sha256": hex::encode(j.input_sha256),
        "input_len": j.input_len,
        "digest": {"alg": j.digest_alg, "value": hex::encode(&j.digest)},
        "requester": j.requester,
        "build": j.params,
        "key_version": j.key_version,
        "approvals_required": required,
        "of_role": j.of_role,
        "approvals": job.approvals,
        "created": j.created,
        "expires": j.expires,
        "state": state,
        "reason": job.reason,
        "artifact_id": job.artifact_id,
        "links": links,
    })
}

/// Store the input and a pending job, audit it, answer 202.
pub(crate) async fn submit(
    st: &Shared,
    who: &Identity,
    pcfg: &ProductConfig,
    policy: &ApprovalPolicy,
    intake: Intake,
    q: SignQuery,
    key_version: Option<u32>,
) -> Result<Response, Response> {
    let product = pcfg.name.clone();
    let deny = |(reason, p): Refusal| {
        let st = st.clone();
        let who = who.name.clone();
        let product = product.clone();
        async move {
            audit_denied(&st, &who, "job-submit", &product, &reason).await;
            p.into_response()
        }
    };
    let (digest_alg, digest) = intake.plan.digest();
    let id = match fwseal_store::new_artifact_id() {
        Ok(id) => id,
        Err(e) => return Err(deny(internal(e)).await),
    };
    let now = now_unix();
    let expires_unix = now.saturating_add(i64::try_from(policy.expires_after_secs).unwrap_or(0));
    let job = fwseal_store::NewJob {
        id: id.clone(),
        product: product.clone(),
        format: intake.format.name().to_string(),
        mode: mode_name(intake.mode).to_string(),
        name: intake.name.clone(),
        version: intake.version.map(|v| v.to_string()),
        input_sha256: intake.input_sha,
        input_len: intake.len,
        digest_alg: digest_alg.name().to_string(),
        digest: digest.clone(),
        requester: who.name.clone(),
        params: serde_json::to_value(&q).unwrap_or_default(),
        key_version,
        required: policy.required,
        of_role: policy.of_role.name().to_string(),
        created: now_rfc3339(),
        expires: rfc3339_at(expires_unix),
        expires_unix,
    };
    let mut ev = entry(&who.name, "job-submit", &product, Decision::Allow);
    ev.input_sha256 = Some(intake.input_sha);
    ev.format = Some(job.format.clone());
    ev.mode = Some(job.mode.clone());
    let ev = ev.with_extra(&serde_json::json!({
        "job": id,
        "digest": {"alg": job.digest_alg, "value": hex::encode(&digest)},
        "required": policy.required,
        "of_role": job.of_role,
        "expires": job.expires,
        "key_version": key_version,
    }));
    let st2 = st.clone();
    let job2 = job.clone();
    let Intake { spool, path, .. } = intake;
    let stored = tokio::task::spawn_blocking(move || -> Result<(), Refusal> {
        // The input, content-addressed: the release re-reads exactly these bytes.
        let mut w = st2.blobs.writer().map_err(internal)?;
        let mut f = std::fs::File::open(&path).map_err(internal)?;
        std::io::copy(&mut f, &mut w).map_err(internal)?;
        let blob = w.finish().map_err(internal)?;
        if blob.sha256 != job2.input_sha256 {
            return Err(internal(
                "stored input does not hash to the uploaded digest",
            ));
        }
        drop(spool);
        st2.store.append(&ev).map_err(internal)?;
        st2.store.create_job(&job2).map_err(internal)
    })
    .await;
    match stored {
        Ok(Ok(())) => {}
        Ok(Err(r)) => return Err(deny(r).await),
        Err(e) => return Err(deny(internal(e)).await),
    }
    let full = Job {
        job,
        state: JobState::Pending,
        reason: None,
        artifact_id: None,
        approvals: vec![],
    };
    let body = job_json(&full, now, &st.config());
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/jobs/{id}"))],
        Json(body),
    )
        .into_response())
}

async fn load_job(st: &Shared, id: &str) -> Result<Option<Job>, Response> {
    if !fwseal_store::meta::valid_id(id) {
        return Ok(None);
    }
    let store = st.store.clone();
    let idc = id.to_string();
    match tokio::task::spawn_blocking(move || store.job(&idc)).await {
        Ok(Ok(j)) => Ok(j),
        Ok(Err(e)) => Err(Problem::internal(e.to_string()).into_response()),
        Err(e) => Err(Problem::internal(e.to_string()).into_response()),
    }
}

/// Identify the caller and find the job; a caller with no role on its product gets the same
/// audited 404 as for an unknown job. `action` is the audit action. Returns the caller's access
/// so each handler decides what that role may do.
async fn visible_job(
    st: &Shared,
    headers: &HeaderMap,
    id: &str,
    action: &str,
) -> Result<(Identity, Job, Access), Response> {
    let who = identify(st, headers, action, "").await?;
    let Some(job) = load_job(st, id).await? else {
        audit_denied(st, &who.name, action, "", &format!("no job {id}")).await;
        return Err(no_such_job(id).into_response());
    };
    let cfg = st.config();
    let acc = access(&cfg, &who, &job);
    if acc == Access::None {
        audit_denied(
            st,
            &who.name,
            action,
            &job.job.product,
            &format!("job {id}: no role on its product"),
        )
        .await;
        return Err(no_such_job(id).into_response());
    }
    Ok((who, job, acc))
}

fn lacks_role(job: &Job, cfg: &Config) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "not-an-approver",
        "Approver role required",
        format!(
            "job {}: approving or rejecting needs the {} role on product {}",
            job.job.id,
            job_role(cfg, job).name(),
            job.job.product
        ),
    )
}

/// Filters of `GET /v1/jobs`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct JobsQuery {
    product: Option<String>,
    /// `pending` (default) or `all`.
    state: Option<String>,
}

/// `GET /v1/jobs`: jobs the caller may see — those they requested, and every job of the
/// products on which they hold the approver role.
pub(crate) async fn list(
    State(st): State<Shared>,
    Query(q): Query<JobsQuery>,
    headers: HeaderMap,
) -> Response {
    let who = match identify(&st, &headers, "list", q.product.as_deref().unwrap_or("")).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let all = match q.state.as_deref() {
        None | Some("pending") => false,
        Some("all") => true,
        Some(other) => {
            return Problem::bad_request(format!("state must be pending or all, not {other:?}"))
                .into_response()
        }
    };
    let cfg = st.config();
    let products: Vec<String> = cfg
        .products
        .iter()
        .filter(|p| q.product.as_deref().is_none_or(|x| x == p.name))
        .filter(|p| {
            [Role::Submitter, Role::ReleaseApprover]
                .iter()
                .any(|r| allowed(&cfg, &who, &p.name, *r))
                || p.approvals
                    .as_ref()
                    .is_some_and(|a| allowed(&cfg, &who, &p.name, a.of_role))
        })
        .map(|p| p.name.clone())
        .collect();
    let store = st.store.clone();
    let jobs = match tokio::task::spawn_blocking(move || store.list_jobs(&products, 1000)).await {
        Ok(Ok(j)) => j,
        Ok(Err(e)) => return Problem::internal(e.to_string()).into_response(),
        Err(e) => return Problem::internal(e.to_string()).into_response(),
    };
    let now = now_unix();
    let out: Vec<serde_json::Value> = jobs
        .iter()
        .filter(|j| matches!(access(&cfg, &who, j), Access::Approver | Access::Requester))
        .filter(|j| all || j.state_at(now) == JobState::Pending)
        .map(|j| job_json(j, now, &cfg))
        .collect();
    Json(serde_json::json!({ "jobs": out })).into_response()
}

/// `GET /v1/jobs/{id}`.
pub(crate) async fn show(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match visible_job(&st, &headers, &id, "list").await {
        Ok((who, job, Access::OtherRole)) => {
            let cfg = st.config();
            audit_denied(
                &st,
                &who.name,
                "list",
                &job.job.product,
                &format!("job {id}: not the requester and no approver role"),
            )
            .await;
            lacks_role(&job, &cfg).into_response()
        }
        Ok((_, job, _)) => Json(job_json(&job, now_unix(), &st.config())).into_response(),
        Err(r) => r,
    }
}

/// `GET /v1/jobs/{id}/input`: the unsigned image, for approvers to inspect.
pub(crate) async fn input(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (who, job) = match visible_job(&st, &headers, &id, "fetch").await {
        Ok((who, job, Access::Approver | Access::Requester)) => (who, job),
        Ok((who, job, _)) => {
            let cfg = st.config();
            audit_denied(
                &st,
                &who.name,
                "fetch",
                &job.job.product,
                &format!("job {id}: input needs the approver role"),
            )
            .await;
            return lacks_role(&job, &cfg).into_response();
        }
        Err(r) => return r,
    };
    let mut ev = entry(&who.name, "fetch", &job.job.product, Decision::Allow);
    ev.input_sha256 = Some(job.job.input_sha256);
    let ev = ev.with_extra(&serde_json::json!({"job": id, "part": "input"}));
    let (store, blobs, sha) = (st.store.clone(), st.blobs.clone(), job.job.input_sha256);
    let file = match tokio::task::spawn_blocking(move || -> Result<_, String> {
        store.append(&ev).map_err(|e| e.to_string())?;
        blobs.open(&sha).map_err(|e| e.to_string())
    })
    .await
    {
        Ok(Ok(Some(f))) => tokio::fs::File::from_std(f),
        Ok(Ok(None)) => {
            return Problem::internal("job input missing from the store").into_response()
        }
        Ok(Err(e)) => return Problem::internal(e).into_response(),
        Err(e) => return Problem::internal(e.to_string()).into_response(),
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, job.job.input_len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.input\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// Body of `POST /v1/jobs/{id}/approve`.
#[derive(Debug, Deserialize)]
pub(crate) struct ApproveBody {
    /// Hex of the format-aware digest the approver inspected (the job's `digest.value`).
    digest: String,
}

/// Body of `POST /v1/jobs/{id}/reject`.
#[derive(Debug, Deserialize)]
pub(crate) struct RejectBody {
    reason: String,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Problem> {
    serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("{what} body must be JSON: {e}")))
}

/// `POST /v1/jobs/{id}/approve` with `{"digest": "<hex>"}`.
pub(crate) async fn approve(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (who, job, acc) = match visible_job(&st, &headers, &id, "approve").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let product = job.job.product.clone();
    let digest_hex = hex::encode(&job.job.digest);
    let refuse = |reason: String, p: Problem| {
        let st = st.clone();
        let who = who.name.clone();
        let product = product.clone();
        async move {
            audit_denied(&st, &who, "approve", &product, &reason).await;
            p.into_response()
        }
    };
    let cfg = st.config();
    match acc {
        Access::Approver => {}
        Access::Requester => {
            let p = refusal_problem(&id, &JobRefusal::SelfApproval, &digest_hex);
            return refuse(format!("job {id}: {}", p.code), p).await;
        }
        _ => {
            let p = lacks_role(&job, &cfg);
            return refuse(p.detail.clone(), p).await;
        }
    }
    let b: ApproveBody = match json_body(&body, "approve") {
        Ok(b) => b,
        Err(p) => return refuse(p.detail.clone(), p).await,
    };
    let Ok(digest) = hex::decode(b.digest.trim()) else {
        let p = Problem::bad_request("digest must be hex (the job's digest.value)");
        return refuse(format!("job {id}: digest is not hex"), p).await;
    };
    // The current policy's M applies to pending jobs too when it is stricter.
    let min_required = cfg
        .product(&product)
        .and_then(|p| p.approvals.as_ref())
        .map_or(0, |a| a.required);
    let store = st.store.clone();
    let (idc, whoc, now) = (id.clone(), who.name.clone(), now_unix());
    let time = now_rfc3339();
    let outcome = match tokio::task::spawn_blocking(move || {
        store.approve(&idc, &whoc, &digest, &time, now, min_required)
    })
    .await
    {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return Problem::internal(e.to_string()).into_response(),
        Err(e) => return Problem::internal(e.to_string()).into_response(),
    };
    let (n, quorum) = match outcome {
        ApproveOutcome::Refused(r) => {
            let p = refusal_problem(&id, &r, &digest_hex);
            return refuse(p.detail.clone(), p).await;
        }
        ApproveOutcome::Recorded { approvals, .. } => (approvals, None),
        ApproveOutcome::Quorum(j) => (u32::try_from(j.approvals.len()).unwrap_or(0), Some(j)),
    };
    let mut ev = entry(&who.name, "approve", &product, Decision::Allow);
    ev.input_sha256 = Some(job.job.input_sha256);
    ev.format = Some(job.job.format.clone());
    ev.mode = Some(job.job.mode.clone());
    let ev = ev.with_extra(&serde_json::json!({
        "job": id,
        "digest": {"alg": job.job.digest_alg, "value": digest_hex},
        "approvals": n,
        "required": job.job.required,
        "requester": job.job.requester,
    }));
    let store = st.store.clone();
    match tokio::task::spawn_blocking(move || store.append(&ev)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "audit append for an approval failed"),
        Err(e) => tracing::error!(error = %e, "audit append for an approval panicked"),
    }
    if let Some(j) = quorum {
        // On its own task: a client that disconnects must not abandon a job in `signing`.
        let st2 = st.clone();
        match tokio::spawn(async move { release(&st2, *j).await }).await {
            Ok(Ok(())) => {}
            Ok(Err(r)) => return r,
            Err(e) => return Problem::internal(e.to_string()).into_response(),
        }
    }
    match load_job(&st, &id).await {
        Ok(Some(j)) => Json(job_json(&j, now_unix(), &st.config())).into_response(),
        Ok(None) => no_such_job(&id).into_response(),
        Err(r) => r,
    }
}

/// Sign a job whose quorum was just reached (this request won the transition to `signing`).
/// Any refusal marks the job failed and is audited.
async fn release(st: &Shared, job: Job) -> Result<(), Response> {
    let id = job.job.id.clone();
    let product = job.job.product.clone();
    let requester = job.job.requester.clone();
    match release_inner(st, &job).await {
        Ok(artifact) => {
            let (store, idc) = (st.store.clone(), id.clone());
            match tokio::task::spawn_blocking(move || store.finish_job(&idc, &artifact)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(Problem::internal(e.to_string()).into_response()),
                Err(e) => Err(Problem::internal(e.to_string()).into_response()),
            }
        }
        Err((reason, p)) => {
            let reason = format!("job {id}: release refused: {reason}");
            let (store, idc, r2) = (st.store.clone(), id.clone(), reason.clone());
            let _ = tokio::task::spawn_blocking(move || store.fail_job(&idc, &r2)).await;
            audit_denied(st, &requester, "sign", &product, &reason).await;
            Err(p.into_response())
        }
    }
}

async fn release_inner(st: &Shared, job: &Job) -> Result<String, Refusal> {
    let j = &job.job;
    let cfg = st.config();
    let Some(pcfg) = cfg.product(&j.product).cloned() else {
        let m = format!("product {} is no longer configured", j.product);
        return Err((m.clone(), Problem::unsupported(m)));
    };
    let q: SignQuery = serde_json::from_value(j.params.clone()).map_err(internal)?;
    let version = match j.version.as_deref() {
        Some(v) => Some(
            v.parse::<fwseal_formats::ImageVersion>()
                .map_err(|e| internal(format!("stored version: {e}")))?,
        ),
        None => None,
    };
    let Some(format) = fwseal_formats::Format::from_name(&j.format) else {
        return Err(internal(format!("stored format {:?}", j.format)));
    };
    let mode = q.mode.unwrap_or(pcfg.default_mode);
    let (st2, pcfg2, jc) = (st.clone(), pcfg.clone(), j.clone());
    let random_limit = cfg.max_random_access_bytes;
    let prepared = tokio::task::spawn_blocking(move || -> Result<Intake, Refusal> {
        if j_key_changed(&st2, &jc)? {
            let m = format!(
                "product {}'s signing key version changed since the job was submitted (v{}); \
                 submit the image again",
                jc.product,
                jc.key_version.unwrap_or(0)
            );
            return Err((m.clone(), Problem::unsupported(m)));
        }
        // The stored input must still be the uploaded bytes...
        match st2.blobs.check(&jc.input_sha256).map_err(internal)? {
            Some(true) => {}
            Some(false) => return Err(internal("stored job input is corrupt")),
            None => return Err(internal("stored job input is missing")),
        }
        let path = st2.blobs.path(&jc.input_sha256);
        let (format, plan) = prepare_blocking(
            &pcfg2,
            Some(format),
            &path,
            jc.input_len,
            &jc.name,
            mode,
            version,
            random_limit,
        )?;
        // ...and the digest the device will check must be the one the approvers approved.
        let (alg, digest) = plan.digest();
        if alg.name() != jc.digest_alg || digest != jc.digest {
            let m = format!(
                "the recomputed digest {} {} differs from the approved {} {}",
                alg.name(),
                hex::encode(&digest),
                jc.digest_alg,
                hex::encode(&jc.digest)
            );
            return Err((
                m.clone(),
                Problem::new(
                    StatusCode::CONFLICT,
                    "digest-mismatch",
                    "Digest mismatch",
                    m,
                ),
            ));
        }
        Ok(Intake {
            spool: None,
            path,
            len: jc.input_len,
            input_sha: jc.input_sha256,
            name: jc.name.clone(),
            format,
            mode,
            version,
            plan,
        })
    })
    .await
    .map_err(internal)??;
    let fin = Finalize {
        requester: j.requester.clone(),
        pcfg,
        q,
        started: j.created.clone(),
        job: Some((j.id.clone(), job.approvers())),
    };
    let resp = sign_and_finalize(st, prepared, fin).await?;
    Ok(resp.artifact_id().to_string())
}

/// Whether the product's current key version differs from the one the job was submitted for.
fn j_key_changed(st: &Shared, j: &fwseal_store::NewJob) -> Result<bool, Refusal> {
    let Some(want) = j.key_version else {
        return Ok(false);
    };
    let now = st
        .keys
        .current_version(&j.product)
        .map_err(|e| (e.to_string(), Problem::hsm_unavailable(e.to_string())))?;
    Ok(now.is_some_and(|v| v != want))
}

/// `POST /v1/jobs/{id}/reject` with `{"reason": "..."}`: an approver (or the requester,
/// withdrawing it) ends a pending job.
pub(crate) async fn reject(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (who, job, acc) = match visible_job(&st, &headers, &id, "reject").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let product = job.job.product.clone();
    let refuse = |reason: String, p: Problem| {
        let st = st.clone();
        let who = who.name.clone();
        let product = product.clone();
        async move {
            audit_denied(&st, &who, "reject", &product, &reason).await;
            p.into_response()
        }
    };
    if !matches!(acc, Access::Approver | Access::Requester) {
        let p = lacks_role(&job, &st.config());
        return refuse(p.detail.clone(), p).await;
    }
    let b: RejectBody = match json_body(&body, "reject") {
        Ok(b) => b,
        Err(p) => return refuse(p.detail.clone(), p).await,
    };
    let reason = b.reason.trim().to_string();
    if reason.is_empty() || reason.len() > 1000 {
        let p = Problem::bad_request("reason must be 1-1000 characters");
        return refuse(format!("job {id}: bad reject reason"), p).await;
    }
    let (store, idc, whoc, r2) = (
        st.store.clone(),
        id.clone(),
        who.name.clone(),
        reason.clone(),
    );
    let now = now_unix();
    let mut ev = entry(&who.name, "reject", &product, Decision::Allow);
    ev.input_sha256 = Some(job.job.input_sha256);
    ev.reason = Some(reason.clone());
    let ev = ev.with_extra(&serde_json::json!({"job": id, "requester": job.job.requester}));
    let res = tokio::task::spawn_blocking(
        move || -> Result<Option<JobRefusal>, fwseal_store::StoreError> {
            match store.reject(&idc, &whoc, &r2, now)? {
                None => {
                    store.append(&ev)?;
                    Ok(None)
                }
                Some(r) => Ok(Some(r)),
            }
        },
    )
    .await;
    match res {
        Ok(Ok(None)) => {}
        Ok(Ok(Some(r))) => {
            let p = refusal_problem(&id, &r, &hex::encode(&job.job.digest));
            let p = match r {
                JobRefusal::Rejected(_) => conflict(
                    "job-rejected",
                    "Job rejected",
                    format!("job {id} was already rejected"),
                ),
                _ => p,
            };
            return refuse(p.detail.clone(), p).await;
        }
        Ok(Err(e)) => return Problem::internal(e.to_string()).into_response(),
        Err(e) => return Problem::internal(e.to_string()).into_response(),
    }
    match load_job(&st, &id).await {
        Ok(Some(j)) => Json(job_json(&j, now_unix(), &st.config())).into_response(),
        Ok(None) => no_such_job(&id).into_response(),
        Err(r) => r,
    }
}
