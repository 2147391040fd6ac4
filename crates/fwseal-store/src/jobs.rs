//! Pending signing jobs of M-of-N products and their approvals: the backend-neutral types,
//! the [`JobQueue`] trait, and the rules every backend applies ([`validate_new_job`],
//! [`approval_refusal`], [`quorum`], [`not_open`]).
//!
//! A job is created `pending` when a product with an approval policy receives a sign request;
//! its input lives in the [`crate::BlobStore`] under its SHA-256. Every state change is one
//! transaction that re-reads the job first (SQLite: `BEGIN IMMEDIATE`), so two approvals racing
//! for the last slot cannot both reach the quorum: exactly one caller gets
//! [`ApproveOutcome::Quorum`] (and the job moves to `signing`), the other is refused.
//!
//! ```text
//! pending ──approve (M-th distinct)──▶ signing ──finish──▶ signed
//!    │                                    └──────fail────▶ failed
//!    └──reject──▶ rejected        (pending past its expiry reads as expired)
//! ```
//!
//! The store never reads the clock: callers pass the current time (`now_unix`).

use crate::record::Hash32;
use crate::StoreError;
use serde::Serialize;

/// A job's stored state. `expired` is not stored: a `pending` job past its expiry is reported
/// as [`JobState::Expired`] by [`Job::state_at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum JobState {
    /// Waiting for approvals.
    Pending,
    /// Quorum reached; the signature is being made.
    Signing,
    /// Signed; `artifact_id` names the result.
    Signed,
    /// Rejected by an approver.
    Rejected,
    /// Pending past its expiry.
    Expired,
    /// Signing was refused or interrupted after the quorum (`reason` says why).
    Failed,
}

impl JobState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Signing => "signing",
            JobState::Signed => "signed",
            JobState::Rejected => "rejected",
            JobState::Expired => "expired",
            JobState::Failed => "failed",
        }
    }

    /// The state with this stored name ([`JobState::as_str`]); `None` for an unknown name.
    pub fn from_name(s: &str) -> Option<Self> {
        [
            JobState::Pending,
            JobState::Signing,
            JobState::Signed,
            JobState::Rejected,
            JobState::Expired,
            JobState::Failed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// What a new job records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewJob {
    /// Job id (same syntax as artifact ids).
    pub id: String,
    /// Product.
    pub product: String,
    /// Detected format name.
    pub format: String,
    /// `embedded` or `detached`.
    pub mode: String,
    /// Input file name as submitted.
    pub name: String,
    /// Image version, if requested.
    pub version: Option<String>,
    /// SHA-256 of the input (its address in the artifact store).
    #[serde(with = "crate::record::hex32")]
    pub input_sha256: Hash32,
    /// Input length in bytes.
    pub input_len: u64,
    /// Format-aware digest algorithm (the digest the device checks).
    pub digest_alg: String,
    /// Format-aware digest; approvals bind to it.
    #[serde(with = "hex_vec")]
    pub digest: Vec<u8>,
    /// Requesting client (its name).
    pub requester: String,
    /// The requester's OIDC issuer and subject when the request was OIDC-authenticated: the
    /// requester's identity is then issuer + subject ([`Principal::key`]), which the
    /// self-approval rule compares.
    pub requester_oidc: Option<OidcSubject>,
    /// The claims the appliance verified for the request (JSON object; the provenance's
    /// verified claims when the job is released). `None` for a static-token request.
    pub verified: Option<serde_json::Value>,
    /// The sign request's parameters (JSON object: build metadata etc.).
    pub params: serde_json::Value,
    /// The product key version current at submission.
    pub key_version: Option<u32>,
    /// Approvals required (M).
    pub required: u32,
    /// Role approvers must hold on the product.
    pub of_role: String,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Expiry time, RFC 3339 UTC.
    pub expires: String,
    /// Expiry, Unix seconds (what the store compares).
    #[serde(skip)]
    pub expires_unix: i64,
}

/// An OIDC identity: the token's issuer (`iss`) and subject (`sub`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OidcSubject {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
}

/// Who requested or approved a job: a client name and, for an OIDC-authenticated identity, its
/// issuer and subject. Identities are compared by [`Principal::key`]: the name for a
/// static-token client, issuer + subject for an OIDC one (so two people matched by one OIDC
/// rule, who share its client name, are two identities).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Client name (configured client, or the matched OIDC rule's `client`).
    pub name: String,
    /// Issuer and subject of an OIDC identity.
    pub oidc: Option<OidcSubject>,
    /// For an OIDC identity: the token claims its rule was matched on (a bounded JSON object),
    /// so the current configuration's rules can be applied again ([`CurrentPolicy::counts`]).
    pub claims: Option<serde_json::Value>,
}

