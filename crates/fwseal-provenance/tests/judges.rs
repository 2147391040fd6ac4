//! Provenance against its outside judges (securesystemslib DSSE, pyca ML-DSA) and the policy
//! checks of our own verifier.

use fwseal_crypto::{soft::SoftKey, SigAlg, Signer};
use fwseal_provenance::{
    sign_record, verify, Check, Envelope, Policy, ProvenanceError, SigningRecord, VerifiedClaims,
};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(p) = std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
    {
        return Some(p);
    }
    assert!(
        std::env::var("FWSEAL_REQUIRE_JUDGES").as_deref() != Ok("1"),
        "judge {name} is not installed"
    );
    eprintln!("SKIP: {name} not installed");
    None
}

struct Keys {
    ec: SoftKey,
    pq: SoftKey,
}

fn keys() -> Keys {
    Keys {
        ec: SoftKey::generate(SigAlg::EcdsaP256Sha256).expect("ec"),
        pq: SoftKey::generate(SigAlg::MlDsa65).expect("pq"),
    }
}

fn trusted(k: &Keys) -> Vec<fwseal_crypto::PublicKey> {
    vec![k.ec.public_key().clone(), k.pq.public_key().clone()]
}

/// Both the static-token and the OIDC-authenticated (verified claims) v2 statement verify with
/// the outside judges, and the judge's own reading of `verifiedClaims` (written from
/// `formats/provenance.md`, not from our code) agrees with what we signed.
#[test]
fn securesystemslib_and_pyca_accept_what_we_sign() {
    let Some(py) = tool("python3") else { return };
    let k = keys();
    let dir = tempfile::tempdir().expect("tmp");
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("ec.pem"), k.ec.public_key().spki_pem()).expect("w");
    std::fs::write(p("pq.pem"), k.pq.public_key().spki_pem()).expect("w");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/verifiers/provenance.py");
    let run = |envf: &Path, subject: &str, extra: &[&str]| {
        let out = Command::new(&py)
            .arg(&script)
            .arg("--envelope")
            .arg(envf)
            .arg("--ec")
            .arg(p("ec.pem"))
            .arg("--pq")
            .arg(p("pq.pem"))
            .args(["--subject", subject])
            .args(extra)
            .output()
            .expect("run");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let rec = SigningRecord::example();
    let oidc = SigningRecord {
        verified: Some(VerifiedClaims::example()),
        ..SigningRecord::example()
    };
    let env = sign_record(&rec, &k.ec, &k.pq).expect("sign");
    std::fs::write(p("a.intoto.jsonl"), env.to_jsonl()).expect("w");
    let (ok, text) = run(&p("a.intoto.jsonl"), &rec.artifact_sha256, &[]);
    assert!(
        ok && text.contains("OK") && text.contains(fwseal_provenance::BUILD_TYPE),
        "{text}"
    );
    // The judge's claim check refuses a static-token provenance: no verified claims.
    let (ok, text) = run(
        &p("a.intoto.jsonl"),
        &rec.artifact_sha256,
        &["--verified", "repository=acme/widget"],
    );
    assert!(!ok && text.contains("no verifiedClaims"), "{text}");

    let env_oidc = sign_record(&oidc, &k.ec, &k.pq).expect("sign");
    std::fs::write(p("o.intoto.jsonl"), env_oidc.to_jsonl()).expect("w");
    let v = VerifiedClaims::example();
    let want = [
        format!("repository={}", v.repository.as_deref().unwrap_or("")),
        format!("ref={}", v.git_ref.as_deref().unwrap_or("")),
        format!("issuer={}", v.issuer),
        format!("environment={}", v.environment.as_deref().unwrap_or("")),
    ];
    let mut args = vec!["--source-commit", v.commit.as_deref().unwrap_or("")];
    for w in &want {
        args.extend(["--verified", w.as_str()]);
    }
    let (ok, text) = run(&p("o.intoto.jsonl"), &oidc.artifact_sha256, &args);
    assert!(ok && text.contains("OK"), "{text}");
    let (ok, text) = run(
        &p("o.intoto.jsonl"),
        &oidc.artifact_sha256,
        &["--verified", "repository=acme/other"],
    );
    assert!(!ok && text.contains("acme/other"), "{text}");

    // A payload changed after signing is refused by securesystemslib.
    let mut bad = env_oidc.clone();
    let mut stmt: serde_json::Value =
        serde_json::from_slice(&env_oidc.payload_bytes().expect("p")).expect("j");
    stmt["predicate"]["buildDefinition"]["externalParameters"]["verifiedClaims"]["repository"] =
        serde_json::Value::String("evil/widget".into());
    use base64::Engine as _;
    bad.payload =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&stmt).expect("j"));
    std::fs::write(p("bad.intoto.jsonl"), bad.to_jsonl()).expect("w");
    let (ok, text) = run(&p("bad.intoto.jsonl"), &oidc.artifact_sha256, &[]);
    assert!(!ok && text.contains("securesystemslib"), "{text}");
}

