//! fwseal-provenance: SLSA provenance for every signing, in a DSSE envelope signed by the
//! appliance's own keys (hybrid: ECDSA P-256 over the PAE + ML-DSA-65 over the PAE).
//! The contract is `formats/provenance.md`. Sans-I/O: times are inputs, never read from a clock.
//!
//! ```
//! use fwseal_crypto::{soft::SoftKey, SigAlg, Signer};
//! use fwseal_provenance::{sign_record, verify, Policy, SigningRecord};
//! let ec = SoftKey::generate(SigAlg::EcdsaP256Sha256).unwrap();
//! let pq = SoftKey::generate(SigAlg::MlDsa65).unwrap();
//! let rec = SigningRecord { artifact_sha256: "00".repeat(32), ..SigningRecord::example() };
//! let env = sign_record(&rec, &ec, &pq).unwrap();
//! let stmt = verify(&env, &[ec.public_key().clone(), pq.public_key().clone()], &Policy::default()).unwrap();
//! assert_eq!(stmt["subject"][0]["digest"]["sha256"], "00".repeat(32));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use base64::Engine as _;
use fwseal_crypto::{SignedMessage, Signer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

mod glob;
mod policy;
pub use glob::{glob_match, is_glob};
pub use policy::{
    check_statement, verify, verify_report, Basis, Check, Passed, Policy, Report, Requirement,
};
use policy::{expectation, no_verified};

/// in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// SLSA Provenance v1 predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// fwseal's build type (documented in `formats/provenance.md`): every statement fwseal writes.
pub const BUILD_TYPE: &str = "https://fwseal.dev/buildtypes/firmware-sign/v2";
/// The previous build type: no verified claims, approvers as names. [`verify`] still reads it
/// (provenance signed before v2 stays verifiable); nothing writes it.
pub const BUILD_TYPE_V1: &str = "https://fwseal.dev/buildtypes/firmware-sign/v1";
/// DSSE payload type.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Build metadata asserted by the client. Untrusted: recorded, labelled, never relied upon by
/// the appliance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientClaims {
    /// Source repository URI.
    pub source_uri: Option<String>,
    /// Source commit.
    pub commit: Option<String>,
    /// Source ref.
    pub git_ref: Option<String>,
    /// CI run URL.
    pub ci_run_url: Option<String>,
    /// The CI builder's id.
    pub builder_id: Option<String>,
}

/// Build metadata the appliance **verified**: the claims of an OIDC workload token (GitHub
/// Actions, GitLab CI, …) whose signature, issuer, audience and lifetime fwseald checked, mapped
/// to issuer-neutral names. Every field comes from the token, never from the client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedClaims {
    /// `iss`, exactly as configured.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `jti`, if the token had one.
    pub jti: Option<String>,
    /// Repository path (`repository` on GitHub, `project_path` on GitLab), e.g. `acme/widget`.
    pub repository: Option<String>,
    /// The source as a SLSA `git+https` URI (`git+https://github.com/acme/widget`), built from
    /// the issuer's configured source host and `repository`.
    pub source_uri: Option<String>,
    /// Full git ref (`refs/tags/v1.2.0`).
    pub git_ref: Option<String>,
    /// Commit SHA (`sha`).
    pub commit: Option<String>,
    /// The workflow / pipeline definition at a ref (`workflow_ref` on GitHub,
    /// `ci_config_ref_uri` on GitLab).
    pub workflow_ref: Option<String>,
    /// CI run id.
    pub run_id: Option<String>,
    /// CI run URL.
    pub run_url: Option<String>,
    /// Deployment environment.
    pub environment: Option<String>,
}

impl VerifiedClaims {
    /// GitHub Actions-shaped example claims (docs and tests): a tag build of `acme/widget` by
    /// its release workflow in the `production` environment.
    pub fn example() -> Self {
        VerifiedClaims {
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: "repo:acme/widget:environment:production".into(),
            jti: Some("8f1c2a3e-0d4b-4c5e-9f60-7a8b9c0d1e2f".into()),
            repository: Some("acme/widget".into()),
            source_uri: Some("git+https://github.com/acme/widget".into()),
            git_ref: Some("refs/tags/v1.2.0".into()),
            commit: Some("3f786850e387550fdab836ed7e6dc881de23001b".into()),
            workflow_ref: Some("acme/widget/.github/workflows/release.yml@refs/tags/v1.2.0".into()),
            run_id: Some("7301234567".into()),
            run_url: Some("https://github.com/acme/widget/actions/runs/7301234567".into()),
            environment: Some("production".into()),
        }
    }
}

