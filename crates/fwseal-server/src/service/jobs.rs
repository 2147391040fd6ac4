//! M-of-N approvals: pending jobs and a job's release after its quorum.
//!
//! A sign request for a product with an `approvals` policy is stored as a pending job (the
//! input in the blob store, the job and its format-aware digest in the job queue). Approvers
//! send back the digest they inspected; the store records each distinct approval in a
//! transaction that also checks state, expiry, self-approval and the digest, so exactly one
//! approval reaches the quorum. That call then re-prepares the stored input, refuses unless
//! the recomputed digest equals the one approved, and signs through the same
//! [`SigningService::sign_intake`] as an immediate request, with the approvers recorded in the
//! provenance and the audit log.
//!
//! Visibility mirrors products: a job is visible to its requester and to holders of the
//! policy's role on its product. A client with no role at all on the product gets the same
//! answer as for an unknown job; a client with another role on it is told it lacks the
//! approver role.

use super::intake::Intake;
use super::signing::mode_name;
use super::{entry_by, now_rfc3339, now_unix, ServiceError, SigningService};
use crate::auth::{allowed, Identity};
use crate::config::{ApprovalPolicy, Config, ProductConfig, Role};
use fwseal_api::{DigestValue, JobApproval, JobLinks, JobState as ApiJobState, JobView, SignQuery};
use fwseal_formats::Format;
use fwseal_store::jobs::counted;
use fwseal_store::Blob;
use fwseal_store::{Action, ApproveOutcome, CurrentPolicy, Decision, Job, JobRefusal, JobState};
use std::time::UNIX_EPOCH;

fn rfc3339_at(unix: i64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

fn no_such_job(id: &str, reason: String) -> ServiceError {
    ServiceError::NoSuchJob {
        id: id.to_string(),
        reason,
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
    } else if job.requester().key() == who.principal().key() && cfg.product(p).is_some() {
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

/// Whether an identity holds the job's approver role in `cfg` (the current configuration): a
/// static client by its `[[client]]` roles, an OIDC approver by the rule its stored claims
/// match now.
fn holds_role<'a>(
    cfg: &'a Config,
    job: &'a Job,
) -> impl Fn(&fwseal_store::Principal) -> bool + Sync + 'a {
    let role = job_role(cfg, job);
    move |p: &fwseal_store::Principal| {
        allowed(cfg, &Identity::from_principal(p), &job.job.product, role)
    }
}

/// The policy as `cfg` has it now: its M (the quorum is the larger of it and the job's, so a
/// tightened policy applies to pending jobs too) and who counts (`holds`, see [`holds_role`]).
fn current_policy<'a>(
    cfg: &Config,
    job: &Job,
    holds: &'a (dyn Fn(&fwseal_store::Principal) -> bool + Sync),
) -> CurrentPolicy<'a> {
    CurrentPolicy {
        min_required: cfg
            .product(&job.job.product)
            .and_then(|p| p.approvals.as_ref())
            .map_or(0, |a| a.required),
        counts: holds,
    }
}

fn lacks_role(job: &Job, cfg: &Config, reason: String) -> ServiceError {
    ServiceError::NotApprover {
        detail: format!(
            "job {}: approving or rejecting needs the {} role on product {}",
            job.job.id,
            job_role(cfg, job).name(),
            job.job.product
        ),
        reason,
    }
}

