//! Verification policy: what [`verify`] insists on, from the envelope's signatures to the build
//! claims a deployment gate pins (`formats/provenance.md`, "Verifying").
//!
//! Claim checks ([`Requirement`]) read `externalParameters.verifiedClaims`, the claims fwseald
//! verified from an OIDC ID token. A claim present only in `clientClaims` (what the submitting
//! client said) fails with [`ProvenanceError::ClientAssertedOnly`] unless the policy sets
//! [`Policy::accept_client_claims`]; then `source-uri`, `ref`, `commit` and `repository` fall back
//! to the client-asserted values and the [`Report`] says so ([`Basis::ClientAsserted`]).

use crate::{
    glob_match, is_glob, normalize_source_uri, pae, Envelope, ProvenanceError, BUILD_TYPE,
    BUILD_TYPE_V1, PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE,
};
use base64::Engine as _;
use fwseal_crypto::{Family, PublicKey, SignedMessage};
use serde::Serialize;
use serde_json::Value;

/// A check on the provenance's build claims (or, [`Check::BuilderId`], on the appliance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Check {
    /// `runDetails.builder.id`, exact (set by the appliance itself).
    BuilderId,
    /// `verifiedClaims.issuer`, exact. No client-asserted counterpart.
    Issuer,
    /// `verifiedClaims.repository`, pattern. Client counterpart: the path of
    /// `clientClaims.sourceRepository`.
    Repository,
    /// `verifiedClaims.sourceRepository`, exact up to [`normalize_source_uri`]. Client
    /// counterpart: `clientClaims.sourceRepository`.
    SourceUri,
    /// `verifiedClaims.ref`, pattern over the full ref (`refs/tags/v*`). Client counterpart:
    /// `clientClaims.ref`.
    Ref,
    /// `verifiedClaims.commit`, exact, case-insensitive. Client counterpart:
    /// `clientClaims.commit`.
    Commit,
    /// `verifiedClaims.workflowRef`, pattern. No client-asserted counterpart.
    Workflow,
    /// `verifiedClaims.environment`, pattern. No client-asserted counterpart.
    Environment,
}

impl Check {
    /// Every claim check, in the order [`verify_report`] applies them.
    pub const CLAIMS: [Check; 7] = [
        Check::Issuer,
        Check::Repository,
        Check::SourceUri,
        Check::Ref,
        Check::Commit,
        Check::Workflow,
        Check::Environment,
    ];