/// One approver of an M-of-N job. Static-token clients have only a `name`; an OIDC-authenticated
/// approver also names the `issuer` and `subject` that identify them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approver {
    /// Client name (from the configuration or the matched OIDC rule).
    pub name: String,
    /// OIDC issuer, if the approval was OIDC-authenticated.
    pub issuer: Option<String>,
    /// OIDC subject, if the approval was OIDC-authenticated.
    pub subject: Option<String>,
}

impl Approver {
    /// A static-token approver.
    pub fn named(name: &str) -> Self {
        Approver {
            name: name.to_string(),
            ..Default::default()
        }
    }
}

/// A client-asserted claim that contradicts the verified one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contradiction {
    /// The claim (`sourceRepository`, `commit`, `ref`, `ciRunUrl`).
    pub claim: &'static str,
    /// What the client said.
    pub client: String,
    /// What the token says.
    pub verified: String,
}

impl std::fmt::Display for Contradiction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "client claim {} = {:?} contradicts the verified {:?}",
            self.claim, self.client, self.verified
        )
    }
}

/// A source URI in the one spelling that comparisons use: without a `git+` prefix, trailing
/// `/`s or a `.git` suffix, scheme and host lower-cased, the path (case-sensitive) as it is.
/// `git+https://GitHub.com/acme/widget.git/` → `https://github.com/acme/widget`.
pub fn normalize_source_uri(s: &str) -> String {
    let s = s.strip_prefix("git+").unwrap_or(s);
    let s = s.trim_end_matches('/');
    let s = s.strip_suffix(".git").unwrap_or(s);
    match s.find("://") {
        Some(i) => {
            let rest = &s[i + 3..];
            let host_end = rest.find('/').unwrap_or(rest.len());
            format!(
                "{}://{}{}",
                s[..i].to_ascii_lowercase(),
                rest[..host_end].to_ascii_lowercase(),
                &rest[host_end..]
            )
        }
        None => s.to_string(),
    }
}

