//! The one signing path. An uploaded image, a released job and a hash-locally request all get
//! their signers from [`SigningService::signers`], their provenance from
//! [`SigningService::provenance`] and their audit record from [`sign_entry`], and commit it
//! before anything is released.

use super::intake::{Intake, SignParams, Upload};
use super::{entry, now_rfc3339, ServiceError, SigningService};
use crate::auth::Identity;
use crate::config::{Policy, ProductConfig, Role};
use crate::keys::ProductSigners;
use fwseal_api::{DigestValue, Links, SigOut, SignOutcome, SignQuery, SignResponse};
use fwseal_crypto::{Family, Signature, Signer};
use fwseal_formats::files as pipeline;
use fwseal_formats::{sign_prepared, Format, Mode, Part};
use fwseal_store::{Action, ArtifactMeta, AuditEntry, Decision};
use sha2::{Digest, Sha256};

/// What the appliance saw of the image it signed.
pub(crate) enum Seen {
    /// The image itself (upload or job): its input, the stored output and detached document.
    Image {
        input_sha256: [u8; 32],
        output_sha256: [u8; 32],
        detached_sha256: [u8; 32],
    },
    /// Only messages (hash-locally): the input hash is the client's claim.
    DigestOnly { claimed_input_sha256: [u8; 32] },
}

/// One signing, described for its provenance and its audit record.
pub(crate) struct Signing<'a> {
    /// Who asked (the job's requester for a released job).
    pub(crate) requester: &'a str,
    pub(crate) pcfg: &'a ProductConfig,
    pub(crate) format: Format,
    pub(crate) mode: Mode,
    /// The input's name as submitted.
    pub(crate) name: &'a str,
    /// Every released signature of the image (made now or carried), classical first.
    pub(crate) signatures: Vec<&'a Signature>,
    /// The certificate of the classical key, when a classical signature was made now.
    pub(crate) certificate: Option<&'a [u8]>,
    pub(crate) seen: Seen,
    pub(crate) approvers: &'a [fwseal_provenance::Approver],
    /// Invocation id (the artifact id for stored artifacts).
    pub(crate) invocation: &'a str,
    pub(crate) started: &'a str,
    pub(crate) claims: fwseal_provenance::ClientClaims,
    /// The requester's verified OIDC claims (the job's submitter's, for a released job).
    pub(crate) verified: Option<&'a fwseal_provenance::VerifiedClaims>,
}

/// The audit record of a signing: the one builder for every path. `made` are the signatures
/// produced by this request (a hash-locally request may carry earlier ones); `extra` is the
/// path's own detail.
pub(crate) fn sign_entry(
    s: &Signing<'_>,
    made: &[&Signature],
    extra: serde_json::Value,
) -> AuditEntry {
    let mut ev = entry(
        s.requester,
        Action::Sign,
        Some(&s.pcfg.name),
        Decision::Allow,
    );
    ev.key_ids = made.iter().map(|s| s.key_id).collect();
    ev.cert_sha256 = s.certificate.map(|c| Sha256::digest(c).into());
    if let Seen::Image {
        input_sha256,
        output_sha256,
        ..
    } = &s.seen
    {
        ev.input_sha256 = Some(*input_sha256);
        ev.output_sha256 = Some(*output_sha256);
    }
    ev.format = Some(s.format.name().to_string());
    ev.mode = Some(mode_name(s.mode).to_string());
    if let Some(v) = s.verified {
        let mut x = crate::auth::oidc_audit(v);
        x["verified"] = serde_json::to_value(v).unwrap_or_default();
        ev = ev.with_extra(&x);
    }
    ev.with_extra(&extra)
}

/// Put a signing's timestamps into its audit record's `extra`: `timestamps` (the summary of
/// every token, or why one is missing) and `provenance_timestamps` (the DSSE signatures'
/// tokens themselves — the provenance envelope has no place for them, and the record travels in
/// the bundle; the image's tokens are in the detached document).
pub(crate) fn record_timestamps(
    extra: &mut serde_json::Value,
    image: Option<Stamped>,
    provenance: Option<Stamped>,
) {
    let mut summary = Vec::new();
    if let Some(st) = image {
        summary.extend(st.audit);
    }
    if let Some(st) = provenance {
        summary.extend(st.audit);
        if !st.tokens.is_empty() {
            extra["provenance_timestamps"] = serde_json::json!(st.tokens);
        }
    }
    if !summary.is_empty() {
        extra["timestamps"] = serde_json::Value::Array(summary);
    }
}