    /// The check's name: the `fwseal verify` flag without `--`, and the policy file key with `_`.
    pub fn name(self) -> &'static str {
        match self {
            Check::BuilderId => "builder-id",
            Check::Issuer => "issuer",
            Check::Repository => "repository",
            Check::SourceUri => "source-uri",
            Check::Ref => "ref",
            Check::Commit => "commit",
            Check::Workflow => "workflow",
            Check::Environment => "environment",
        }
    }

    /// The claim in words (error messages).
    pub fn claim(self) -> &'static str {
        match self {
            Check::BuilderId => "builder id",
            Check::Issuer => "OIDC issuer",
            Check::Repository => "repository",
            Check::SourceUri => "source repository",
            Check::Ref => "ref",
            Check::Commit => "commit",
            Check::Workflow => "workflow ref",
            Check::Environment => "environment",
        }
    }

    /// The key in `externalParameters.verifiedClaims`.
    fn verified_key(self) -> &'static str {
        match self {
            Check::BuilderId => "",
            Check::Issuer => "issuer",
            Check::Repository => "repository",
            Check::SourceUri => "sourceRepository",
            Check::Ref => "ref",
            Check::Commit => "commit",
            Check::Workflow => "workflowRef",
            Check::Environment => "environment",
        }
    }

    /// Whether the claim has a client-asserted counterpart a relaxed policy may fall back to.
    pub fn has_client_counterpart(self) -> bool {
        matches!(
            self,
            Check::Repository | Check::SourceUri | Check::Ref | Check::Commit
        )
    }

    /// The client-asserted counterpart of the claim, from `externalParameters.clientClaims`.
    fn client_value(self, client: &Value) -> Option<String> {
        let get = |k: &str| non_empty(&client[k]);
        match self {
            Check::SourceUri => get("sourceRepository"),
            Check::Ref => get("ref"),
            Check::Commit => get("commit"),
            Check::Repository => get("sourceRepository").and_then(|u| repository_of(&u)),
            _ => None,
        }
    }

    /// Whether `found` satisfies `expected` for this check.
    fn accepts(self, expected: &str, found: &str) -> bool {
        match self {
            Check::BuilderId | Check::Issuer => expected == found,
            Check::SourceUri => normalize_source_uri(expected) == normalize_source_uri(found),
            Check::Commit => expected.eq_ignore_ascii_case(found),
            Check::Repository | Check::Ref | Check::Workflow | Check::Environment => {
                glob_match(expected, found)
            }
        }
    }

    /// Whether the policy value is a pattern for this check (glob syntax, and a pattern check).
    fn is_pattern(self, expected: &str) -> bool {
        matches!(
            self,
            Check::Repository | Check::Ref | Check::Workflow | Check::Environment
        ) && is_glob(expected)
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The repository path of a source URI: `git+https://github.com/acme/widget.git` → `acme/widget`.
fn repository_of(uri: &str) -> Option<String> {
    let n = normalize_source_uri(uri);
    let rest = &n[n.find("://")? + 3..];
    let path = rest[rest.find('/')?..].trim_start_matches('/');
    (!path.is_empty()).then(|| path.to_string())
}

fn non_empty(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// Which data a passed check was decided on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// A claim the appliance verified (`externalParameters.verifiedClaims`).
    Verified,
    /// A client-asserted claim (`externalParameters.clientClaims`), accepted only because the
    /// policy relaxes the check ([`Policy::accept_client_claims`]).
    ClientAsserted,
    /// A field the appliance itself set (`runDetails.builder.id`).
    Appliance,
}

impl Basis {
    /// `verified`, `client-asserted`, `appliance`.
    pub fn name(self) -> &'static str {
        match self {
            Basis::Verified => "verified",
            Basis::ClientAsserted => "client-asserted",
            Basis::Appliance => "appliance",
        }
    }

    /// The adjective for messages.
    pub(crate) fn adjective(self) -> &'static str {
        match self {
            Basis::Verified => "verified",
            Basis::ClientAsserted => "client-asserted",
            Basis::Appliance => "appliance-recorded",
        }
    }
}

impl std::fmt::Display for Basis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `expected "x"` or `expected a match for pattern "x*"` (error messages).
pub(crate) fn expectation(check: Check, expected: &str) -> String {
    if check.is_pattern(expected) {
        format!("expected a match for {expected:?}")
    } else {
        format!("expected {expected:?}")
    }
}

/// Why there is no verified claim (error messages).
pub(crate) fn no_verified(has_verified_claims: bool, check: Check) -> String {
    if has_verified_claims {
        format!(
            "its verified claims carry no {} (verifiedClaims.{} is absent)",
            check.claim(),
            check.verified_key()
        )
    } else {
        "the provenance has no verified claims: the signing request was not OIDC-authenticated"
            .into()
    }
}

/// One claim a policy requires: `check` must accept `expected` (a value or, for pattern checks,
/// a glob pattern; `formats/provenance.md`, "Patterns").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The check.
    pub check: Check,
    /// The value or pattern.
    pub expected: String,
}

impl Requirement {
    /// `check` must accept `expected`.
    pub fn new(check: Check, expected: impl Into<String>) -> Self {
        Requirement {
            check,
            expected: expected.into(),
        }
    }
}