/// The job as the API shows it. `approvals_required` is the effective M: the stored one, or the
/// current policy's when that is stricter (see [`fwseal_store::JobQueue::approve`]).
fn job_view(job: &Job, now: i64, cfg: &Config) -> Result<JobView, ServiceError> {
    let j = &job.job;
    let corrupt =
        |what: &str| ServiceError::internal(format!("job {}: stored {what} is invalid", j.id));
    let required = cfg
        .product(&j.product)
        .and_then(|p| p.approvals.as_ref())
        .map_or(j.required, |a| a.required.max(j.required));
    Ok(JobView {
        id: j.id.clone(),
        product: j.product.clone(),
        format: Format::from_name(&j.format).ok_or_else(|| corrupt("format"))?,
        mode: serde_json::from_value(serde_json::Value::String(j.mode.clone()))
            .map_err(|_| corrupt("mode"))?,
        name: j.name.clone(),
        version: j.version.clone(),
        input_sha256: hex::encode(j.input_sha256),
        input_len: j.input_len,
        digest: DigestValue {
            alg: fwseal_crypto::DigestAlg::from_name(&j.digest_alg)
                .ok_or_else(|| corrupt("digest algorithm"))?,
            value: hex::encode(&j.digest),
        },
        requester: j.requester.clone(),
        build: serde_json::from_value(j.params.clone()).map_err(|_| corrupt("parameters"))?,
        key_version: j.key_version,
        approvals_required: required,
        of_role: j.of_role.clone(),
        // The approvals that count now: an approver whose role was revoked since is not listed
        // (the audit log keeps their approval record).
        approvals: counted(job, &current_policy(cfg, job, &holds_role(cfg, job)))
            .iter()
            .map(|a| JobApproval {
                approver: a.approver.name.clone(),
                time: a.time.clone(),
            })
            .collect(),
        created: j.created.clone(),
        expires: j.expires.clone(),
        state: ApiJobState::from_name(job.state_at(now).as_str())
            .ok_or_else(|| corrupt("state"))?,
        reason: job.reason.clone(),
        artifact_id: job.artifact_id.clone(),
        links: JobLinks::for_job(&j.id, job.artifact_id.as_deref()),
    })
}

impl SigningService {
    /// Store the input and a pending job, audit it.
    pub(crate) fn submit_job(
        &self,
        who: &Identity,
        pcfg: &ProductConfig,
        policy: &ApprovalPolicy,
        intake: Intake,
        q: SignQuery,
        key_version: Option<u32>,
    ) -> Result<JobView, ServiceError> {
        self.audited(who, Action::JobSubmit, Some(&pcfg.name), || {
            let (digest_alg, digest) = intake.digest();
            let id = fwseal_store::new_artifact_id()?;
            let now = now_unix();
            let expires_unix =
                now.saturating_add(i64::try_from(policy.expires_after_secs).unwrap_or(0));
            let job = fwseal_store::NewJob {
                id: id.clone(),
                product: pcfg.name.clone(),
                format: intake.format.name().to_string(),
                mode: mode_name(intake.mode).to_string(),
                name: intake.name.clone(),
                version: intake.version.map(|v| v.to_string()),
                input_sha256: intake.input_sha,
                input_len: intake.len,
                digest_alg: digest_alg.name().to_string(),
                digest: digest.clone(),
                requester: who.name.clone(),
                requester_oidc: who.principal().oidc,
                verified: who
                    .verified()
                    .map(serde_json::to_value)
                    .transpose()
                    .map_err(ServiceError::internal)?,
                params: serde_json::to_value(&q).map_err(ServiceError::internal)?,
                key_version,
                required: policy.required,
                of_role: policy.of_role.name().to_string(),
                created: now_rfc3339(),
                expires: rfc3339_at(expires_unix),
                expires_unix,
            };
            let mut ev = entry_by(who, Action::JobSubmit, Some(&pcfg.name), Decision::Allow);
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
            // The input, content-addressed: the release re-reads exactly these bytes. Staged,
            // and published once the job that references it is stored.
            let mut w = self.blobs.writer()?;
            let mut f = std::fs::File::open(&intake.path)?;
            std::io::copy(&mut f, &mut w)?;
            let input = w.stage()?;
            if input.sha256() != job.input_sha256 {
                return Err(ServiceError::internal(
                    "stored input does not hash to the uploaded digest",
                ));
            }
            drop(intake);
            self.blobs.sync_staged()?;
            self.audit(&ev)?;
            self.store.create_job(&job)?;
            // The job is recorded: its input must not be lost (kept staged if this fails).
            self.publish_committed(
                vec![input],
                None,
                &format!(
                    "job {id} was submitted and recorded; it can be approved after the next \
                     start of the appliance"
                ),
            )?;
            let full = Job {
                job,
                state: JobState::Pending,
                reason: None,
                artifact_id: None,
                approvals: vec![],
            };
            job_view(&full, now, &self.config())
        })
    }

