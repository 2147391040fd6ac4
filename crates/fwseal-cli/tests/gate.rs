//! The deployment gate of `fwseal verify` as a pipeline runs it: the real binary on a signed
//! image and a provenance envelope signed with appliance keys — one carrying verified (OIDC)
//! claims, one with client claims only — against claim flags and the policy files of
//! `formats/provenance.md`.

use fwseal_crypto::{soft::SoftKey, DigestAlg, SigAlg, Signer};
use fwseal_formats::{assemble, prepare, sign_prepared, Format, Mode, Request};
use fwseal_provenance::{sign_record, ClientClaims, SigningRecord, VerifiedClaims};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    fn text(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.out, self.err
        )
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

/// A signed image `fw.bin`, product and appliance keys on disk.
struct Gate {
    dir: tempfile::TempDir,
    appliance_ec: SoftKey,
    appliance_pq: SoftKey,
    image_sha256: String,
}

impl Gate {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let ec = SoftKey::generate(SigAlg::EcdsaP256Sha256).expect("ec");
        let pq = SoftKey::generate(SigAlg::MlDsa65).expect("pq");
        let appliance_ec = SoftKey::generate(SigAlg::EcdsaP256Sha256).expect("aec");
        let appliance_pq = SoftKey::generate(SigAlg::MlDsa65).expect("apq");
        let put = |n: &str, b: &[u8]| std::fs::write(dir.path().join(n), b).expect("write");
        put("ec.pem", ec.public_key().spki_pem().as_bytes());
        put("pq.pem", pq.public_key().spki_pem().as_bytes());
        put("aec.pem", appliance_ec.public_key().spki_pem().as_bytes());
        put("apq.pem", appliance_pq.public_key().spki_pem().as_bytes());
        let data = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/raw/sample.bin"),
        )
        .expect("fixture");
        let req = Request::hybrid(
            SigAlg::EcdsaP256Sha256,
            SigAlg::MlDsa65,
            Mode::Embedded,
            "widget",
        );
        let plan = prepare(Format::Raw, &data, &req).expect("prepare");
        let set = sign_prepared(
            plan.as_ref(),
            Some(&ec as &dyn Signer),
            Some(&pq as &dyn Signer),
            vec![],
        )
        .expect("sign");
        let signed = assemble(&data, &plan.embed(&set).expect("embed")).expect("assemble");
        put("fw.bin", &signed);
        Gate {
            image_sha256: hex::encode(DigestAlg::Sha256.hash(&signed)),
            dir,
            appliance_ec,
            appliance_pq,
        }
    }

    fn p(&self, n: &str) -> String {
        self.dir.path().join(n).display().to_string()
    }

    fn put(&self, n: &str, text: &str) -> String {
        std::fs::write(self.p(n), text).expect("write");
        self.p(n)
    }

    /// Write `fw.bin.intoto.jsonl` for a signing of product `product`, with verified claims or
    /// (None) as a static-token signing.
    fn provenance(&self, product: &str, verified: Option<VerifiedClaims>, client: ClientClaims) {
        let rec = SigningRecord {
            artifact_name: "fw.bin".into(),
            artifact_sha256: self.image_sha256.clone(),
            product: product.into(),
            client_claims: client,
            verified,
            ..SigningRecord::example()
        };
        let env = sign_record(&rec, &self.appliance_ec, &self.appliance_pq).expect("sign");
        std::fs::write(self.p("fw.bin.intoto.jsonl"), env.to_jsonl()).expect("write");
    }

    fn oidc(&self, product: &str) {
        let v = VerifiedClaims::example();
        let client = ClientClaims {
            source_uri: v.source_uri.clone(),
            commit: v.commit.clone(),
            ..Default::default()
        };
        self.provenance(product, Some(v), client);
    }

    fn static_token(&self, product: &str, source: &str) {
        let client = ClientClaims {
            source_uri: Some(source.into()),
            git_ref: Some("refs/tags/v1.2.0".into()),
            ..Default::default()
        };
        self.provenance(product, None, client);
    }

    /// `fwseal [--json] verify fw.bin -k … --provenance-key … EXTRA`.
    fn verify(&self, json: bool, extra: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fwseal"));
        if json {
            cmd.arg("--json");
        }
        cmd.arg("verify").arg(self.p("fw.bin"));
        for (flag, f) in [
            ("-k", "ec.pem"),
            ("-k", "pq.pem"),
            ("--provenance-key", "aec.pem"),
            ("--provenance-key", "apq.pem"),
        ] {
            cmd.arg(flag).arg(self.p(f));
        }
        let out = cmd.args(extra).output().expect("run fwseal");
        Run {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

const WORKFLOW: &str = "acme/widget/.github/workflows/release.yml@refs/tags/*";

#[test]
fn verified_claims_pass_the_gate_and_wrong_values_fail() {
    let g = Gate::new();
    g.oidc("widget");
    let good = [
        "--issuer",
        "https://token.actions.githubusercontent.com",
        "--repository",
        "acme/widget",
        "--source-uri",
        "https://github.com/acme/widget.git",
        "--ref",
        "refs/tags/v*",
        "--commit",
        "3F786850E387550FDAB836ED7E6DC881DE23001B",
        "--workflow",
        WORKFLOW,
        "--environment",
        "production",
        "--builder-id",
        "https://fwseal.example/appliance/1",
    ];
    let r = g.verify(false, &good);
    assert_eq!(r.code, 0, "{}", r.text());
    for c in [
        "issuer",
        "repository",
        "source-uri",
        "ref",
        "commit",
        "workflow",
        "environment",
    ] {
        assert!(
            r.out
                .lines()
                .any(|l| l.starts_with(&format!("OK check {c} ")) && l.ends_with("(verified)")),
            "{c}: {}",
            r.text()
        );
    }
    assert!(r.out.contains("OK check builder-id"), "{}", r.text());
    assert!(
        r.out.contains("OK provenance") && r.out.contains("verified claims from OIDC issuer"),
        "{}",
        r.text()
    );
    assert!(!r.err.contains("WARNING"), "{}", r.text());

    let j = g.verify(true, &good).json();
    assert_eq!(j["ok"], true);
    let p = &j["provenance"];
    assert_eq!(p["build_type"], fwseal_provenance::BUILD_TYPE);
    assert_eq!(p["verified_claims"]["repository"], "acme/widget");
    assert_eq!(p["accept_client_claims"], false);
    let checks = p["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 8, "{p}");
    assert!(checks[1..].iter().all(|c| c["basis"] == "verified"), "{p}");
    assert_eq!(checks[4]["check"], "ref");
    assert_eq!(checks[4]["found"], "refs/tags/v1.2.0");
    assert_eq!(checks[4]["expected"], "refs/tags/v*");

    // Each wrong value alone fails: exit 1, a message naming the check, found and expected.
    let wrong: [(&str, &str, &str); 8] = [
        (
            "--issuer",
            "https://gitlab.com",
            "https://token.actions.githubusercontent.com",
        ),
        ("--repository", "acme/widget-fork", "acme/widget"),
        (
            "--source-uri",
            "git+https://github.com/evil/widget",
            "git+https://github.com/acme/widget",
        ),
        ("--ref", "refs/heads/*", "refs/tags/v1.2.0"),
        ("--commit", "00", "3f786850e387550fdab836ed7e6dc881de23001b"),
        (
            "--workflow",
            "acme/widget/.github/workflows/release.yml@refs/heads/*",
            "acme/widget/.github/workflows/release.yml@refs/tags/v1.2.0",
        ),
        ("--environment", "staging", "production"),
        (
            "--builder-id",
            "https://other.example/appliance",
            "https://fwseal.example/appliance/1",
        ),
    ];
    for (flag, value, found) in wrong {
        let check = &flag[2..];
        let r = g.verify(false, &[flag, value]);
        assert_eq!(r.code, 1, "{flag}: {}", r.text());
        assert!(
            r.err.contains("verification FAILED")
                && r.err.contains(value)
                && r.err.contains(found)
                && (check == "builder-id" || r.err.contains(&format!("check {check}:"))),
            "{flag}: {}",
            r.text()
        );
        assert!(!r.out.contains("verified ("), "{flag}: {}", r.text());
        let j = g.verify(true, &[flag, value]).json();
        assert_eq!(j["ok"], false);
        assert_eq!(j["failed_check"], check, "{j}");
    }
}

#[test]
fn client_only_provenance_fails_repository_and_passes_when_accepted() {
    let g = Gate::new();
    g.static_token("widget", "git+https://github.com/acme/widget");
    let r = g.verify(false, &["--repository", "acme/widget"]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(
        r.err.contains("check repository")
            && r.err.contains("only client-asserted")
            && r.err.contains("not OIDC-authenticated"),
        "{}",
        r.text()
    );
    // The behaviour change: --source-uri checks the verified source now.
    let r = g.verify(
        false,
        &["--source-uri", "git+https://github.com/acme/widget"],
    );
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.err.contains("only client-asserted"), "{}", r.text());

    let relaxed = [
        "--repository",
        "acme/widget",
        "--ref",
        "refs/tags/v*",
        "--accept-client-claims",
    ];
    let r = g.verify(false, &relaxed);
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(
        r.err.matches("WARNING").count(),
        2,
        "one warning per relaxed check: {}",
        r.text()
    );
    assert!(
        r.err.contains("CLIENT-ASSERTED") && r.err.contains("--accept-client-claims"),
        "{}",
        r.text()
    );
    assert!(
        r.out.contains("RELAXED check repository") && r.out.contains("RELAXED check ref"),
        "{}",
        r.text()
    );
    let j = g.verify(true, &relaxed).json();
    assert_eq!(j["provenance"]["verified_claims"], Value::Null);
    assert_eq!(j["provenance"]["accept_client_claims"], true);
    assert!(j["provenance"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .all(|c| c["basis"] == "client-asserted"));

    // Relaxed is not "anything goes": a different client value still fails, and checks with
    // no client counterpart still fail.
    for extra in [
        ["--repository", "acme/other"],
        ["--environment", "production"],
    ] {
        let mut args = extra.to_vec();
        args.push("--accept-client-claims");
        let r = g.verify(false, &args);
        assert_eq!(r.code, 1, "{extra:?}: {}", r.text());
    }
    // Without a provenance next to the image, --accept-client-claims alone is a gate option.
    std::fs::remove_file(g.p("fw.bin.intoto.jsonl")).expect("rm");
    let r = g.verify(false, &["--accept-client-claims"]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.err.contains("provenance not checked"), "{}", r.text());
}

/// The policy block after `<!-- check-policy: NAME -->` in formats/provenance.md.
fn doc_policy(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../formats/provenance.md");
    let d = std::fs::read_to_string(p).expect("doc");
    let marker = format!("<!-- check-policy: {name} -->");
    let rest = &d[d.find(&marker).expect("marker") + marker.len()..];
    let open = rest.find("```").expect("fence");
    let start = open + rest[open..].find('\n').expect("fence line") + 1;
    rest[start..start + rest[start..].find("```").expect("end")].to_string()
}

#[test]
fn policy_files_of_the_document_gate_per_product() {
    let g = Gate::new();
    let toml = g.put("gate.toml", &doc_policy("toml"));
    let json = g.put("gate.json", &doc_policy("json"));
    for policy in [&toml, &json] {
        g.oidc("widget");
        let r = g.verify(false, &["--policy", policy]);
        assert_eq!(r.code, 0, "{policy}: {}", r.text());
        assert_eq!(r.out.matches("OK check ").count(), 7, "{}", r.text());
        let j = g.verify(true, &["--policy", policy]).json();
        assert_eq!(j["provenance"]["policy_file"], policy.as_str());

        // Flags and file: both must hold.
        let r = g.verify(false, &["--policy", policy, "--ref", "refs/tags/v1.2.*"]);
        assert_eq!(r.code, 0, "{}", r.text());
        let r = g.verify(false, &["--policy", policy, "--ref", "refs/heads/*"]);
        assert_eq!(r.code, 1, "a flag tightens the file: {}", r.text());

        // A product the file does not name fails.
        g.oidc("gadget");
        let r = g.verify(false, &["--policy", policy]);
        assert_eq!(r.code, 1, "{}", r.text());
        assert!(
            r.err.contains("no section for product \"gadget\""),
            "{}",
            r.text()
        );
        assert_eq!(
            g.verify(true, &["--policy", policy]).json()["failed_check"],
            "policy"
        );

        // The widget section requires verified claims: a static-token provenance fails it
        // (at its first check, the issuer, which has no client-asserted counterpart).
        g.static_token("widget", "git+https://github.com/acme/widget");
        let r = g.verify(false, &["--policy", policy]);
        assert_eq!(r.code, 1, "{}", r.text());
        assert!(
            r.err.contains("check issuer") && r.err.contains("not OIDC-authenticated"),
            "{}",
            r.text()
        );

        // The legacy section accepts client claims — with a warning naming the file.
        g.static_token("legacy", "git+https://git.example/legacy");
        let r = g.verify(false, &["--policy", policy]);
        assert_eq!(r.code, 0, "{}", r.text());
        assert!(
            r.err.contains("WARNING") && r.err.contains("accept_client_claims in [product.legacy]"),
            "{}",
            r.text()
        );
        g.static_token("legacy", "git+https://git.example/other");
        assert_eq!(g.verify(false, &["--policy", policy]).code, 1);
    }

    // A malformed policy file is bad input (exit 4), naming the file and the problem.
    let bad = g.put(
        "bad.toml",
        "[product.widget]\nrepository = \"acme/widget\"\nbranch = \"main\"\n",
    );
    let r = g.verify(false, &["--policy", &bad]);
    assert_eq!(r.code, 4, "{}", r.text());
    assert!(
        r.err.contains("bad.toml") && r.err.contains("branch"),
        "{}",
        r.text()
    );
    let r = g.verify(false, &["--policy", &g.p("missing.toml")]);
    assert_eq!(r.code, 4, "{}", r.text());
}
