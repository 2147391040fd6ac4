//! M-of-N approvals: `/v1/jobs…`.

use crate::{DigestValue, SignQuery};
use fwseal_formats::{Format, Mode};
use serde::{Deserialize, Serialize};

/// A job's state as the API shows it (`expired` is computed when read: pending past `expires`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for approvals.
    Pending,
    /// Quorum reached; being signed.
    Signing,
    /// Signed: `artifact_id` and `links.artifact` name the result.
    Signed,
    /// Rejected (or withdrawn by the requester); `reason` says why.
    Rejected,
    /// Pending past its expiry.
    Expired,
    /// The release was refused after the quorum, or the daemon stopped while signing.
    Failed,
}

impl JobState {
    /// Every state.
    pub const ALL: [JobState; 6] = [
        JobState::Pending,
        JobState::Signing,
        JobState::Signed,
        JobState::Rejected,
        JobState::Expired,
        JobState::Failed,
    ];

    /// Wire name (`pending`, `signing`, …).
    pub fn name(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Signing => "signing",
            JobState::Signed => "signed",
            JobState::Rejected => "rejected",
            JobState::Expired => "expired",
            JobState::Failed => "failed",
        }
    }

    /// Inverse of [`JobState::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.name() == s)
    }

    /// Whether the job ended without a signature (rejected, expired, failed).
    pub fn ended_unsigned(self) -> bool {
        matches!(
            self,
            JobState::Rejected | JobState::Expired | JobState::Failed
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One recorded approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobApproval {
    /// Approver identity.
    pub approver: String,
    /// When, RFC 3339 UTC.
    pub time: String,
}

/// A job's links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLinks {
    /// The job (`/v1/jobs/{id}`).
    #[serde(rename = "self")]
    pub self_: String,
    /// The unsigned input.
    pub input: String,
    /// Where approvals are posted.
    pub approve: String,
    /// Where rejections are posted.
    pub reject: String,
    /// The signed artifact, once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
}

impl JobLinks {
    /// The links of job `id`, signed as `artifact` if it is.
    pub fn for_job(id: &str, artifact: Option<&str>) -> Self {
        let base = format!("/v1/jobs/{id}");
        JobLinks {
            input: format!("{base}/input"),
            approve: format!("{base}/approve"),
            reject: format!("{base}/reject"),
            artifact: artifact.map(|a| format!("/v1/artifacts/{a}")),
            self_: base,
        }
    }
}

/// A signing job: the `202` answer of a sign request for a product with an approval policy,
/// `GET /v1/jobs/{id}`, and the answer of approve / reject. Keys shown as `Option` are always
/// present (`null` when unset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// Product.
    pub product: String,
    /// Detected (or requested) format.
    pub format: Format,
    /// Embedded or detached.
    pub mode: Mode,
    /// Input file name as submitted.
    pub name: String,
    /// Requested image version.
    pub version: Option<String>,
    /// SHA-256 (hex) of the uploaded bytes.
    pub input_sha256: String,
    /// Input length, bytes.
    pub input_len: u64,
    /// The signing plan's format-aware digest: what approvers inspect and send back.
    pub digest: DigestValue,
    /// The submitting client.
    pub requester: String,
    /// The sign request's parameters (client-asserted build metadata), with `format` and
    /// `mode` as submitted.
    pub build: SignQuery,
    /// The product's key version current at submission (policies with `key_versions`).
    pub key_version: Option<u32>,
    /// Approvals required (M; the current policy's when it is stricter than at submission).
    pub approvals_required: u32,
    /// Role an approver must hold on the product.
    pub of_role: String,
    /// Distinct approvals so far, oldest first.
    pub approvals: Vec<JobApproval>,
    /// Submission time, RFC 3339 UTC.
    pub created: String,
    /// Expiry time, RFC 3339 UTC.
    pub expires: String,
    /// State (at the time of the answer).
    pub state: JobState,
    /// Why it was rejected or failed.
    pub reason: Option<String>,
    /// The signed artifact, once signed.
    pub artifact_id: Option<String>,
    /// Links.
    pub links: JobLinks,
}

impl JobView {
    /// Approver identities, oldest first.
    pub fn approvers(&self) -> Vec<String> {
        self.approvals.iter().map(|a| a.approver.clone()).collect()
    }
}

/// `GET /v1/jobs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobList {
    /// The jobs the caller may see, newest first.
    pub jobs: Vec<JobView>,
}

/// Which jobs `GET /v1/jobs` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobsFilter {
    /// Pending jobs only (the default).
    Pending,
    /// Every state.
    All,
}

/// Query of `GET /v1/jobs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobsQuery {
    /// Only this product's jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// `pending` (default) or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<JobsFilter>,
}

/// Body of `POST /v1/jobs/{id}/approve`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproveBody {
    /// Hex of the format-aware digest the approver inspected (the job's `digest.value`).
    pub digest: String,
}

/// Body of `POST /v1/jobs/{id}/reject`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectBody {
    /// Why (1–1000 characters; recorded in the job and the audit log).
    pub reason: String,
}
