//! A job's release: the approval that reached the quorum re-prepares the stored input,
//! refuses unless the recomputed digest equals the approved one, and signs it through the same
//! [`SigningService::sign_intake`] as an immediate request.

use super::intake::{Input, Intake, SignParams};
use super::signing::Finalize;
use super::{ServiceError, SigningService};
use fwseal_api::SignQuery;
use fwseal_formats::Format;
use fwseal_store::{Action, Job};

impl SigningService {
    /// Sign a job whose quorum was just reached (this caller won the transition to `signing`).
    /// Any refusal marks the job failed and is audited.
    pub(super) fn release(&self, job: Job) -> Result<(), ServiceError> {
        let id = job.job.id.clone();
        match self.release_inner(&job) {
            Ok(artifact) => Ok(self.store.finish_job(&id, &artifact)?),
            // Signed and recorded; only publishing its blobs failed (recovery finishes that):
            // the job is signed, not failed, and this is not a refusal.
            Err(
                e @ ServiceError::Unpublished {
                    artifact: Some(_), ..
                },
            ) => {
                if let ServiceError::Unpublished {
                    artifact: Some(a), ..
                } = &e
                {
                    self.store.finish_job(&id, a)?;
                }
                Err(e)
            }
            Err(e) => {
                let reason = format!("job {id}: release refused: {e}");
                if let Err(f) = self.store.fail_job(&id, &reason) {
                    tracing::error!(error = %f, job = %id, "marking a job failed failed");
                }
                self.deny(
                    &crate::auth::Identity::named(&job.job.requester),
                    Action::Sign,
                    Some(&job.job.product),
                    reason,
                );
                Err(e)
            }
        }
    }

    fn release_inner(&self, job: &Job) -> Result<String, ServiceError> {
        let j = &job.job;
        let cfg = self.config();
        let Some(pcfg) = cfg.product(&j.product).cloned() else {
            return Err(ServiceError::Unsupported(format!(
                "product {} is no longer configured",
                j.product
            )));
        };
        let q: SignQuery =
            serde_json::from_value(j.params.clone()).map_err(ServiceError::internal)?;
        let version = super::intake::parse_version(j.version.as_deref())
            .map_err(|e| ServiceError::internal(format!("stored version: {e}")))?;
        let format = Format::from_name(&j.format)
            .ok_or_else(|| ServiceError::internal(format!("stored format {:?}", j.format)))?;
        if let Some(want) = j.key_version {
            if self
                .keys
                .current_version(&j.product)?
                .is_some_and(|v| v != want)
            {
                return Err(ServiceError::Unsupported(format!(
                    "product {}'s signing key version changed since the job was submitted (v{want}); \
                     submit the image again",
                    j.product
                )));
            }
        }
        // The stored input must still be the uploaded bytes...
        match self.blobs.check(&j.input_sha256)? {
            Some(true) => {}
            Some(false) => return Err(ServiceError::internal("stored job input is corrupt")),
            None => return Err(ServiceError::internal("stored job input is missing")),
        }
        let (path, spool) = self.local_copy(&j.input_sha256)?;
        let params = SignParams {
            version,
            format: Some(format),
            mode: q.mode.unwrap_or(pcfg.default_mode),
        };
        let input = Input {
            path: &path,
            len: j.input_len,
            name: &j.name,
        };
        let (format, plan) = self.prepare(&pcfg, input, params)?;
        // ...and the digest the device will check must be the one the approvers approved.
        let (alg, digest) = plan.digest();
        if alg.name() != j.digest_alg || digest != j.digest {
            return Err(ServiceError::DigestMismatch(format!(
                "the recomputed digest {} {} differs from the approved {} {}",
                alg.name(),
                hex::encode(&digest),
                j.digest_alg,
                hex::encode(&j.digest)
            )));
        }
        let intake = Intake {
            spool,
            path,
            len: j.input_len,
            input_sha: j.input_sha256,
            name: j.name.clone(),
            format,
            mode: params.mode,
            version,
            plan,
        };
        let verified = j
            .verified
            .clone()
            .map(serde_json::from_value::<fwseal_provenance::VerifiedClaims>)
            .transpose()
            .map_err(|e| ServiceError::internal(format!("stored verified claims: {e}")))?;
        let approvers = job
            .approvals
            .iter()
            .map(|a| fwseal_provenance::Approver {
                name: a.approver.name.clone(),
                issuer: a.approver.oidc.as_ref().map(|o| o.issuer.clone()),
                subject: a.approver.oidc.as_ref().map(|o| o.subject.clone()),
            })
            .collect();
        let fin = Finalize {
            requester: j.requester.clone(),
            verified,
            pcfg,
            q,
            started: j.created.clone(),
            job: Some((j.id.clone(), approvers)),
        };
        Ok(self.sign_intake(intake, fin)?.artifact_id)
    }

    /// A blob as a local file (random access for the format engine): the blob store's own file
    /// where it has one, else a copy in the spool (removed when the returned path is dropped).
    fn local_copy(
        &self,
        sha256: &fwseal_store::Hash32,
    ) -> Result<(std::path::PathBuf, Option<tempfile::TempPath>), ServiceError> {
        if let Some(p) = self.blobs.local_path(sha256) {
            return Ok((p, None));
        }
        let Some(mut blob) = self.blobs.open(sha256)? else {
            return Err(ServiceError::internal("stored job input is missing"));
        };
        let (mut f, path) = self.spool_file()?;
        std::io::copy(&mut blob.reader, &mut f)?;
        Ok((path.to_path_buf(), Some(path)))
    }
}