impl Principal {
    /// A static-token client.
    pub fn named(name: &str) -> Self {
        Principal {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// The identity key: the name, or `oidc:["<issuer>","<subject>"]` (client names starting
    /// with `oidc:` are refused by the server's configuration, so the two never collide).
    pub fn key(&self) -> String {
        match &self.oidc {
            None => self.name.clone(),
            Some(o) => format!("oidc:{}", serde_json::json!([o.issuer, o.subject])),
        }
    }
}

/// One recorded approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// Approver.
    pub approver: Principal,
    /// When, RFC 3339 UTC.
    pub time: String,
}

/// A stored job with its approvals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Job {
    /// What was submitted.
    #[serde(flatten)]
    pub job: NewJob,
    /// Stored state (see [`Job::state_at`] for the state including expiry).
    pub state: JobState,
    /// Rejection or failure reason.
    pub reason: Option<String>,
    /// The signed artifact, once signed.
    pub artifact_id: Option<String>,
    /// Distinct approvals so far, oldest first.
    pub approvals: Vec<Approval>,
}

impl Job {
    /// The state at `now_unix`: a pending job past its expiry is expired.
    pub fn state_at(&self, now_unix: i64) -> JobState {
        if self.state == JobState::Pending && now_unix >= self.job.expires_unix {
            JobState::Expired
        } else {
            self.state
        }
    }

    /// Approver names, oldest first.
    pub fn approvers(&self) -> Vec<String> {
        self.approvals
            .iter()
            .map(|a| a.approver.name.clone())
            .collect()
    }

    /// The requester as a [`Principal`] (no claims).
    pub fn requester(&self) -> Principal {
        Principal {
            name: self.job.requester.clone(),
            oidc: self.job.requester_oidc.clone(),
            claims: None,
        }
    }
}

/// Why an approval or rejection was refused. Checked inside the transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobRefusal {
    /// No such job.
    NotFound,
    /// The requester tried to approve or reject their own job.
    SelfApproval,
    /// This identity already approved.
    AlreadyApproved,
    /// The job expired.
    Expired,
    /// The job was rejected (reason).
    Rejected(Option<String>),
    /// The job is already signed (artifact id) or being signed.
    AlreadySigned(Option<String>),
    /// Signing failed after the quorum (reason).
    Failed(Option<String>),
    /// The approval names a different digest than the job's.
    DigestMismatch,
}

/// Result of [`JobQueue::approve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApproveOutcome {
    /// Recorded; more approvals are needed.
    Recorded {
        /// Distinct approvals that count now ([`CurrentPolicy::counts`]).
        approvals: u32,
        /// Required.
        required: u32,
    },
    /// Recorded and the quorum is reached: the job moved to `signing` and this caller (only
    /// this one) must sign it. Carries the job with **the approvals that counted** (those of
    /// identities [`CurrentPolicy::counts`] accepted, oldest first); approvals that no longer
    /// count stay stored but are not in this list.
    Quorum(Box<Job>),
    /// Refused; nothing changed.
    Refused(JobRefusal),
}

/// The approval policy as it stands *now* (the current configuration), which
/// [`JobQueue::approve`] applies inside its transaction.
pub struct CurrentPolicy<'a> {
    /// The current policy's M: the quorum is the larger of this and the job's stored M
    /// ([`quorum`]).
    pub min_required: u32,
    /// Whether an approver's approval counts toward the quorum now: they still hold the
    /// approver role on the job's product. An approval recorded by an identity whose role was
    /// revoked since stays stored (the audit log and the job keep it) but no longer counts.
    pub counts: &'a (dyn Fn(&Principal) -> bool + Sync),
}

impl CurrentPolicy<'_> {
    /// Every approver counts; the stored M applies (tests, tools without a configuration).
    pub const ANYONE: CurrentPolicy<'static> = CurrentPolicy {
        min_required: 0,
        counts: &|_| true,
    };
}

/// The approvals of `job` that count under `policy`, oldest first.
pub fn counted(job: &Job, policy: &CurrentPolicy<'_>) -> Vec<Approval> {
    job.approvals
        .iter()
        .filter(|a| (policy.counts)(&a.approver))
        .cloned()
        .collect()
}