/// Refuse client claims that contradict the verified claims of `who`'s token (if any),
/// naming every contradicting claim.
pub(crate) fn check_claims(
    who: &Identity,
    claims: &fwseal_api::BuildClaims,
) -> Result<(), ServiceError> {
    let Some(v) = who.verified() else {
        return Ok(());
    };
    let found = fwseal_provenance::contradictions(&client_claims(claims), v);
    if found.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = found.iter().map(|c| c.to_string()).collect();
    Err(ServiceError::ClaimContradiction(format!(
        "{} (a client claim may repeat a verified one, never contradict it)",
        list.join("; ")
    )))
}

/// Stable name of a mode.
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

/// Client-asserted build claims, as the provenance records them (labelled unverified).
pub(crate) fn client_claims(c: &fwseal_api::BuildClaims) -> fwseal_provenance::ClientClaims {
    fwseal_provenance::ClientClaims {
        source_uri: c.source_uri.clone(),
        commit: c.commit.clone(),
        git_ref: c.git_ref.clone(),
        ci_run_url: c.ci_run_url.clone(),
        builder_id: c.builder_id.clone(),
    }
}

/// The timestamps of one group of signatures and the audit record's account of them.
pub(crate) struct Stamped {
    /// One token per signature (empty when best-effort failed).
    pub(crate) tokens: Vec<fwseal_crypto::SigTimestamp>,
    /// Per token: what it covers, genTime, TSA, serial, policy, the token's SHA-256 — or,
    /// best-effort, why there is none.
    pub(crate) audit: Vec<serde_json::Value>,
}

/// Who and what an upload or a released job is signed for, besides its intake.
pub(crate) struct Finalize {
    /// The client that submitted the image (the artifact's `client`).
    pub(crate) requester: String,
    /// Its verified OIDC claims, if it was OIDC-authenticated.
    pub(crate) verified: Option<fwseal_provenance::VerifiedClaims>,
    pub(crate) pcfg: ProductConfig,
    pub(crate) q: SignQuery,
    pub(crate) started: String,
    /// For a released job: its id and the approver identities.
    pub(crate) job: Option<(String, Vec<fwseal_provenance::Approver>)>,
}

/// A sign request authorised and its parameters checked, before its upload is read (so nothing
/// is spooled for a refused request). [`SigningService::sign_upload`] checks both again against
/// the configuration current when each image is signed.
#[derive(Clone)]
pub struct SignTicket {
    pcfg: ProductConfig,
    params: SignParams,
}

impl SigningService {
    /// The product's signers for `format` (key errors counted as HSM errors).
    pub(crate) fn signers(
        &self,
        pcfg: &ProductConfig,
        format: Format,
    ) -> Result<ProductSigners, ServiceError> {
        let (classical, pq) = super::intake::algorithms(pcfg, format);
        self.keys
            .product_signers(&pcfg.name, classical, pq)
            .inspect_err(|_| {
                self.metrics.hsm_errors.inc();
            })
            .map_err(ServiceError::Keys)
    }

    /// Count released signatures.
    pub(crate) fn count_signatures(&self, product: &str, sigs: &[&Signature]) {
        for s in sigs {
            self.metrics
                .signatures
                .get_or_create(&crate::metrics::SigLabels {
                    product: product.to_string(),
                    alg: s.alg.name().to_string(),
                })
                .inc();
        }
    }