/// What [`verify`] insists on.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Require a valid classical signature (default true).
    pub require_classical: bool,
    /// Require a valid post-quantum signature (default true).
    pub require_pq: bool,
    /// The subject must include this sha256 (hex) — or, for a hash-locally provenance (whose
    /// subject is the client-declared input), every one of `image_signatures_sha256` must be
    /// listed in its `signatureSha256`.
    pub subject_sha256: Option<String>,
    /// SHA-256 (hex) of each signature found in the image (see `subject_sha256`).
    pub image_signatures_sha256: Vec<String>,
    /// `runDetails.builder.id` must equal this (the same as a [`Check::BuilderId`] requirement).
    pub builder_id: Option<String>,
    /// Claim checks, all of which must hold (two requirements on one check both apply). A
    /// [`Check::BuilderId`] requirement checks `runDetails.builder.id`.
    pub claims: Vec<Requirement>,
    /// Let `source-uri`, `ref`, `commit` and `repository` fall back to the client-asserted
    /// claims when the provenance has no verified one. Relaxes the policy; the [`Report`] marks
    /// each check decided this way. Default false.
    pub accept_client_claims: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            require_classical: true,
            require_pq: true,
            subject_sha256: None,
            image_signatures_sha256: Vec::new(),
            builder_id: None,
            claims: Vec::new(),
            accept_client_claims: false,
        }
    }
}

impl Policy {
    /// Add a claim requirement.
    pub fn require(mut self, check: Check, expected: impl Into<String>) -> Self {
        self.claims.push(Requirement::new(check, expected));
        self
    }
}

/// A check that passed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Passed {
    /// The check.
    pub check: Check,
    /// The policy's value or pattern.
    pub expected: String,
    /// The provenance's value.
    pub found: String,
    /// Which data it was decided on.
    pub basis: Basis,
}

/// What [`verify_report`] checked.
#[derive(Clone, Debug)]
pub struct Report {
    /// The verified statement.
    pub statement: Value,
    /// The builder-id and claim checks that passed, in the order applied.
    pub checks: Vec<Passed>,
}

impl Report {
    /// The checks decided on client-asserted data (a relaxed policy).
    pub fn relaxed(&self) -> impl Iterator<Item = &Passed> {
        self.checks
            .iter()
            .filter(|p| p.basis == Basis::ClientAsserted)
    }

    /// `externalParameters.verifiedClaims`, if the signing was OIDC-authenticated.
    pub fn verified_claims(&self) -> Option<&Value> {
        Some(
            &self.statement["predicate"]["buildDefinition"]["externalParameters"]["verifiedClaims"],
        )
        .filter(|v| v.is_object())
    }
}

/// Verify an envelope against trusted appliance keys and a policy; return the statement.
/// Every signature present must verify with a trusted key (an unknown key id is an error).
pub fn verify(
    env: &Envelope,
    keys: &[PublicKey],
    policy: &Policy,
) -> Result<Value, ProvenanceError> {
    verify_report(env, keys, policy).map(|r| r.statement)
}

/// [`verify`], also saying which checks passed on which data.
pub fn verify_report(
    env: &Envelope,
    keys: &[PublicKey],
    policy: &Policy,
) -> Result<Report, ProvenanceError> {
    let statement = verify_signatures(env, keys, policy)?;
    let checks = check_statement(&statement, policy)?;
    Ok(Report { statement, checks })
}

/// The statement checks of `policy` (subject, builder id, claims) on a statement whose
/// envelope has been verified (by [`verify_report`]): lets a caller pick further checks from
/// its content, e.g. a policy section by `internalParameters.product`. Returns the builder-id
/// and claim checks that passed, in the documented order (builder id, then [`Check::CLAIMS`]).
pub fn check_statement(stmt: &Value, policy: &Policy) -> Result<Vec<Passed>, ProvenanceError> {
    check_subject(stmt, policy)?;
    let mut checks = Vec::new();
    let found = stmt["predicate"]["runDetails"]["builder"]["id"]
        .as_str()
        .unwrap_or_default();
    let builder_reqs = policy.builder_id.iter().chain(
        policy
            .claims
            .iter()
            .filter(|r| r.check == Check::BuilderId)
            .map(|r| &r.expected),
    );
    for want in builder_reqs {
        if found != want {
            return Err(ProvenanceError::Builder {
                found: found.into(),
                expected: want.clone(),
            });
        }
        checks.push(Passed {
            check: Check::BuilderId,
            expected: want.clone(),
            found: found.into(),
            basis: Basis::Appliance,
        });
    }
    let external = &stmt["predicate"]["buildDefinition"]["externalParameters"];
    let verified = Some(&external["verifiedClaims"]).filter(|v| v.is_object());
    let client = &external["clientClaims"];
    // In the documented order, whatever order the requirements were given in.
    for check in Check::CLAIMS {
        for req in policy.claims.iter().filter(|r| r.check == check) {
            checks.push(check_claim(
                req,
                verified,
                client,
                policy.accept_client_claims,
            )?);
        }
    }
    Ok(checks)
}