/// The pending-job queue. Object-safe (callable on `dyn JobQueue` / `dyn Store`).
///
/// Every method re-reads the job inside one transaction and applies the rules of this module,
/// so racing callers see one consistent order of events.
pub trait JobQueue: Send + Sync {
    /// Record a new pending job ([`validate_new_job`]). Fails if the id exists.
    fn create_job(&self, job: &NewJob) -> Result<(), StoreError>;
    /// One job by id.
    fn job(&self, id: &str) -> Result<Option<Job>, StoreError>;
    /// Jobs of `products` (all stored states; newest first, at most `limit`).
    fn list_jobs(&self, products: &[String], limit: usize) -> Result<Vec<Job>, StoreError>;
    /// Add `approver`'s approval (one per identity, [`Principal::key`]) of `digest` (the format-aware digest they inspected). The
    /// quorum is the larger of the job's stored M and `policy.min_required` (the current
    /// policy's M, so tightening the policy also applies to pending jobs; the stored M is
    /// raised: [`quorum`]), and only approvals that `policy.counts` accepts count toward it
    /// ([`counted`]: an approver whose role was revoked since no longer counts). Refusals
    /// ([`approval_refusal`]) change nothing. Of racing approvals, exactly one gets
    /// [`ApproveOutcome::Quorum`].
    fn approve(
        &self,
        id: &str,
        approver: &Principal,
        digest: &[u8],
        time: &str,
        now_unix: i64,
        policy: &CurrentPolicy<'_>,
    ) -> Result<ApproveOutcome, StoreError>;
    /// Reject a pending job ([`not_open`] refusals; the stored reason is
    /// [`rejection_reason`]). `Ok(None)` when done, `Ok(Some(refusal))` otherwise.
    fn reject(
        &self,
        id: &str,
        who: &str,
        reason: &str,
        now_unix: i64,
    ) -> Result<Option<JobRefusal>, StoreError>;
    /// `signing` → `signed` with the artifact id; [`StoreError::Misuse`] in any other state.
    fn finish_job(&self, id: &str, artifact_id: &str) -> Result<(), StoreError>;
    /// `signing` → `failed` with a reason; [`StoreError::Misuse`] in any other state.
    fn fail_job(&self, id: &str, reason: &str) -> Result<(), StoreError>;
    /// Jobs left in `signing` by a crash become `failed` with [`INTERRUPTED_REASON`]; returns
    /// their ids.
    fn fail_interrupted(&self) -> Result<Vec<String>, StoreError>;
    /// The stored input of every job, whatever its state (possibly with repeats): blobs
    /// [`crate::BlobStore::recover`] keeps.
    fn job_inputs(&self) -> Result<Vec<Hash32>, StoreError>;
}

mod hex_vec {
    use serde::Serializer;
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

/// The reason [`JobQueue::fail_interrupted`] stores.
pub const INTERRUPTED_REASON: &str = "signing was interrupted (daemon stopped); resubmit";

/// Refuse a new job the queue must not store: an id that is not a valid artifact id
/// ([`crate::meta::valid_id`]) or a quorum of zero.
pub fn validate_new_job(j: &NewJob) -> Result<(), StoreError> {
    if !crate::meta::valid_id(&j.id) {
        return Err(StoreError::Misuse(format!("job id {:?} is invalid", j.id)));
    }
    if j.required == 0 {
        return Err(StoreError::Misuse(
            "a job needs at least one approval".into(),
        ));
    }
    Ok(())
}

/// Refusal for a job that is not pending (or is expired) at `now_unix`.
pub fn not_open(job: &Job, now_unix: i64) -> Option<JobRefusal> {
    match job.state_at(now_unix) {
        JobState::Pending => None,
        JobState::Expired => Some(JobRefusal::Expired),
        JobState::Rejected => Some(JobRefusal::Rejected(job.reason.clone())),
        JobState::Signed | JobState::Signing => {
            Some(JobRefusal::AlreadySigned(job.artifact_id.clone()))
        }
        JobState::Failed => Some(JobRefusal::Failed(job.reason.clone())),
    }
}

/// Why `approver` may not approve `job` (as re-read inside the approval's transaction) with
/// `digest` at `now_unix`, checked in this order: not open ([`not_open`]), self-approval,
/// already approved by this identity, digest mismatch — identities compared by
/// [`Principal::key`]. `None`: the approval is recorded.
pub fn approval_refusal(
    job: &Job,
    approver: &Principal,
    digest: &[u8],
    now_unix: i64,
) -> Option<JobRefusal> {
    if let Some(r) = not_open(job, now_unix) {
        return Some(r);
    }
    let key = approver.key();
    if job.requester().key() == key {
        return Some(JobRefusal::SelfApproval);
    }
    if job.approvals.iter().any(|a| a.approver.key() == key) {
        return Some(JobRefusal::AlreadyApproved);
    }
    if job.job.digest != digest {
        return Some(JobRefusal::DigestMismatch);
    }
    None
}

/// The approvals a job needs: its stored M, raised to the current policy's `min_required`
/// (never lowered).
pub fn quorum(stored: u32, min_required: u32) -> u32 {
    stored.max(min_required)
}

/// The reason a rejected job stores: `rejected by <who>: <reason>`.
pub fn rejection_reason(who: &str, reason: &str) -> String {
    format!("rejected by {who}: {reason}")
}