/// Client claims that contradict verified ones. A claim the client did not make, or that the
/// token does not carry, contradicts nothing. Equivalent spellings are not contradictions:
/// source URIs compare without a `git+` prefix, a trailing `/` or `.git`, and with the scheme
/// and host lower-cased; commits compare case-insensitively; a ref without `refs/` matches
/// `refs/heads/X` or `refs/tags/X`.
pub fn contradictions(client: &ClientClaims, verified: &VerifiedClaims) -> Vec<Contradiction> {
    fn same_ref(client: &str, verified: &str) -> bool {
        client == verified
            || (!client.starts_with("refs/")
                && [
                    format!("refs/heads/{client}"),
                    format!("refs/tags/{client}"),
                ]
                .iter()
                .any(|r| r == verified))
    }
    let checks: [(
        &'static str,
        &Option<String>,
        &Option<String>,
        fn(&str, &str) -> bool,
    ); 4] = [
        (
            "sourceRepository",
            &client.source_uri,
            &verified.source_uri,
            |a, b| normalize_source_uri(a) == normalize_source_uri(b),
        ),
        ("commit", &client.commit, &verified.commit, |a, b| {
            a.eq_ignore_ascii_case(b)
        }),
        ("ref", &client.git_ref, &verified.git_ref, same_ref),
        ("ciRunUrl", &client.ci_run_url, &verified.run_url, |a, b| {
            a == b
        }),
    ];
    checks
        .into_iter()
        .filter_map(|(claim, c, v, same)| match (c, v) {
            (Some(c), Some(v)) if !same(c, v) => Some(Contradiction {
                claim,
                client: c.clone(),
                verified: v.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// Everything the appliance knows about one signing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningRecord {
    /// Signed artifact name (the subject).
    pub artifact_name: String,
    /// Signed artifact SHA-256 (hex).
    pub artifact_sha256: String,
    /// Unsigned input name.
    pub input_name: String,
    /// Unsigned input SHA-256 (hex).
    pub input_sha256: String,
    /// Detached signature document SHA-256 (hex), if one was produced.
    pub detached_sha256: Option<String>,
    /// Product.
    pub product: String,
    /// Format name.
    pub format: String,
    /// `embedded` or `detached`.
    pub mode: String,
    /// The appliance saw only a digest (client-side hashing).
    pub hash_locally: bool,
    /// (algorithm, key id hex) per signature.
    pub key_ids: Vec<(String, String)>,
    /// SHA-256 (hex) of each released signature's bytes, in `key_ids` order. This binds the
    /// provenance to the signatures found in the image, which is how a hash-locally provenance
    /// (whose appliance never saw the signed image) is tied to it.
    #[serde(default)]
    pub signature_sha256: Vec<String>,
    /// `hybrid`, `classical-only`, `pq-only`.
    pub policy: String,
    /// Approver identities (M-of-N), in approval order.
    pub approvers: Vec<Approver>,
    /// The appliance identity (`runDetails.builder.id`).
    pub builder_id: String,
    /// Invocation id = artifact id.
    pub invocation_id: String,
    /// RFC 3339.
    pub started_on: String,
    /// RFC 3339.
    pub finished_on: String,
    /// Client-asserted build metadata.
    pub client_claims: ClientClaims,
    /// Build metadata verified from the request's OIDC token (none for a static API token).
    #[serde(default)]
    pub verified: Option<VerifiedClaims>,
}

impl SigningRecord {
    /// A filled-in example (docs and tests).
    pub fn example() -> Self {
        SigningRecord {
            artifact_name: "fw.signed.bin".into(),
            artifact_sha256: "11".repeat(32),
            input_name: "fw.bin".into(),
            input_sha256: "22".repeat(32),
            detached_sha256: None,
            product: "widget".into(),
            format: "raw".into(),
            mode: "embedded".into(),
            hash_locally: false,
            key_ids: vec![
                ("ecdsa-p256-sha256".into(), "33".repeat(32)),
                ("ml-dsa-65".into(), "44".repeat(32)),
            ],
            signature_sha256: vec!["55".repeat(32), "66".repeat(32)],
            policy: "hybrid".into(),
            approvers: vec![],
            builder_id: "https://fwseal.example/appliance/1".into(),
            invocation_id: "0123456789abcdef".into(),
            started_on: "2026-11-28T12:00:00Z".into(),
            finished_on: "2026-11-28T12:00:01Z".into(),
            client_claims: ClientClaims {
                source_uri: Some("git+https://git.example/widget".into()),
                ..Default::default()
            },
            verified: None,
        }
    }
}

/// `externalParameters.clientClaims.trust`: what the client claims are.
pub const CLIENT_TRUST: &str = "client-asserted, unverified by the appliance";
/// `externalParameters.verifiedClaims.trust`: what the verified claims are.
pub const VERIFIED_TRUST: &str =
    "verified by the appliance: claims of the OIDC ID token that authenticated the request";

/// The in-toto Statement for a signing (buildType [`BUILD_TYPE`], `formats/provenance.md`).
/// `externalParameters.verifiedClaims` and the source entry of `resolvedDependencies` exist only
/// when the request was OIDC-authenticated (`r.verified`), and are filled only from it.
pub fn statement(r: &SigningRecord) -> Value {
    let mut subject =
        vec![json!({"name": r.artifact_name, "digest": {"sha256": r.artifact_sha256}})];
    if let Some(d) = &r.detached_sha256 {
        subject
            .push(json!({"name": format!("{}.sig.json", r.input_name), "digest": {"sha256": d}}));
    }
    let c = &r.client_claims;
    let mut external = json!({
        "clientClaims": {
            "trust": CLIENT_TRUST,
            "sourceRepository": c.source_uri,
            "commit": c.commit,
            "ref": c.git_ref,
            "ciRunUrl": c.ci_run_url,
            "builderId": c.builder_id,
        }
    });
    let mut deps = vec![json!({"name": r.input_name, "digest": {"sha256": r.input_sha256}})];
    if let Some(v) = &r.verified {
        external["verifiedClaims"] = json!({
            "trust": VERIFIED_TRUST,
            "issuer": v.issuer,
            "subject": v.subject,
            "jti": v.jti,
            "repository": v.repository,
            "sourceRepository": v.source_uri,
            "ref": v.git_ref,
            "commit": v.commit,
            "workflowRef": v.workflow_ref,
            "runId": v.run_id,
            "runUrl": v.run_url,
            "environment": v.environment,
        });
        if let Some(src) = v.source_uri.as_deref().filter(|s| !s.is_empty()) {
            let mut uri = if src.starts_with("git+") {
                src.to_string()
            } else {
                format!("git+{src}")
            };
            if let Some(git_ref) = v.git_ref.as_deref().filter(|s| !s.is_empty()) {
                uri = format!("{uri}@{git_ref}");
            }
            let mut dep = json!({ "uri": uri });
            if let Some(commit) = v.commit.as_deref().filter(|s| !s.is_empty()) {
                dep["digest"] = json!({ "gitCommit": commit });
            }
            deps.push(dep);
        }
    }
    let approvers: Vec<Value> = r
        .approvers
        .iter()
        .map(|a| {
            let mut o = json!({ "name": a.name });
            if let Some(iss) = &a.issuer {
                o["issuer"] = json!(iss);
            }
            if let Some(sub) = &a.subject {
                o["subject"] = json!(sub);
            }
            o
        })
        .collect();
    json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {
                    "product": r.product,
                    "format": r.format,
                    "mode": r.mode,
                    "hashLocally": r.hash_locally,
                    "policy": r.policy,
                    "keys": r.key_ids.iter().map(|(a, k)| json!({"alg": a, "keyId": k})).collect::<Vec<_>>(),
                    "signatureSha256": r.signature_sha256,
                    "approvers": approvers,
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": r.builder_id},
                "metadata": {
                    "invocationId": r.invocation_id,
                    "startedOn": r.started_on,
                    "finishedOn": r.finished_on,
                }
            }
        }
    })
}

/// DSSE pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        body.len()
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

/// One DSSE signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// fwseal key id (hex SHA-256 of the SPKI DER).
    pub keyid: String,
    /// Base64 signature.
    pub sig: String,
}