fn check_claim(
    req: &Requirement,
    verified: Option<&Value>,
    client: &Value,
    accept_client_claims: bool,
) -> Result<Passed, ProvenanceError> {
    let Requirement { check, expected } = req;
    let check = *check;
    let decide = |found: String, basis: Basis| {
        if check.accepts(expected, &found) {
            Ok(Passed {
                check,
                expected: expected.clone(),
                found,
                basis,
            })
        } else {
            Err(ProvenanceError::ClaimMismatch {
                check,
                basis,
                found,
                expected: expected.clone(),
            })
        }
    };
    if let Some(found) = verified.and_then(|v| non_empty(&v[check.verified_key()])) {
        return decide(found, Basis::Verified);
    }
    let has_verified_claims = verified.is_some();
    match (check.client_value(client), accept_client_claims) {
        (Some(c), true) => decide(c, Basis::ClientAsserted),
        (Some(c), false) => Err(ProvenanceError::ClientAssertedOnly {
            check,
            client: c,
            expected: expected.clone(),
            has_verified_claims,
        }),
        (None, accept) => Err(ProvenanceError::ClaimMissing {
            check,
            expected: expected.clone(),
            has_verified_claims,
            client_considered: accept && check.has_client_counterpart(),
        }),
    }
}

/// Payload type, every signature by a trusted key, both halves (unless relaxed), and an
/// in-toto v1 SLSA v1 statement of a known fwseal buildType.
fn verify_signatures(
    env: &Envelope,
    keys: &[PublicKey],
    policy: &Policy,
) -> Result<Value, ProvenanceError> {
    if env.payload_type != PAYLOAD_TYPE {
        return Err(ProvenanceError::PayloadType(env.payload_type.clone()));
    }
    let body = env.payload_bytes()?;
    let m = SignedMessage::Bytes(pae(&env.payload_type, &body));
    let (mut classical, mut pq) = (false, false);
    if env.signatures.is_empty() {
        return Err(ProvenanceError::Signature(
            "envelope has no signature".into(),
        ));
    }
    for s in &env.signatures {
        let key = keys
            .iter()
            .find(|k| k.key_id().to_hex() == s.keyid)
            .ok_or_else(|| {
                ProvenanceError::Signature(format!("no trusted key with id {}", s.keyid))
            })?;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(s.sig.as_bytes())
            .map_err(|e| ProvenanceError::Malformed(format!("signature base64: {e}")))?;
        key.verify_bytes(&m, &sig).map_err(|e| {
            ProvenanceError::Signature(format!("{} by {}: {e}", key.alg(), s.keyid))
        })?;
        match key.alg().family() {
            Family::Classical => classical = true,
            Family::PostQuantum => pq = true,
        }
    }
    if policy.require_classical && !classical {
        return Err(ProvenanceError::Signature(
            "policy requires a classical signature".into(),
        ));
    }
    if policy.require_pq && !pq {
        return Err(ProvenanceError::Signature(
            "policy requires a post-quantum signature".into(),
        ));
    }
    let stmt: Value = serde_json::from_slice(&body)
        .map_err(|e| ProvenanceError::Malformed(format!("statement: {e}")))?;
    if stmt["_type"] != STATEMENT_TYPE || stmt["predicateType"] != PREDICATE_TYPE {
        return Err(ProvenanceError::Malformed(
            "not an in-toto v1 SLSA provenance statement".into(),
        ));
    }
    let bt = &stmt["predicate"]["buildDefinition"]["buildType"];
    if bt != BUILD_TYPE && bt != BUILD_TYPE_V1 {
        return Err(ProvenanceError::BuildType(
            bt.as_str().map_or_else(|| bt.to_string(), str::to_string),
        ));
    }
    Ok(stmt)
}