    /// Find a job the caller may know of, then run `op` on it, auditing a refusal under the
    /// job's product. A caller with no role on its product gets the same refusal as for an
    /// unknown job.
    fn job_op<T>(
        &self,
        who: &Identity,
        id: &str,
        action: Action,
        op: impl FnOnce(Job, Access) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let job = if fwseal_store::meta::valid_id(id) {
            self.audited(who, action.clone(), None, || Ok(self.store.job(id)?))?
        } else {
            None
        };
        let Some(job) = job else {
            let e = no_such_job(id, format!("no job {id}"));
            self.audit_denied(who, action, None, &e);
            return Err(e);
        };
        let product = job.job.product.clone();
        let decides = matches!(action, Action::Approve | Action::Reject);
        self.audited(who, action, Some(&product), || {
            let cfg = self.config();
            let role = job_role(&cfg, &job);
            if decides && crate::auth::refused_for_static(&cfg, who, &product, role) {
                return Err(ServiceError::OidcRequired(format!(
                    "product {product} requires an OIDC token to approve or reject its jobs; \
                     static API tokens are refused"
                )));
            }
            match access(&cfg, who, &job) {
                Access::None => Err(no_such_job(id, format!("job {id}: no role on its product"))),
                acc => op(job, acc),
            }
        })
    }

    /// `GET /v1/jobs`: jobs the caller may see — those they requested, and every job of the
    /// products on which they hold the approver role. `all` includes finished jobs.
    pub fn list_jobs(
        &self,
        who: &Identity,
        product: Option<&str>,
        all: bool,
    ) -> Result<Vec<JobView>, ServiceError> {
        let cfg = self.config();
        let products: Vec<String> = cfg
            .products
            .iter()
            .filter(|p| product.is_none_or(|x| x == p.name))
            .filter(|p| {
                [Role::Submitter, Role::ReleaseApprover]
                    .iter()
                    .any(|r| allowed(&cfg, who, &p.name, *r))
                    || p.approvals
                        .as_ref()
                        .is_some_and(|a| allowed(&cfg, who, &p.name, a.of_role))
            })
            .map(|p| p.name.clone())
            .collect();
        let now = now_unix();
        self.store
            .list_jobs(&products, 1000)?
            .iter()
            .filter(|j| matches!(access(&cfg, who, j), Access::Approver | Access::Requester))
            .filter(|j| all || j.state_at(now) == JobState::Pending)
            .map(|j| job_view(j, now, &cfg))
            .collect()
    }

    /// `GET /v1/jobs/{id}`.
    pub fn show_job(&self, who: &Identity, id: &str) -> Result<JobView, ServiceError> {
        self.job_op(who, id, Action::List, |job, acc| {
            let cfg = self.config();
            match (job, acc) {
                (job, Access::OtherRole) => Err(lacks_role(
                    &job,
                    &cfg,
                    format!("job {id}: not the requester and no approver role"),
                )),
                (job, _) => job_view(&job, now_unix(), &cfg),
            }
        })
    }

    /// `GET /v1/jobs/{id}/input`: the unsigned image, for approvers to inspect (audited).
    pub fn job_input(&self, who: &Identity, id: &str) -> Result<Blob, ServiceError> {
        self.job_op(who, id, Action::Fetch, |job, acc| {
            let job = match (job, acc) {
                (job, Access::Approver | Access::Requester) => job,
                (job, _) => {
                    return Err(lacks_role(
                        &job,
                        &self.config(),
                        format!("job {id}: input needs the approver role"),
                    ))
                }
            };
            let mut ev = entry_by(who, Action::Fetch, Some(&job.job.product), Decision::Allow);
            ev.input_sha256 = Some(job.job.input_sha256);
            self.audit(&ev.with_extra(&serde_json::json!({"job": id, "part": "input"})))?;
            self.blobs
                .open(&job.job.input_sha256)?
                .ok_or_else(|| ServiceError::internal("job input missing from the store"))
        })
    }

