//! Router tests: `app(state)` driven with `tower::ServiceExt::oneshot`.
//!
//! Keys here are software keys (`SoftKeysForTests`); these tests check the HTTP behaviour,
//! audit trail and artifact store, not HSM interoperability.
#![allow(clippy::unwrap_used)]

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use fwseal_crypto::soft::SoftKey;
use fwseal_crypto::{PublicKey, SigAlg, Signer};
use fwseal_formats::Format;
use fwseal_server::config::Config;
use fwseal_server::keys::{ApplianceSigners, KeyError, KeyService, ProductSigners};
use fwseal_server::{app, AppState};
use fwseal_store::{AuditLog, Decision, SqliteStore, TrustedKeys};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt;

/// Test-only key service: one software P-256 + ML-DSA-65 pair for every product, another for
/// the appliance. Not an HSM.
struct SoftKeysForTests {
    classical: Arc<SoftKey>,
    pq: Arc<SoftKey>,
    app_classical: Arc<SoftKey>,
    app_pq: Arc<SoftKey>,
}

impl SoftKeysForTests {
    fn new() -> Self {
        SoftKeysForTests {
            classical: Arc::new(SoftKey::generate(SigAlg::EcdsaP256Sha256).unwrap()),
            pq: Arc::new(SoftKey::generate(SigAlg::MlDsa65).unwrap()),
            app_classical: Arc::new(SoftKey::generate(SigAlg::EcdsaP256Sha256).unwrap()),
            app_pq: Arc::new(SoftKey::generate(SigAlg::MlDsa65).unwrap()),
        }
    }

    fn appliance_public(&self) -> Vec<PublicKey> {
        vec![
            self.app_classical.public_key().clone(),
            self.app_pq.public_key().clone(),
        ]
    }
}

impl KeyService for SoftKeysForTests {
    fn product_signers(
        &self,
        product: &str,
        classical: Option<SigAlg>,
        pq: Option<SigAlg>,
    ) -> Result<ProductSigners, KeyError> {
        let pick =
            |want: Option<SigAlg>, k: &Arc<SoftKey>| -> Result<Option<Arc<dyn Signer>>, KeyError> {
                match want {
                    None => Ok(None),
                    Some(a) if a == k.alg() => Ok(Some(k.clone() as Arc<dyn Signer>)),
                    Some(a) => Err(KeyError::Missing {
                        product: product.to_string(),
                        alg: a,
                    }),
                }
            };
        Ok(ProductSigners {
            classical: pick(classical, &self.classical)?,
            pq: pick(pq, &self.pq)?,
            certificate: None,
        })
    }

    fn appliance_signers(&self) -> Result<ApplianceSigners, KeyError> {
        Ok(ApplianceSigners {
            classical: self.app_classical.clone(),
            pq: self.app_pq.clone(),
        })
    }

    fn health(&self) -> Result<(), KeyError> {
        Ok(())
    }
}

const ALICE: &str = "alice-token";
const BOB: &str = "bob-token";
const PROM: &str = "prom-token";
const LIMIT: u64 = 64 * 1024;

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

struct Harness {
    _dir: tempfile::TempDir,
    state_dir: std::path::PathBuf,
    keys: Arc<SoftKeysForTests>,
    store: Arc<SqliteStore>,
    state: Arc<AppState>,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let toml = format!(
        r#"
listen = "127.0.0.1:0"
state_dir = "{state}"
identity = "https://fwseal.test/appliance"
max_upload_bytes = {LIMIT}
[hsm]
pin_env = "FWSEAL_TEST_PIN"
[[product]]
name = "widget"
[[product]]
name = "gadget"
[[client]]
name = "alice"
token_sha256 = "{alice}"
roles = {{ widget = ["submitter", "factory"] }}
[[client]]
name = "bob"
token_sha256 = "{bob}"
roles = {{ gadget = ["submitter"] }}
[[client]]
name = "prom"
token_sha256 = "{prom}"
roles = {{ "*" = ["metrics"] }}
"#,
        state = state_dir.display(),
        alice = sha_hex(ALICE.as_bytes()),
        bob = sha_hex(BOB.as_bytes()),
        prom = sha_hex(PROM.as_bytes()),
    );
    let cfg = Config::parse(&toml, Path::new("test.toml")).unwrap();
    let keys = Arc::new(SoftKeysForTests::new());
    let store = Arc::new(SqliteStore::open(state_dir.join("fwseal.db")).unwrap());
    let state = Arc::new(AppState::new(cfg, keys.clone(), store.clone()).unwrap());
    Harness {
        _dir: dir,
        state_dir,
        keys,
        store,
        state,
    }
}