#[test]
fn policy_checks_each_fail_with_their_own_error() {
    let k = keys();
    let rec = SigningRecord::example();
    let env = sign_record(&rec, &k.ec, &k.pq).expect("sign");
    let ok = Policy {
        subject_sha256: Some(rec.artifact_sha256.clone()),
        builder_id: Some(rec.builder_id.clone()),
        // A static-token signing: the source is only client-asserted, so the policy must
        // accept client claims for a source check to pass.
        accept_client_claims: true,
        ..Policy::default()
    }
    .require(
        Check::SourceUri,
        rec.client_claims
            .source_uri
            .clone()
            .expect("example source"),
    );
    let stmt = verify(&env, &trusted(&k), &ok).expect("verifies");
    assert_eq!(
        stmt["predicate"]["buildDefinition"]["internalParameters"]["product"],
        "widget"
    );
    assert_eq!(
        stmt["predicate"]["runDetails"]["metadata"]["invocationId"],
        rec.invocation_id
    );
    assert_eq!(
        stmt["predicate"]["buildDefinition"]["externalParameters"]["clientClaims"]["trust"],
        fwseal_provenance::CLIENT_TRUST
    );
    assert!(
        stmt["predicate"]["buildDefinition"]["externalParameters"]
            .get("verifiedClaims")
            .is_none(),
        "a static-token signing has no verified claims"
    );
    // Without accepting client claims the same source check fails: only client-asserted.
    let strict = Policy {
        accept_client_claims: false,
        ..ok.clone()
    };
    assert!(matches!(
        verify(&env, &trusted(&k), &strict),
        Err(ProvenanceError::ClientAssertedOnly {
            check: Check::SourceUri,
            ..
        })
    ));

    let other_subject = Policy {
        subject_sha256: Some("00".repeat(32)),
        ..ok.clone()
    };
    assert!(matches!(
        verify(&env, &trusted(&k), &other_subject),
        Err(ProvenanceError::Subject(_))
    ));
    let other_builder = Policy {
        builder_id: Some("https://elsewhere".into()),
        ..ok.clone()
    };
    assert!(matches!(
        verify(&env, &trusted(&k), &other_builder),
        Err(ProvenanceError::Builder { .. })
    ));
    let other_source = ok
        .clone()
        .require(Check::SourceUri, "git+https://evil.example/widget");
    assert!(matches!(
        verify(&env, &trusted(&k), &other_source),
        Err(ProvenanceError::ClaimMismatch {
            check: Check::SourceUri,
            ..
        })
    ));

    // Only the classical key trusted: the PQ signature's key is unknown → refused.
    assert!(matches!(
        verify(&env, &[k.ec.public_key().clone()], &ok),
        Err(ProvenanceError::Signature(_))
    ));
    // A flipped signature byte.
    let mut bad = env.clone();
    bad.signatures[1].sig = bad.signatures[0].sig.clone();
    assert!(matches!(
        verify(&bad, &trusted(&k), &ok),
        Err(ProvenanceError::Signature(_))
    ));
    // Classical-only envelope fails a hybrid policy, passes a classical-only one.
    let classical = fwseal_provenance::sign_statement(
        &fwseal_provenance::statement(&rec),
        &[&k.ec as &dyn Signer],
    )
    .expect("sign");
    assert!(matches!(
        verify(&classical, &trusted(&k), &ok),
        Err(ProvenanceError::Signature(_))
    ));
    verify(
        &classical,
        &trusted(&k),
        &Policy {
            require_pq: false,
            ..ok.clone()
        },
    )
    .expect("classical-only policy");
    // Wrong payload type.
    let mut wrong = env.clone();
    wrong.payload_type = "text/plain".into();
    assert!(matches!(
        verify(&wrong, &trusted(&k), &ok),
        Err(ProvenanceError::PayloadType(_))
    ));
    // Round trip through JSON.
    let back = Envelope::from_json(env.to_jsonl().as_bytes()).expect("parse");
    assert_eq!(back, env);
}