    /// `POST /v1/jobs/{id}/approve` with the hex digest the approver inspected. The approval that
    /// reaches the quorum signs the job before returning.
    pub fn approve(
        &self,
        who: &Identity,
        id: &str,
        digest_hex: &str,
    ) -> Result<JobView, ServiceError> {
        let quorum = self.job_op(who, id, Action::Approve, |job, acc| {
            let cfg = self.config();
            let job_digest = hex::encode(&job.job.digest);
            let refused = |refusal| ServiceError::Job {
                id: id.to_string(),
                refusal,
                digest_hex: job_digest.clone(),
                rejecting: false,
            };
            match acc {
                Access::Approver => {}
                Access::Requester => return Err(refused(JobRefusal::SelfApproval)),
                _ => return Err(lacks_role(&job, &cfg, String::new())),
            }
            let digest = hex::decode(digest_hex.trim()).map_err(|_| {
                ServiceError::BadRequest("digest must be hex (the job's digest.value)".into())
            })?;
            // The current policy's M applies to pending jobs too when it is stricter, and only
            // approvers who hold the role in the current configuration count toward it.
            let holds = holds_role(&cfg, &job);
            let policy = current_policy(&cfg, &job, &holds);
            let outcome = self.store.approve(
                id,
                &who.principal(),
                &digest,
                &now_rfc3339(),
                now_unix(),
                &policy,
            )?;
            let (n, quorum) = match outcome {
                ApproveOutcome::Refused(r) => return Err(refused(r)),
                ApproveOutcome::Recorded { approvals, .. } => (approvals, None),
                ApproveOutcome::Quorum(j) => {
                    (u32::try_from(j.approvals.len()).unwrap_or(0), Some(j))
                }
            };
            let mut ev = entry_by(
                who,
                Action::Approve,
                Some(&job.job.product),
                Decision::Allow,
            );
            ev.input_sha256 = Some(job.job.input_sha256);
            ev.format = Some(job.job.format.clone());
            ev.mode = Some(job.job.mode.clone());
            let ev = ev.with_extra(&serde_json::json!({
                "job": id,
                "digest": {"alg": job.job.digest_alg, "value": job_digest},
                "approvals": n,
                "required": job.job.required,
                "requester": job.job.requester,
            "requester_oidc": job.job.requester_oidc,
            }));
            if let Err(e) = self.store.append(&ev) {
                tracing::error!(error = %e, "audit append for an approval failed");
            }
            Ok(quorum)
        })?;
        if let Some(j) = quorum {
            self.release(*j)?;
        }
        self.current_job(id)
    }

    fn current_job(&self, id: &str) -> Result<JobView, ServiceError> {
        match self.store.job(id)? {
            Some(j) => job_view(&j, now_unix(), &self.config()),
            None => Err(no_such_job(id, format!("no job {id}"))),
        }
    }

    /// `POST /v1/jobs/{id}/reject` with a reason: an approver (or the requester, withdrawing it)
    /// ends a pending job.
    pub fn reject(&self, who: &Identity, id: &str, reason: &str) -> Result<JobView, ServiceError> {
        self.job_op(who, id, Action::Reject, |job, acc| {
            if !matches!(acc, Access::Approver | Access::Requester) {
                return Err(lacks_role(&job, &self.config(), String::new()));
            }
            let reason = reason.trim();
            if reason.is_empty() || reason.len() > 1000 {
                return Err(ServiceError::BadRequest(
                    "reason must be 1-1000 characters".into(),
                ));
            }
            if let Some(r) = self.store.reject(id, &who.name, reason, now_unix())? {
                return Err(ServiceError::Job {
                    id: id.to_string(),
                    refusal: r,
                    digest_hex: hex::encode(&job.job.digest),
                    rejecting: true,
                });
            }
            let mut ev = entry_by(who, Action::Reject, Some(&job.job.product), Decision::Allow);
            ev.input_sha256 = Some(job.job.input_sha256);
            ev.reason = Some(reason.to_string());
            self.audit(
                &ev.with_extra(&serde_json::json!({"job": id, "requester": job.job.requester})),
            )
        })?;
        self.current_job(id)
    }
}