    /// The provenance of a signing, signed by the appliance's own keys, as one JSON line, and
    /// its DSSE signatures (classical first) as [`Signature`]s: the one provenance builder for
    /// every path.
    pub(crate) fn provenance(
        &self,
        s: &Signing<'_>,
    ) -> Result<(String, Vec<Signature>), ServiceError> {
        let (artifact_name, artifact_sha, input_sha, detached) = match &s.seen {
            Seen::Image {
                input_sha256,
                output_sha256,
                detached_sha256,
            } => (
                s.format.output_name(s.name, s.mode),
                hex::encode(output_sha256),
                hex::encode(input_sha256),
                Some(hex::encode(detached_sha256)),
            ),
            Seen::DigestOnly {
                claimed_input_sha256,
            } => {
                let h = hex::encode(claimed_input_sha256);
                (s.name.to_string(), h.clone(), h, None)
            }
        };
        let rec = fwseal_provenance::SigningRecord {
            artifact_name,
            artifact_sha256: artifact_sha,
            input_name: s.name.to_string(),
            input_sha256: input_sha,
            detached_sha256: detached,
            product: s.pcfg.name.clone(),
            format: s.format.name().to_string(),
            mode: mode_name(s.mode).to_string(),
            hash_locally: matches!(s.seen, Seen::DigestOnly { .. }),
            key_ids: s
                .signatures
                .iter()
                .map(|x| (x.alg.name().to_string(), x.key_id.to_hex()))
                .collect(),
            signature_sha256: s
                .signatures
                .iter()
                .map(|x| hex::encode(Sha256::digest(&x.bytes)))
                .collect(),
            policy: policy_name(s.pcfg.policy).to_string(),
            approvers: s.approvers.to_vec(),
            builder_id: self.config().identity.clone(),
            invocation_id: s.invocation.to_string(),
            started_on: s.started.to_string(),
            finished_on: now_rfc3339(),
            client_claims: s.claims.clone(),
            verified: s.verified.cloned(),
        };
        let failed = |e: &dyn std::fmt::Display| {
            ServiceError::Signing(format!("provenance signing failed: {e}"))
        };
        let keys = self.keys.appliance_signers().map_err(|e| failed(&e))?;
        let env = fwseal_provenance::sign_record(&rec, keys.classical.as_ref(), keys.pq.as_ref())
            .map_err(|e| failed(&e))?;
        let mut sigs = Vec::with_capacity(env.signatures.len());
        for (es, k) in env
            .signatures
            .iter()
            .zip([keys.classical.as_ref(), keys.pq.as_ref()])
        {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&es.sig)
                .map_err(|e| failed(&e))?;
            sigs.push(Signature {
                alg: k.alg(),
                key_id: k.key_id(),
                bytes,
            });
        }
        Ok((env.to_jsonl(), sigs))
    }

    /// RFC 3161 timestamps over `sigs` (`formats/timestamp.md`) from the `[tsa]` authorities;
    /// `None` when no `[tsa]` is configured. `prefix` names what was signed (`image`,
    /// `provenance`) in the audit summary. When no TSA answers: `mode = "required"` refuses
    /// ([`ServiceError::TsaUnavailable`]; the caller has released nothing yet),
    /// `"best-effort"` returns no tokens and the reason for the audit record.
    pub(crate) fn timestamp(
        &self,
        prefix: &str,
        sigs: &[&Signature],
    ) -> Result<Option<Stamped>, ServiceError> {
        let cfg = self.config();
        let Some(ts) = cfg.tsa.as_ref().and_then(|t| t.timestamper()) else {
            return Ok(None);
        };
        match ts.stamp_all(prefix, sigs) {
            Ok((tokens, audit)) => Ok(Some(Stamped { tokens, audit })),
            Err(e) => match ts.mode {
                crate::tsa::TsaMode::Required => Err(ServiceError::TsaUnavailable(format!(
                    "no RFC 3161 timestamp for the {prefix} signatures: {e}; [tsa] mode is \
                         \"required\", so nothing was released"
                ))),
                crate::tsa::TsaMode::BestEffort => {
                    tracing::warn!(error = %e, what = prefix, "no RFC 3161 timestamp (best-effort): signing without");
                    Ok(Some(Stamped {
                        tokens: Vec::new(),
                        audit: vec![serde_json::json!({
                            "covers": prefix,
                            "missing": e.to_string(),
                        })],
                    }))
                }
            },
        }
    }

    /// Before an upload is read: authorise `who` as a submitter of `product` and check the
    /// request's parameters (refusals audited), so nothing is spooled for a refused request.
    pub fn begin_sign(
        &self,
        who: &Identity,
        product: &str,
        q: &SignQuery,
    ) -> Result<SignTicket, ServiceError> {
        self.audited(who, Action::Sign, Some(product), || {
            self.authorise_sign(who, product, q)
        })
    }

    /// `who` holds the submitter role on `product` in the *current* configuration, and `q`'s
    /// parameters are valid for it.
    fn authorise_sign(
        &self,
        who: &Identity,
        product: &str,
        q: &SignQuery,
    ) -> Result<SignTicket, ServiceError> {
        let (_, pcfg) = self.product_for(who, product, Role::Submitter)?;
        let params = SignParams::parse(&pcfg, q)?;
        check_claims(who, &q.claims())?;
        Ok(SignTicket { pcfg, params })
    }

    /// `POST /v1/products/{p}/sign` (and each part of a batch), once the upload is spooled:
    /// re-check the authorisation against the current configuration (a role revoked while the
    /// upload or an earlier part of the batch was being received refuses this image), prepare,
    /// then sign now or — for a product under an approval policy — store a pending job.
    /// Refusals are audited.
    pub fn sign_upload(
        &self,
        who: &Identity,
        ticket: &SignTicket,
        q: SignQuery,
        upload: Upload,
        started: String,
    ) -> Result<SignOutcome, ServiceError> {
        self.audited(who, Action::Sign, Some(&ticket.pcfg.name), || {
            let SignTicket { pcfg, params } = &self.authorise_sign(who, &ticket.pcfg.name, &q)?;
            let params = *params;
            let name = q
                .name
                .clone()
                .unwrap_or_else(|| format!("image-{}", &hex::encode(upload.sha256)[..12]));
            let input = super::intake::Input {
                path: &upload.path,
                len: upload.len,
                name: &name,
            };
            let (format, plan) = self.prepare(pcfg, input, params)?;
            // Only a policy restricted to key versions needs to know the current one.
            let key_version = match &pcfg.approvals {
                Some(a) if !a.key_versions.is_empty() => self.keys.current_version(&pcfg.name)?,
                _ => None,
            };
            let intake = Intake {
                path: upload.path.to_path_buf(),
                spool: Some(upload.path),
                len: upload.len,
                input_sha: upload.sha256,
                name,
                format,
                mode: params.mode,
                version: params.version,
                plan,
            };
            if let Some(policy) = pcfg
                .approvals
                .as_ref()
                .filter(|a| a.applies_to(key_version))
            {
                let mut q = q;
                q.format = Some(format.name().to_string());
                q.mode = Some(params.mode);
                return self
                    .submit_job(who, pcfg, policy, intake, q, key_version)
                    .map(|j| SignOutcome::Pending(Box::new(j)));
            }
            let fin = Finalize {
                requester: who.name.clone(),
                verified: who.verified().cloned(),
                pcfg: pcfg.clone(),
                q,
                started,
                job: None,
            };
            self.sign_intake(intake, fin)
                .map(|r| SignOutcome::Signed(Box::new(r)))
        })
    }

    /// Record a refusal that happened while receiving an upload (spooling, a batch's parts).
    pub fn upload_refused(&self, who: &Identity, ticket: &SignTicket, e: &ServiceError) {
        self.refused(who, Action::Sign, Some(&ticket.pcfg.name), e);
    }

    /// Sign a prepared image and finalize it: signatures (PQ first), embed, blobs, provenance,
    /// then the audit record and artifact row in one durable commit. Used by an immediate sign
    /// and by a job's release, so both produce exactly the same artifacts.
    pub(crate) fn sign_intake(
        &self,
        intake: Intake,
        fin: Finalize,
    ) -> Result<SignResponse, ServiceError> {
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
        let pcfg = &fin.pcfg;
        let signers = self.signers(pcfg, format)?;
        let certs = signers.certificate.clone().into_iter().collect();
        let mut set = sign_prepared(
            plan.as_ref(),
            signers.classical.as_deref().map(|s| s as &dyn Signer),
            signers.pq.as_deref().map(|s| s as &dyn Signer),
            certs,
        )
        .map_err(|e| {
            self.metrics.hsm_errors.inc();
            ServiceError::Signing(e.to_string())
        })?;
        // Timestamps over the image's signatures, before anything is embedded or written
        // (`.efi` carries the classical one inside its PKCS#7).
        let image_ts = self.timestamp("image", &set.signatures.iter().collect::<Vec<_>>())?;
        if let Some(st) = &image_ts {
            set.timestamps = st.tokens.clone();
        }
        let doc = plan.detached(&set)?.to_json().into_bytes();
        // The image artifact: the signed image (embedded) or the unchanged input (detached).
        let parts = match mode {
            Mode::Embedded => plan.embed(&set)?,
            Mode::Detached => vec![Part::Input { start: 0, len }],
        };
        // Every blob is staged (durable, invisible) and published only after the audit record
        // and artifact row are committed: no signed image, detached document or provenance is
        // ever visible without its record, and a failure before the commit leaves nothing.
        let mut w = self.blobs.writer()?;
        pipeline::write_parts(&parts, &path, &mut w)?;
        let image = w.stage()?;
        let image_sha = image.sha256();
        drop(spool);
        let doc_blob = self.blobs.stage(&doc)?;
        let doc_sha = doc_blob.sha256();
        let sigs: Vec<&Signature> = set.signatures.iter().collect();
        self.count_signatures(&pcfg.name, &sigs);

        let artifact_id = fwseal_store::new_artifact_id()?;
        let (job, approvers) = match &fin.job {
            Some((id, a)) => (Some(id.as_str()), a.as_slice()),
            None => (None, &[][..]),
        };
        let made_classical = sigs.iter().any(|s| s.alg.family() == Family::Classical);
        let signing = Signing {
            requester: &fin.requester,
            pcfg,
            format,
            mode,
            name: &name,
            signatures: sigs.clone(),
            certificate: signers.certificate.as_deref().filter(|_| made_classical),
            seen: Seen::Image {
                input_sha256: input_sha,
                output_sha256: image_sha,
                detached_sha256: doc_sha,
            },
            approvers,
            invocation: &artifact_id,
            started: &fin.started,
            claims: client_claims(&fin.q.claims()),
            verified: fin.verified.as_ref(),
        };
        let (prov, prov_sigs) = self.provenance(&signing)?;
        let prov_ts = self.timestamp("provenance", &prov_sigs.iter().collect::<Vec<_>>())?;
        let prov_blob = self.blobs.stage(prov.as_bytes())?;
        let prov_sha = prov_blob.sha256();
        let (da, dv) = plan.digest();
        let digest = DigestValue {
            alg: da,
            value: hex::encode(&dv),
        };
        let mut extra = serde_json::json!({
            "artifact": artifact_id,
            "detached_sha256": hex::encode(doc_sha),
            "provenance_sha256": hex::encode(prov_sha),
        });
        record_timestamps(&mut extra, image_ts, prov_ts);
        if let Some(job) = job {
            extra["job"] = serde_json::json!(job);
            extra["approvers"] =
                serde_json::json!(approvers.iter().map(|a| &a.name).collect::<Vec<_>>());
            // Who they are: an OIDC approver by issuer + subject.
            extra["approver_identities"] = serde_json::json!(approvers);
            if let Some(v) = &fin.verified {
                extra["requester_oidc"] = crate::auth::oidc_audit(v)["oidc"].clone();
            }
            extra["digest"] = serde_json::json!(digest);
        }
        let ev = sign_entry(&signing, &sigs, extra);
        let meta = ArtifactMeta {
            id: artifact_id.clone(),
            product: pcfg.name.clone(),
            format: format.name().to_string(),
            mode: mode_name(mode).to_string(),
            name: Some(name.clone()),
            // What the signed image states (MCUboot: its header), else what the request named.
            version: plan.image_version().or(version).map(|v| v.to_string()),
            input_sha256: input_sha,
            output_sha256: image_sha,
            detached_sha256: Some(doc_sha),
            provenance_sha256: Some(prov_sha),
            key_ids: ev.key_ids.clone(),
            client: Some(fin.requester.clone()),
            created: now_rfc3339(),
        };
        // The staged blobs' names durable (one directory sync for the three), then the audit
        // record durably committed BEFORE the signature leaves, then the blobs published.
        self.blobs.sync_staged()?;
        self.store
            .commit(&ev, Some(&meta))
            .map_err(ServiceError::AuditFailed)?;
        // From here on the signing is recorded: nothing staged may be lost. A blob that cannot
        // be published stays staged for start-up recovery, and the error is not a refusal.
        self.publish_committed(
            vec![image, doc_blob, prov_blob],
            Some(&artifact_id),
            &format!(
                "artifact {artifact_id} was signed and recorded; it becomes available after the \
                 next start of the appliance"
            ),
        )?;
        Ok(SignResponse {
            links: Links::for_artifact(&artifact_id),
            artifact_id,
            product: pcfg.name.clone(),
            format,
            mode,
            input_sha256: hex::encode(input_sha),
            output_sha256: hex::encode(image_sha),
            digest,
            signatures: sigs
                .iter()
                .map(|s| SigOut {
                    alg: s.alg,
                    key_id: s.key_id.to_hex(),
                })
                .collect(),
            approvers: approvers.iter().map(|a| a.name.clone()).collect(),
        })
    }
}