fn check_subject(stmt: &Value, policy: &Policy) -> Result<(), ProvenanceError> {
    let Some(want) = &policy.subject_sha256 else {
        return Ok(());
    };
    let found = stmt["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["digest"]["sha256"].as_str() == Some(want.as_str()));
    let ip = &stmt["predicate"]["buildDefinition"]["internalParameters"];
    let listed: Vec<&str> = ip["signatureSha256"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let bound_by_signatures = ip["hashLocally"] == true
        && !policy.image_signatures_sha256.is_empty()
        && policy
            .image_signatures_sha256
            .iter()
            .all(|h| listed.contains(&h.as_str()));
    if !found && !bound_by_signatures {
        return Err(ProvenanceError::Subject(want.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{sign_record, SigningRecord, VerifiedClaims};
    use fwseal_crypto::{soft::SoftKey, SigAlg, Signer};

    struct Keys {
        ec: SoftKey,
        pq: SoftKey,
    }

    impl Keys {
        fn new() -> Self {
            Keys {
                ec: SoftKey::generate(SigAlg::EcdsaP256Sha256).expect("ec"),
                pq: SoftKey::generate(SigAlg::MlDsa65).expect("pq"),
            }
        }
        fn public(&self) -> Vec<PublicKey> {
            vec![self.ec.public_key().clone(), self.pq.public_key().clone()]
        }
        fn sign(&self, r: &SigningRecord) -> Envelope {
            sign_record(r, &self.ec, &self.pq).expect("sign")
        }
    }

    fn oidc_record() -> SigningRecord {
        SigningRecord {
            verified: Some(VerifiedClaims::example()),
            ..SigningRecord::example()
        }
    }

    fn policy(reqs: &[(Check, &str)]) -> Policy {
        reqs.iter()
            .fold(Policy::default(), |p, (c, e)| p.require(*c, *e))
    }

    const GOOD: [(Check, &str); 7] = [
        (Check::Issuer, "https://token.actions.githubusercontent.com"),
        (Check::Repository, "acme/widget"),
        (Check::SourceUri, "https://github.com/acme/widget"),
        (Check::Ref, "refs/tags/v*"),
        (Check::Commit, "3F786850E387550FDAB836ED7E6DC881DE23001B"),
        (
            Check::Workflow,
            "acme/widget/.github/workflows/release.yml@refs/tags/*",
        ),
        (Check::Environment, "production"),
    ];

    #[test]
    fn every_check_passes_on_verified_claims_and_says_so() {
        let k = Keys::new();
        let env = k.sign(&oidc_record());
        let mut p = policy(&GOOD);
        p.builder_id = Some(SigningRecord::example().builder_id);
        let r = verify_report(&env, &k.public(), &p).expect("passes");
        let names: Vec<&str> = r.checks.iter().map(|c| c.check.name()).collect();
        assert_eq!(
            names,
            [
                "builder-id",
                "issuer",
                "repository",
                "source-uri",
                "ref",
                "commit",
                "workflow",
                "environment"
            ]
        );
        assert!(r.checks[1..].iter().all(|c| c.basis == Basis::Verified));
        assert_eq!(r.checks[0].basis, Basis::Appliance);
        assert_eq!(r.checks[4].found, "refs/tags/v1.2.0");
        assert_eq!(r.relaxed().count(), 0);
        assert_eq!(
            r.verified_claims().expect("verified")["issuer"],
            "https://token.actions.githubusercontent.com"
        );
    }

    #[test]
    fn every_check_fails_on_a_wrong_verified_value_naming_found_and_expected() {
        let k = Keys::new();
        let env = k.sign(&oidc_record());
        let wrong: [(Check, &str, &str); 7] = [
            (
                Check::Issuer,
                "https://gitlab.com",
                "https://token.actions.githubusercontent.com",
            ),
            (Check::Repository, "acme/*-fork", "acme/widget"),
            (
                Check::SourceUri,
                "git+https://github.com/acme/Widget",
                "git+https://github.com/acme/widget",
            ),
            (Check::Ref, "refs/heads/*", "refs/tags/v1.2.0"),
            (
                Check::Commit,
                "3f786850e387550fdab836ed7e6dc881de23001c",
                "3f786850e387550fdab836ed7e6dc881de23001b",
            ),
            (
                Check::Workflow,
                "acme/widget/.github/workflows/other.yml@**",
                "acme/widget/.github/workflows/release.yml@refs/tags/v1.2.0",
            ),
            (Check::Environment, "staging", "production"),
        ];
        for (check, expected, found) in wrong {
            // The other checks hold; only this one fails.
            let mut p = policy(&GOOD);
            p.claims.retain(|r| r.check != check);
            p.claims.push(Requirement::new(check, expected));
            let err = verify(&env, &k.public(), &p).expect_err(check.name());
            match &err {
                ProvenanceError::ClaimMismatch {
                    check: c,
                    basis: Basis::Verified,
                    found: f,
                    expected: e,
                } => {
                    assert_eq!((*c, f.as_str(), e.as_str()), (check, found, expected));
                }
                other => panic!("{check}: {other:?}"),
            }
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("check {check}:"))
                    && msg.contains("verified")
                    && msg.contains(found)
                    && msg.contains(expected),
                "{msg}"
            );
        }
    }

    #[test]
    fn two_requirements_on_one_check_must_both_hold() {
        let k = Keys::new();
        let env = k.sign(&oidc_record());
        let both = policy(&[(Check::Ref, "refs/tags/*"), (Check::Ref, "refs/tags/v1.*")]);
        assert_eq!(
            verify_report(&env, &k.public(), &both)
                .expect("both hold")
                .checks
                .len(),
            2
        );
        let one = policy(&[(Check::Ref, "refs/tags/*"), (Check::Ref, "refs/tags/v2.*")]);
        assert!(matches!(
            verify(&env, &k.public(), &one),
            Err(ProvenanceError::ClaimMismatch {
                check: Check::Ref,
                ..
            })
        ));
    }

    /// A static-token provenance has only client claims: every claim check fails, naming the
    /// client-asserted value; accepting client claims relaxes exactly the four with a client
    /// counterpart.
    #[test]
    fn client_asserted_only_fails_unless_accepted() {
        let k = Keys::new();
        let mut rec = SigningRecord::example();
        rec.client_claims = crate::ClientClaims {
            source_uri: Some("git+https://github.com/acme/widget.git".into()),
            commit: Some("ab".repeat(20)),
            git_ref: Some("refs/tags/v1.2.0".into()),
            ci_run_url: None,
            builder_id: None,
        };
        let env = k.sign(&rec);
        let keys = k.public();
        let repo = policy(&[(Check::Repository, "acme/widget")]);
        let err = verify(&env, &keys, &repo).expect_err("client-only repository");
        match &err {
            ProvenanceError::ClientAssertedOnly {
                check: Check::Repository,
                client,
                has_verified_claims: false,
                ..
            } => assert_eq!(client, "acme/widget"),
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("only client-asserted") && msg.contains("not OIDC-authenticated"),
            "{msg}"
        );

        let commit = "ab".repeat(20);
        let relaxable = [
            (Check::Repository, "acme/*"),
            (Check::SourceUri, "https://github.com/acme/widget"),
            (Check::Ref, "refs/tags/v*"),
            (Check::Commit, commit.as_str()),
        ];
        for (c, e) in relaxable {
            assert!(
                matches!(
                    verify(&env, &keys, &policy(&[(c, e)])),
                    Err(ProvenanceError::ClientAssertedOnly { .. })
                ),
                "{c}"
            );
        }
        let mut relaxed = policy(&relaxable);
        relaxed.accept_client_claims = true;
        let r = verify_report(&env, &keys, &relaxed).expect("relaxed");
        assert_eq!(r.relaxed().count(), 4);
        assert!(r.verified_claims().is_none());
        // Relaxed is not "anything goes": a client value that does not match still fails.
        let mut wrong = policy(&[(Check::Ref, "refs/heads/*")]);
        wrong.accept_client_claims = true;
        assert!(matches!(
            verify(&env, &keys, &wrong),
            Err(ProvenanceError::ClaimMismatch {
                basis: Basis::ClientAsserted,
                ..
            })
        ));
        // Issuer, workflow and environment have no client counterpart: still missing.
        for (c, e) in [
            (Check::Issuer, "https://token.actions.githubusercontent.com"),
            (Check::Workflow, "**"),
            (Check::Environment, "production"),
        ] {
            let mut p = policy(&[(c, e)]);
            p.accept_client_claims = true;
            match verify(&env, &keys, &p) {
                Err(ProvenanceError::ClaimMissing {
                    check,
                    client_considered: false,
                    ..
                }) => assert_eq!(check, c),
                other => panic!("{c}: {other:?}"),
            }
        }
    }

    /// Verified claims win over client claims, even when relaxed; a claim missing from the
    /// verified set falls back only when relaxed.
    #[test]
    fn verified_claims_take_precedence_and_gaps_fall_back_only_when_relaxed() {
        let k = Keys::new();
        let mut rec = oidc_record();
        let v = rec.verified.as_mut().expect("verified");
        v.environment = None;
        v.git_ref = None;
        rec.client_claims.git_ref = Some("refs/tags/v9".into());
        rec.client_claims.source_uri = Some("git+https://github.com/evil/widget".into());
        let env = k.sign(&rec);
        let keys = k.public();
        let mut p = policy(&[(Check::SourceUri, "git+https://github.com/acme/widget")]);
        p.accept_client_claims = true;
        let r = verify_report(&env, &keys, &p).expect("verified source wins");
        assert_eq!(r.checks[0].basis, Basis::Verified);

        let refp = policy(&[(Check::Ref, "refs/tags/*")]);
        match verify(&env, &keys, &refp) {
            Err(
                e @ ProvenanceError::ClientAssertedOnly {
                    has_verified_claims: true,
                    ..
                },
            ) => assert!(
                e.to_string().contains("verifiedClaims.ref is absent"),
                "{e}"
            ),
            other => panic!("{other:?}"),
        }
        let mut relaxed = refp.clone();
        relaxed.accept_client_claims = true;
        let r = verify_report(&env, &keys, &relaxed).expect("relaxed ref");
        assert_eq!(r.checks[0].basis, Basis::ClientAsserted);
        assert_eq!(r.checks[0].found, "refs/tags/v9");

        match verify(&env, &keys, &policy(&[(Check::Environment, "production")])) {
            Err(
                e @ ProvenanceError::ClaimMissing {
                    has_verified_claims: true,
                    ..
                },
            ) => assert!(e.to_string().contains("environment"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn repository_of_a_source_uri() {
        assert_eq!(
            repository_of("git+https://GitHub.com/acme/widget.git/").as_deref(),
            Some("acme/widget")
        );
        assert_eq!(
            repository_of("https://gitlab.example/group/sub/proj").as_deref(),
            Some("group/sub/proj")
        );
        assert_eq!(repository_of("https://host.example"), None);
        assert_eq!(repository_of("not a uri"), None);
    }

    #[test]
    fn a_v1_statement_still_verifies_an_unknown_build_type_does_not() {
        let k = Keys::new();
        let mut stmt = crate::statement(&SigningRecord::example());
        stmt["predicate"]["buildDefinition"]["buildType"] = Value::from(BUILD_TYPE_V1);
        let signers: [&dyn Signer; 2] = [&k.ec, &k.pq];
        let env = crate::sign_statement(&stmt, &signers).expect("sign");
        verify(&env, &k.public(), &Policy::default()).expect("v1 verifies");
        stmt["predicate"]["buildDefinition"]["buildType"] =
            Value::from("https://example.com/other/v1");
        let env = crate::sign_statement(&stmt, &signers).expect("sign");
        assert!(matches!(
            verify(&env, &k.public(), &Policy::default()),
            Err(ProvenanceError::BuildType(t)) if t == "https://example.com/other/v1"
        ));
    }
}