async fn call(
    h: &Harness,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = app(h.state.clone())
        .oneshot(b.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, bytes.to_vec())
}

fn json(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(b)))
}

fn blob_count(state_dir: &Path) -> usize {
    fn walk(p: &Path) -> usize {
        let Ok(rd) = std::fs::read_dir(p) else {
            return 0;
        };
        rd.map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p)
            } else {
                1
            }
        })
        .sum()
    }
    walk(&state_dir.join("artifacts").join("sha256"))
}

fn audit(h: &Harness) -> Vec<fwseal_store::AuditRecord> {
    h.store.records(1, 10_000).unwrap()
}

fn verify_chain(h: &Harness) {
    // Anchor the log with a checkpoint signed by the appliance keys, then verify offline.
    let k = h.keys.appliance_signers().unwrap();
    h.store
        .checkpoint(k.classical.as_ref(), k.pq.as_ref())
        .unwrap();
    let trusted = TrustedKeys::new(h.keys.appliance_public());
    let report = fwseal_store::verify_db(h.state_dir.join("fwseal.db"), &trusted).unwrap();
    assert!(report.is_ok(), "{report:?}");
}

fn image(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + 7) as u8).collect()
}

#[tokio::test]
async fn sign_raw_embedded_then_fetch_and_verify() {
    let h = harness();
    let input = image(5000);
    let (st, body) = call(
        &h,
        "POST",
        "/v1/products/widget/sign?name=fw.bin&mode=embedded&source_uri=https://git.test/fw",
        Some(ALICE),
        input.clone(),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let r = json(&body);
    assert_eq!(r["format"], "raw");
    assert_eq!(r["input_sha256"], sha_hex(&input));
    let id = r["artifact_id"].as_str().unwrap().to_string();
    let out_sha = r["output_sha256"].as_str().unwrap().to_string();
    assert_eq!(r["signatures"].as_array().unwrap().len(), 2);

    // The audit record of the signing exists (it was committed before the response).
    let recs = audit(&h);
    let sign = recs
        .iter()
        .find(|r| r.entry.action.as_str() == "sign" && r.entry.decision == Decision::Allow)
        .expect("sign audit record");
    assert_eq!(hex::encode(sign.entry.output_sha256.unwrap()), out_sha);
    assert_eq!(
        hex::encode(sign.entry.input_sha256.unwrap()),
        sha_hex(&input)
    );
    assert_eq!(sign.entry.client, "alice");

    // Signed image: content matches the advertised digest and verifies with the soft keys.
    let (st, img) = call(
        &h,
        "GET",
        &format!("/v1/artifacts/{id}/image"),
        Some(ALICE),
        vec![],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(sha_hex(&img), out_sha);
    assert_ne!(img, input);
    let ex = fwseal_formats::extract(Format::Raw, &img).unwrap();
    assert_eq!(ex.signatures.len(), 2);
    for s in &ex.signatures {
        let k: &dyn Signer = if s.alg == SigAlg::MlDsa65 {
            h.keys.pq.as_ref()
        } else {
            h.keys.classical.as_ref()
        };
        k.public_key().verify_bytes(&s.message, &s.bytes).unwrap();
    }
    // A tampered image does not verify.
    let mut bad = img.clone();
    bad[10] ^= 1;
    let ok = fwseal_formats::extract(Format::Raw, &bad).map(|ex| {
        ex.signatures.iter().all(|s| {
            let k: &dyn Signer = if s.alg == SigAlg::MlDsa65 {
                h.keys.pq.as_ref()
            } else {
                h.keys.classical.as_ref()
            };
            k.public_key().verify_bytes(&s.message, &s.bytes).is_ok()
        })
    });
    assert!(!matches!(ok, Ok(true)), "tampered image still verifies");

    // Detached document.
    let (st, doc) = call(
        &h,
        "GET",
        &format!("/v1/artifacts/{id}/detached"),
        Some(ALICE),
        vec![],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let _ = json(&doc);

    // Provenance: verifies with the appliance keys, subject = the output digest.
    let (st, prov) = call(
        &h,
        "GET",
        &format!("/v1/artifacts/{id}/provenance"),
        Some(ALICE),
        vec![],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let env = fwseal_provenance::Envelope::from_json(prov.trim_ascii()).unwrap();
    // A static-token request: the source is client-asserted, so the check must accept that.
    let policy = fwseal_provenance::Policy {
        subject_sha256: Some(out_sha.clone()),
        builder_id: Some("https://fwseal.test/appliance".into()),
        accept_client_claims: true,
        ..Default::default()
    }
    .require(fwseal_provenance::Check::SourceUri, "https://git.test/fw");
    fwseal_provenance::verify(&env, &h.keys.appliance_public(), &policy).unwrap();
    let wrong = fwseal_provenance::Policy {
        subject_sha256: Some(sha_hex(&input)),
        ..Default::default()
    };
    assert!(fwseal_provenance::verify(&env, &h.keys.appliance_public(), &wrong).is_err());

    // Listing finds it; fetches were audited.
    let (st, list) = call(
        &h,
        "GET",
        "/v1/products/widget/artifacts",
        Some(ALICE),
        vec![],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(json(&list)["artifacts"][0]["id"], id.as_str());
    let fetches = audit(&h)
        .iter()
        .filter(|r| r.entry.action.as_str() == "fetch")
        .count();
    assert_eq!(fetches, 3);
    verify_chain(&h);
}

#[tokio::test]
async fn unknown_and_forbidden_products_are_indistinguishable() {
    let h = harness();
    let (s1, b1) = call(
        &h,
        "POST",
        "/v1/products/nosuch/sign",
        Some(ALICE),
        image(100),
    )
    .await;
    // alice has no role on gadget (it exists).
    let (s2, b2) = call(
        &h,
        "POST",
        "/v1/products/gadget/sign",
        Some(ALICE),
        image(100),
    )
    .await;
    assert_eq!(s1, StatusCode::NOT_FOUND);
    assert_eq!(s2, StatusCode::NOT_FOUND);
    assert_eq!(b1, b2, "404 bodies differ: enumeration possible");
    assert_eq!(json(&b1)["code"], "no-such-product");
    let denied: Vec<_> = audit(&h)
        .into_iter()
        .filter(|r| r.entry.decision == Decision::Deny)
        .collect();
    assert_eq!(denied.len(), 2);
    assert_eq!(denied[0].entry.product.as_deref(), Some("nosuch"));
    assert_eq!(denied[1].entry.product.as_deref(), Some("gadget"));
    assert!(denied.iter().all(|r| r.entry.client == "alice"));
    assert_eq!(blob_count(&h.state_dir), 0);
    verify_chain(&h);
}

#[tokio::test]
async fn missing_or_bad_token_is_401_and_audited() {
    let h = harness();
    let (s, b) = call(&h, "POST", "/v1/products/widget/sign", None, image(100)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(json(&b)["code"], "unauthenticated");
    let (s, _) = call(
        &h,
        "POST",
        "/v1/products/widget/sign",
        Some("wrong"),
        image(100),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The first unauthenticated request of an interval is recorded in full; the others are
    // counted into the interval's summary, written when it ends (here: forced, as at shutdown).
    let recs = audit(&h);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].entry.product.as_deref(), Some("widget"));
    h.state.flush_denials(true);
    let recs = audit(&h);
    assert_eq!(recs.len(), 2);
    assert!(recs
        .iter()
        .all(|r| r.entry.decision == Decision::Deny && r.entry.client == "anonymous"));
    let summary: serde_json::Value =
        serde_json::from_str(recs[1].entry.extra.as_deref().unwrap()).unwrap();
    assert_eq!(summary["anonymous_denials"]["count"], 1);
    assert_eq!(blob_count(&h.state_dir), 0);
    verify_chain(&h);
}

#[tokio::test]
async fn oversized_upload_is_413_and_stores_nothing() {
    let h = harness();
    let (s, b) = call(
        &h,
        "POST",
        "/v1/products/widget/sign",
        Some(ALICE),
        image(LIMIT as usize + 1),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        String::from_utf8_lossy(&b)
    );
    assert_eq!(json(&b)["code"], "too-large");
    assert_eq!(blob_count(&h.state_dir), 0);
    // The spool is cleaned up as well.
    assert_eq!(
        std::fs::read_dir(h.state_dir.join("spool"))
            .unwrap()
            .count(),
        0
    );
    let recs = audit(&h);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].entry.decision, Decision::Deny);
    assert_eq!(recs[0].entry.product.as_deref(), Some("widget"));
    // Exactly at the limit is accepted.
    let (s, _) = call(
        &h,
        "POST",
        "/v1/products/widget/sign",
        Some(ALICE),
        image(LIMIT as usize),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    verify_chain(&h);
}

#[tokio::test]
async fn malformed_images_are_422_with_location_and_audited() {
    let h = harness();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mcuboot");
    let mut cases: Vec<(String, Vec<u8>, &str)> = vec![];
    let mut android = b"ANDROID!".to_vec();
    android.extend(image(2000));
    cases.push(("boot.img".into(), android, ""));
    // Offsets as documented in fixtures/mcuboot/README.md.
    for (f, at) in [
        ("bad-tlv-magic.img", "offset 1032 (0x408)"),
        ("bad-truncated.img", "offset 932 (0x3a4)"),
        ("bad-tlv-len.img", "offset 1038 (0x40e)"),
    ] {
        cases.push((f.into(), std::fs::read(fixtures.join(f)).unwrap(), at));
    }
    for (name, data, at) in &cases {
        let (s, b) = call(
            &h,
            "POST",
            &format!("/v1/products/widget/sign?name={name}"),
            Some(ALICE),
            data.clone(),
        )
        .await;
        assert_eq!(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            String::from_utf8_lossy(&b)
        );
        let p = json(&b);
        let detail = p["detail"].as_str().unwrap();
        eprintln!("{name}: {detail}");
        if name == "boot.img" {
            // Recognised but not a supported flavour: a typed refusal naming the magic.
            assert_eq!(p["code"], "unsupported");
            assert!(detail.contains("ANDROID!"), "{detail}");
            continue;
        }
        assert_eq!(p["code"], "malformed-image");
        assert!(detail.contains(at), "{name}: detail lacks {at:?}: {detail}");
    }
    let denied: Vec<_> = audit(&h)
        .into_iter()
        .filter(|r| r.entry.decision == Decision::Deny)
        .collect();
    assert_eq!(denied.len(), cases.len());
    assert!(denied.iter().all(|r| r.entry.reason.is_some()));
    assert_eq!(blob_count(&h.state_dir), 0);
    verify_chain(&h);
}

#[tokio::test]
async fn sign_raw_detached_document_verifies_over_the_unchanged_input() {
    let h = harness();
    let input = image(3000);
    let (st, body) = call(
        &h,
        "POST",
        "/v1/products/widget/sign?name=fw.bin&mode=detached",
        Some(ALICE),
        input.clone(),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let r = json(&body);
    let id = r["artifact_id"].as_str().unwrap().to_string();
    // Detached mode: the image artifact is the input, unchanged.
    assert_eq!(r["output_sha256"], sha_hex(&input));
    let (st, img) = call(
        &h,
        "GET",
        &format!("/v1/artifacts/{id}/image"),
        Some(ALICE),
        vec![],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(img, input);
    let (st, doc) = call(
        &h,
        "GET",
        &format!("/v1/artifacts/{id}/detached"),
        Some(ALICE),
        vec![],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let doc = fwseal_formats::detached::DetachedDoc::from_json(&doc).unwrap();
    assert_eq!(doc.format, Format::Raw);
    assert_eq!(doc.signatures.len(), 2);
    // Recompute the digests ourselves (raw: SHA-256 / SHA-512 of the whole file; ML-DSA-65
    // signs over SHA-512) and verify each signature against them, not against the document.
    let digests = fwseal_crypto::Digests(vec![
        (
            fwseal_crypto::DigestAlg::Sha256,
            Sha256::digest(&input).to_vec(),
        ),
        (
            fwseal_crypto::DigestAlg::Sha512,
            sha2::Sha512::digest(&input).to_vec(),
        ),
    ]);
    for s in &doc.signatures {
        let k: &dyn Signer = if s.alg == SigAlg::MlDsa65 {
            h.keys.pq.as_ref()
        } else {
            h.keys.classical.as_ref()
        };
        let m = fwseal_formats::detached::message(Format::Raw, s.alg, &digests).unwrap();
        k.public_key().verify(&m, s).unwrap();
    }
    verify_chain(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_on_a_real_listener_and_shuts_down() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = harness();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(fwseal_server::run(listener, h.state.clone(), async {
        let _ = rx.await;
    }));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("ok\n"), "{resp}");
    tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("server did not shut down")
        .unwrap()
        .unwrap();
}

/// A digest-only request for one raw image, built with the format engine as the CLI does.
fn digest_request(
    params: &serde_json::Value,
    data: &[u8],
) -> fwseal_api::digest::DigestSignRequest {
    use fwseal_api::digest::*;
    let p: SignParams = serde_json::from_value(params.clone()).unwrap();
    let plan = fwseal_formats::prepare(
        Format::Raw,
        data,
        &p.request(fwseal_formats::Mode::Embedded),
    )
    .unwrap();
    let (da, dv) = plan.digest();
    let pq = p.pq.unwrap();
    let c = p.classical.unwrap();
    DigestSignRequest {
        items: vec![DigestItem {
            name: "fw.bin".into(),
            format: Format::Raw,
            mode: fwseal_formats::Mode::Embedded,
            input_sha256: sha_hex(data),
            digest: WireDigest {
                alg: da,
                value: hex::encode(dv),
            },
            version: None,
            sign: vec![
                WireMessage::new(pq, &plan.pq_message(pq).unwrap()),
                WireMessage::new(c, &plan.classical_message(c, None).unwrap()),
            ],
            carried: vec![],
        }],
        claims: BuildClaims::default(),
    }
}

#[tokio::test]
async fn sign_digest_signs_messages_audits_hash_locally_and_stores_nothing() {
    let h = harness();
    let (s, b) = call(
        &h,
        "GET",
        "/v1/products/widget/sign-params?format=raw",
        Some(ALICE),
        vec![],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let params = json(&b);
    assert_eq!(params["options"]["product"], "widget");
    let data = image(5000);
    let req = digest_request(&params, &data);
    let before = blob_count(&h.state_dir);
    let (s, b) = call(
        &h,
        "POST",
        "/v1/products/widget/sign-digest",
        Some(ALICE),
        serde_json::to_vec(&req).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let resp: fwseal_api::digest::DigestSignResponse = serde_json::from_slice(&b).unwrap();
    let item = &resp.items[0];
    assert!(item.complete);
    // Each signature verifies over the message that was sent.
    for (m, sig) in req.items[0].sign.iter().zip(&item.signatures) {
        let k: &dyn Signer = if m.alg == SigAlg::MlDsa65 {
            h.keys.pq.as_ref()
        } else {
            h.keys.classical.as_ref()
        };
        k.public_key().verify(&m.decode().unwrap(), sig).unwrap();
    }
    // Provenance: hash-locally, listing the signatures.
    let env = fwseal_provenance::Envelope::from_json(item.provenance.as_ref().unwrap().as_bytes())
        .unwrap();
    let stmt = fwseal_provenance::verify(
        &env,
        &h.keys.appliance_public(),
        &fwseal_provenance::Policy::default(),
    )
    .unwrap();
    let ip = &stmt["predicate"]["buildDefinition"]["internalParameters"];
    assert_eq!(ip["hashLocally"], true);
    assert_eq!(ip["signatureSha256"].as_array().unwrap().len(), 2);
    assert_eq!(
        blob_count(&h.state_dir),
        before,
        "hash-locally stored a blob"
    );
    let last = audit(&h).pop().unwrap();
    assert_eq!(last.entry.decision, Decision::Allow);
    assert!(
        last.entry.input_sha256.is_none(),
        "the appliance saw no input"
    );
    let extra: serde_json::Value =
        serde_json::from_str(last.entry.extra.as_deref().unwrap()).unwrap();
    assert_eq!(extra["hash_locally"], true);
    assert_eq!(extra["claimed_input_sha256"], sha_hex(&data));
    verify_chain(&h);
}

#[tokio::test]
async fn sign_digest_refuses_foreign_carried_signatures_and_other_algorithms() {
    let h = harness();
    let (_, b) = call(
        &h,
        "GET",
        "/v1/products/widget/sign-params?format=raw",
        Some(ALICE),
        vec![],
    )
    .await;
    let params = json(&b);
    let data = image(3000);
    let denies = |h: &Harness| {
        audit(h)
            .iter()
            .filter(|r| r.entry.decision == Decision::Deny)
            .count()
    };
    let post = |req: fwseal_api::digest::DigestSignRequest, token: &'static str| {
        let body = serde_json::to_vec(&req).unwrap();
        let h = &h;
        async move {
            call(
                h,
                "POST",
                "/v1/products/widget/sign-digest",
                Some(token),
                body,
            )
            .await
        }
    };

    // A PQ signature made by some other key, carried as if the appliance had made it.
    let mut req = digest_request(&params, &data);
    let pq_msg = req.items[0].sign.remove(0);
    let forger = SoftKey::generate(SigAlg::MlDsa65).unwrap();
    let forged = forger.sign(&pq_msg.decode().unwrap()).unwrap();
    req.items[0].carried = vec![fwseal_api::digest::Carried {
        message: pq_msg,
        signature: forged,
    }];
    let d0 = denies(&h);
    let (s, b) = post(req, ALICE).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        json(&b)["detail"].as_str().unwrap().contains("carried"),
        "{}",
        String::from_utf8_lossy(&b)
    );
    assert_eq!(denies(&h), d0 + 1);

    // An algorithm the product does not sign with.
    let mut req = digest_request(&params, &data);
    req.items[0].sign[1].alg = SigAlg::EcdsaP384Sha384;
    req.items[0].sign[1].prehashed = Some("00".repeat(48));
    let (s, b) = post(req, ALICE).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(json(&b)["detail"]
        .as_str()
        .unwrap()
        .contains("is not what product widget signs"));
    assert_eq!(denies(&h), d0 + 2);

    // Another product's client: the same 404 as an unknown product.
    let (s, _) = post(digest_request(&params, &data), BOB).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(denies(&h), d0 + 3);
}

// ---- every error is a problem document (issue 11, defect 15) ----

/// A request with extra headers; answers status, headers and body.
async fn call_with(
    h: &Harness,
    method: &str,
    uri: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    let resp = app(h.state.clone())
        .oneshot(b.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, headers, bytes.to_vec())
}

/// The answer is an RFC 9457 document with this status and code.
fn assert_problem(
    what: &str,
    status: StatusCode,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    want: StatusCode,
    code: &str,
) -> serde_json::Value {
    assert_eq!(status, want, "{what}: {}", String::from_utf8_lossy(body));
    assert_eq!(
        headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap()),
        Some("application/problem+json"),
        "{what}: content type; body {}",
        String::from_utf8_lossy(body)
    );
    let doc: fwseal_api::ProblemDoc = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what}: not a problem document ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    assert_eq!(doc.status, want.as_u16(), "{what}");
    assert_eq!(doc.code, code, "{what}");
    assert_eq!(
        doc.kind,
        format!("https://fwseal.dev/problems/{code}"),
        "{what}"
    );
    assert!(!doc.detail.is_empty(), "{what}: empty detail");
    serde_json::from_slice(body).unwrap()
}

fn bearer(t: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {t}"))
}

#[tokio::test]
async fn unmatched_route_and_wrong_method_are_problem_documents() {
    let h = harness();
    let (s, hd, b) = call_with(&h, "GET", "/v1/nope", &[bearer(ALICE)], vec![]).await;
    assert_problem(
        "unmatched route",
        s,
        &hd,
        &b,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    let (s, hd, b) = call_with(
        &h,
        "GET",
        "/v1/products/widget/sign",
        &[bearer(ALICE)],
        vec![],
    )
    .await;
    assert_problem(
        "GET on sign",
        s,
        &hd,
        &b,
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
    );
    assert_eq!(
        hd.get(header::ALLOW).map(|v| v.to_str().unwrap()),
        Some("POST")
    );
    // Every answer names its request id.
    assert!(hd.get("x-request-id").is_some());
}

#[tokio::test]
async fn oversized_request_head_is_a_431_problem() {
    let h = harness();
    let many: Vec<(&str, String)> = (0..150)
        .map(|i| {
            let name: &'static str = Box::leak(format!("x-filler-{i}").into_boxed_str());
            (name, "y".to_string())
        })
        .collect();
    let (s, hd, b) = call_with(&h, "GET", "/healthz", &many, vec![]).await;
    assert_problem(
        "150 header fields",
        s,
        &hd,
        &b,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers-too-large",
    );
    let big = vec![("x-big", "z".repeat(100 << 10))];
    let (s, hd, b) = call_with(&h, "GET", "/healthz", &big, vec![]).await;
    assert_problem(
        "100 KiB header",
        s,
        &hd,
        &b,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers-too-large",
    );
}

#[tokio::test]
async fn bad_query_parameters_are_audited_400_problems() {
    let h = harness();
    let denies = |h: &Harness| {
        audit(h)
            .iter()
            .filter(|r| r.entry.decision == Decision::Deny && r.entry.client == "alice")
            .count()
    };
    let cases: [(&str, &str, Vec<u8>); 4] = [
        ("POST", "/v1/products/widget/sign?mode=bogus", image(100)),
        ("GET", "/v1/products/widget/artifacts?limit=-1", vec![]),
        ("GET", "/v1/jobs?state=bogus", vec![]),
        ("GET", "/v1/products/widget/sign-params", vec![]),
    ];
    for (i, (m, uri, body)) in cases.into_iter().enumerate() {
        let (s, hd, b) = call_with(&h, m, uri, &[bearer(ALICE)], body).await;
        assert_problem(uri, s, &hd, &b, StatusCode::BAD_REQUEST, "bad-request");
        assert_eq!(denies(&h), i + 1, "{uri}: refusal audited");
    }
    // A time that is not RFC 3339 is the client's mistake, not a 500.
    let (s, hd, b) = call_with(
        &h,
        "GET",
        "/v1/products/widget/artifacts?since=yesterday",
        &[bearer(ALICE)],
        vec![],
    )
    .await;
    let doc = assert_problem(
        "since=yesterday",
        s,
        &hd,
        &b,
        StatusCode::BAD_REQUEST,
        "bad-request",
    );
    assert!(doc["detail"].as_str().unwrap().contains("since"), "{doc}");
    // Nothing was spooled or stored for the refused sign.
    assert_eq!(blob_count(&h.state_dir), 0);
    verify_chain(&h);
}

#[tokio::test]
async fn over_limit_request_bodies_are_413_problems() {
    let h = harness();
    let big = vec![b' '; (2 << 20) + 1];
    let (s, hd, b) = call_with(
        &h,
        "POST",
        "/v1/products/widget/sign-digest",
        &[bearer(ALICE)],
        big,
    )
    .await;
    assert_problem(
        "sign-digest over 2 MiB",
        s,
        &hd,
        &b,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
    );
    // approve / reject take a few KB, not megabytes.
    for verb in ["approve", "reject"] {
        let body = format!("{{\"reason\": \"{}\"}}", "r".repeat(5000)).into_bytes();
        let uri = format!("/v1/jobs/0123456789abcdef0123456789abcdef/{verb}");
        let (s, hd, b) = call_with(&h, "POST", &uri, &[bearer(ALICE)], body).await;
        assert_problem(&uri, s, &hd, &b, StatusCode::PAYLOAD_TOO_LARGE, "too-large");
    }
}

#[tokio::test]
async fn unparseable_multipart_batch_fails_as_a_whole() {
    let h = harness();
    let (s, hd, b) = call_with(
        &h,
        "POST",
        "/v1/products/widget/sign-batch",
        &[
            bearer(ALICE),
            ("content-type", "multipart/form-data; boundary=XYZ".into()),
        ],
        b"this is not multipart at all".to_vec(),
    )
    .await;
    assert_problem(
        "garbage multipart",
        s,
        &hd,
        &b,
        StatusCode::BAD_REQUEST,
        "bad-request",
    );
    assert_eq!(blob_count(&h.state_dir), 0);
}

#[tokio::test]
async fn metrics_need_the_metrics_role() {
    let h = harness();
    let (s, hd, b) = call_with(&h, "GET", "/metrics", &[], vec![]).await;
    assert_problem(
        "no token",
        s,
        &hd,
        &b,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    let (s, hd, b) = call_with(&h, "GET", "/metrics", &[bearer(ALICE)], vec![]).await;
    assert_problem(
        "submitter token",
        s,
        &hd,
        &b,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let (s, _, b) = call_with(&h, "GET", "/metrics", &[bearer(PROM)], vec![]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&b).contains("fwseal_http_requests_total"));
    // Both refusals are audited.
    let denied: Vec<_> = audit(&h)
        .into_iter()
        .filter(|r| r.entry.decision == Decision::Deny)
        .map(|r| r.entry.client)
        .collect();
    assert_eq!(denied, ["anonymous", "alice"]);
    // Health endpoints stay open.
    let (s, _, _) = call_with(&h, "GET", "/healthz", &[], vec![]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call_with(&h, "GET", "/readyz", &[], vec![]).await;
    assert_eq!(s, StatusCode::OK);
}

/// `x-request-id` is random (128 bits, hex), not a boot time and counter that would tell the
/// request rate.
#[tokio::test]
async fn request_ids_are_random_and_say_nothing_of_the_rate() {
    let h = harness();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (s, hd, _) = call_with(&h, "GET", "/healthz", &[], vec![]).await;
        assert_eq!(s, StatusCode::OK);
        let id = hd
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        ids.push(id);
    }
    // An unauthenticated answer has one too.
    let (s, hd, _) = call_with(&h, "GET", "/v1/jobs", &[], vec![]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    ids.push(
        hd.get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string(),
    );
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    // No shared prefix a counter or a boot time would leave.
    assert_ne!(ids[0][..8], ids[1][..8], "{ids:?}");
}

/// A request target over 8 KiB is a `414 uri-too-long` problem, before anything else.
#[tokio::test]
async fn a_long_request_target_is_a_414_problem() {
    let h = harness();
    let uri = format!("/v1/products/widget/sign?name={}", "a".repeat(9000));
    let (s, hd, b) = call_with(&h, "POST", &uri, &[bearer(ALICE)], image(100)).await;
    assert_problem(
        "9 KiB target",
        s,
        &hd,
        &b,
        StatusCode::URI_TOO_LONG,
        "uri-too-long",
    );
    assert_eq!(blob_count(&h.state_dir), 0);
    // Just under the limit is not refused for its length.
    let uri = format!("/healthz?x={}", "a".repeat(8000));
    let (s, _, _) = call_with(&h, "GET", &uri, &[], vec![]).await;
    assert_eq!(s, StatusCode::OK);
}

/// An image name over 255 bytes or with control / bidirectional-text characters is refused
/// (400, audited) and never stored; in a batch, the part is refused.
#[tokio::test]
async fn image_names_are_bounded_and_printable() {
    let h = harness();
    let denies = |h: &Harness| {
        audit(h)
            .iter()
            .filter(|r| r.entry.decision == Decision::Deny && r.entry.client == "alice")
            .count()
    };
    let long = "n".repeat(256);
    let cases = [
        long.as_str(),
        "fw%0A.bin",
        "fw%1B%5B31m.bin",
        "fw%E2%80%AEnib.exe",
    ];
    for (i, name) in cases.iter().enumerate() {
        let uri = format!("/v1/products/widget/sign?name={name}");
        let (s, hd, b) = call_with(&h, "POST", &uri, &[bearer(ALICE)], image(100)).await;
        let doc = assert_problem(name, s, &hd, &b, StatusCode::BAD_REQUEST, "bad-request");
        assert!(doc["detail"].as_str().unwrap().contains("name"), "{doc}");
        assert_eq!(denies(&h), i + 1, "{name}: refusal audited");
    }
    assert_eq!(blob_count(&h.state_dir), 0);
    // 255 bytes of a plain name are fine.
    let uri = format!("/v1/products/widget/sign?name={}", "n".repeat(255));
    let (s, _, b) = call_with(&h, "POST", &uri, &[bearer(ALICE)], image(100)).await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    let stored = blob_count(&h.state_dir);
    // A batch part's filename is checked the same way.
    let body = format!(
        "--XYZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{}\"\r\n\r\n{}\r\n--XYZ--\r\n",
        "m".repeat(300),
        "x".repeat(100)
    );
    let (s, _, b) = call_with(
        &h,
        "POST",
        "/v1/products/widget/sign-batch",
        &[
            bearer(ALICE),
            ("content-type", "multipart/form-data; boundary=XYZ".into()),
        ],
        body.into_bytes(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let v = json(&b);
    assert_eq!(v["results"][0]["status"], 400, "{v}");
    assert_eq!(
        blob_count(&h.state_dir),
        stored,
        "the refused part stored nothing"
    );
}