/// A DSSE envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Base64 of the statement JSON.
    pub payload: String,
    /// [`PAYLOAD_TYPE`].
    pub payload_type: String,
    /// Signatures (classical first).
    pub signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// One JSON line (for `.intoto.jsonl`), newline-terminated.
    pub fn to_jsonl(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Parse one envelope (a JSON object; surrounding whitespace allowed).
    pub fn from_json(s: &[u8]) -> Result<Self, ProvenanceError> {
        serde_json::from_slice(s).map_err(|e| ProvenanceError::Malformed(format!("envelope: {e}")))
    }

    /// The decoded payload.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, ProvenanceError> {
        base64::engine::general_purpose::STANDARD
            .decode(self.payload.as_bytes())
            .map_err(|e| ProvenanceError::Malformed(format!("payload base64: {e}")))
    }
}

/// Errors from signing or verifying provenance; each names the check that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvenanceError {
    /// Not parseable.
    #[error("malformed provenance: {0}")]
    Malformed(String),
    /// Wrong payload type.
    #[error("payload type is {0:?}, expected {PAYLOAD_TYPE:?}")]
    PayloadType(String),
    /// A signature failed or none by a trusted key.
    #[error("provenance signature: {0}")]
    Signature(String),
    /// The subject does not match the artifact.
    #[error("provenance subject does not name the artifact (sha256 {0})")]
    Subject(String),
    /// Builder id mismatch.
    #[error("provenance builder id is {found:?}, expected {expected:?}")]
    Builder {
        /// Found.
        found: String,
        /// Expected.
        expected: String,
    },
    /// The statement is not of a buildType this crate can interpret.
    #[error("provenance buildType is {0:?}, expected {BUILD_TYPE:?} (or {BUILD_TYPE_V1:?})")]
    BuildType(String),
    /// A claim differs from what the policy expects.
    #[error("provenance check {check}: {} {} is {found:?}, {}", basis.adjective(), check.claim(), expectation(*check, expected))]
    ClaimMismatch {
        /// The check.
        check: Check,
        /// Which data was compared: verified, or client-asserted (relaxed policy).
        basis: Basis,
        /// What the provenance says.
        found: String,
        /// The policy's value or pattern.
        expected: String,
    },
    /// The claim is in the provenance only as a client assertion, and the policy does not
    /// accept client claims.
    #[error("provenance check {check}: the provenance's {} {client:?} is only client-asserted \
             (unverified by the appliance: {}); {} — a policy that accepts client claims would relax this check",
            check.claim(), no_verified(*has_verified_claims, *check), expectation(*check, expected))]
    ClientAssertedOnly {
        /// The check.
        check: Check,
        /// The client-asserted value.
        client: String,
        /// The policy's value or pattern.
        expected: String,
        /// Whether the provenance has verified claims at all (it lacks this one).
        has_verified_claims: bool,
    },
    /// Neither a verified claim nor (where the policy accepts them) a client-asserted one.
    #[error("provenance check {check}: the provenance has no {} ({}{}); {}",
            check.claim(), no_verified(*has_verified_claims, *check),
            if *client_considered { ", and no client-asserted one" } else { "" }, expectation(*check, expected))]
    ClaimMissing {
        /// The check.
        check: Check,
        /// The policy's value or pattern.
        expected: String,
        /// Whether the provenance has verified claims at all (it lacks this one).
        has_verified_claims: bool,
        /// Whether client claims were looked at (the policy accepts them and the check has a
        /// client-asserted counterpart).
        client_considered: bool,
    },
    /// Signing failed.
    #[error(transparent)]
    Crypto(#[from] fwseal_crypto::CryptoError),
}

impl ProvenanceError {
    /// The builder-id or claim check that failed, if this is such a failure.
    pub fn check(&self) -> Option<Check> {
        match self {
            ProvenanceError::Builder { .. } => Some(Check::BuilderId),
            ProvenanceError::ClaimMismatch { check, .. }
            | ProvenanceError::ClientAssertedOnly { check, .. }
            | ProvenanceError::ClaimMissing { check, .. } => Some(*check),
            _ => None,
        }
    }
}

/// Sign a statement (any JSON) with the classical and post-quantum appliance keys. Both sign
/// the PAE: ECDSA P-256 as ECDSA-SHA256 (DER), ML-DSA-65 pure with the empty context.
pub fn sign_statement(stmt: &Value, signers: &[&dyn Signer]) -> Result<Envelope, ProvenanceError> {
    let body = serde_json::to_vec(stmt).map_err(|e| ProvenanceError::Malformed(e.to_string()))?;
    let m = SignedMessage::Bytes(pae(PAYLOAD_TYPE, &body));
    let mut sigs = Vec::new();
    for s in signers {
        let sig = s.sign(&m)?;
        sigs.push(EnvelopeSignature {
            keyid: sig.key_id.to_hex(),
            sig: base64::engine::general_purpose::STANDARD.encode(&sig.bytes),
        });
    }
    Ok(Envelope {
        payload: base64::engine::general_purpose::STANDARD.encode(&body),
        payload_type: PAYLOAD_TYPE.into(),
        signatures: sigs,
    })
}

/// Build the statement for `r` and sign it (classical, then post-quantum).
pub fn sign_record(
    r: &SigningRecord,
    classical: &dyn Signer,
    pq: &dyn Signer,
) -> Result<Envelope, ProvenanceError> {
    sign_statement(&statement(r), &[classical, pq])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contradictions_ignore_equivalent_spellings_and_name_real_ones() {
        let v = VerifiedClaims {
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: "repo:acme/widget:ref:refs/tags/v1.2.0".into(),
            source_uri: Some("git+https://github.com/acme/widget".into()),
            commit: Some("a".repeat(40)),
            git_ref: Some("refs/tags/v1.2.0".into()),
            run_url: Some("https://github.com/acme/widget/actions/runs/1".into()),
            ..Default::default()
        };
        let same = ClientClaims {
            source_uri: Some("https://GitHub.com/acme/widget.git/".into()),
            commit: Some("A".repeat(40)),
            git_ref: Some("v1.2.0".into()),
            ci_run_url: Some("https://github.com/acme/widget/actions/runs/1".into()),
            builder_id: Some("anything".into()),
        };
        assert_eq!(contradictions(&same, &v), vec![]);
        assert_eq!(contradictions(&ClientClaims::default(), &v), vec![]);
        let other = ClientClaims {
            source_uri: Some("https://github.com/evil/widget".into()),
            commit: Some("b".repeat(40)),
            git_ref: Some("refs/heads/v1.2.0".into()),
            ci_run_url: Some("https://github.com/acme/widget/actions/runs/2".into()),
            builder_id: None,
        };
        let found: Vec<&str> = contradictions(&other, &v).iter().map(|c| c.claim).collect();
        assert_eq!(found, ["sourceRepository", "commit", "ref", "ciRunUrl"]);
        // The path part of a URI is case-sensitive: acme/Widget is another repository.
        let case = ClientClaims {
            source_uri: Some("git+https://github.com/acme/Widget".into()),
            ..Default::default()
        };
        assert_eq!(contradictions(&case, &v).len(), 1);
    }

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol document: PAE("http://example.com/HelloWorld", "hello world").
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}
