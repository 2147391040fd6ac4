//! `docs/openapi.json` checked against the fwseal-api types, in both directions.
//!
//! For every endpoint body (and query) that has a shared type, the test serializes sample
//! values of the type and walks them together with the schema (resolving `$ref`):
//!
//! - every key the type emits is a property of the schema, and every property is emitted;
//! - `required` lists exactly the keys the type always emits (responses), or exactly the keys
//!   the type cannot deserialize without (request bodies and query parameters);
//! - the JSON types agree exactly (`string`, `integer`, `number`, `boolean`, `array`, `object`,
//!   `null`: `null` is listed iff the type sends `null` there);
//! - `enum` lists exactly the values the type emits, which the samples draw from the Rust enums
//!   (`formats()`, `MODES`, `SigAlg::ALL`, `DigestAlg::ALL`, `JobState::ALL`, `codes::ALL`);
//!   a string that varies between samples without an `enum` in the schema is drift too;
//! - every JSON body in the document is covered by a type here, and every problem document
//!   schema is [`ProblemDoc`].
//!
//! Sample discipline ([`Sample`]): `full()` values have every `Option` `Some` and every `Vec`
//! non-empty and, between them, every enum variant; `minimal()` has every `Option` `None` and
//! every `Vec` empty. Plain strings are the same in every sample: only enum values vary.
//!
//! A failure names the endpoint and the JSON path that drifted, e.g.
//! `GET /v1/jobs/{id} 200: $.links.artifact: emitted by the type but not in the schema`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fwseal_api::digest::*;
use fwseal_api::*;
use fwseal_crypto::{Family, KeyId, Signature};
use fwseal_formats::mcuboot::{PublicKeyFormat, Slot};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;

// ---------------------------------------------------------------------------------------------
// Samples.

/// Sample values of a wire type (see the module docs for the discipline).
trait Sample: Serialize + DeserializeOwned + Clone {
    /// Fully populated values; together they hold every enum variant.
    fn full() -> Vec<Self>;
    /// The least populated value.
    fn minimal() -> Self;
}

/// The `i`-th full sample of `T` (cycling).
fn pick<T: Sample>(i: usize) -> T {
    let all = T::full();
    all[i % all.len()].clone()
}

/// The full samples of `T` and its minimal one: what a `Vec<T>` in a full sample holds, so
/// that keys `T` omits and `null`s it sends are seen inside containers too.
fn every<T: Sample>() -> Vec<T> {
    let mut v = T::full();
    v.push(T::minimal());
    v
}

/// How many samples cover every variant of the given lists.
fn cover(lens: &[usize]) -> usize {
    lens.iter().copied().max().unwrap_or(1).max(1)
}

const HEX: &str = "06ea0c5ad7bb1d1c4bfa7ba4f4d3f1a2b4f1c6a0d9e8f7a6b5c4d3e2f1a0b9c8";
const ID: &str = "9b2e5f0c3a1d4e6f8a7b9c0d1e2f3a4b";

fn alg_at(i: usize) -> SigAlg {
    SigAlg::ALL[i % SigAlg::ALL.len()]
}

fn family_algs(f: Family) -> Vec<SigAlg> {
    SigAlg::ALL
        .into_iter()
        .filter(|a| a.family() == f)
        .collect()
}

impl Sample for DigestValue {
    fn full() -> Vec<Self> {
        DigestAlg::ALL
            .into_iter()
            .map(|alg| DigestValue {
                alg,
                value: HEX.into(),
            })
            .collect()
    }
    fn minimal() -> Self {
        pick(0)
    }
}

impl Sample for SigOut {
    fn full() -> Vec<Self> {
        SigAlg::ALL
            .into_iter()
            .map(|alg| SigOut {
                alg,
                key_id: HEX.into(),
            })
            .collect()
    }
    fn minimal() -> Self {
        pick(0)
    }
}

impl Sample for Links {
    fn full() -> Vec<Self> {
        vec![Links::for_artifact(ID)]
    }
    fn minimal() -> Self {
        pick(0)
    }
}

impl Sample for SignResponse {
    fn full() -> Vec<Self> {
        let n = cover(&[formats().len(), MODES.len(), DigestAlg::ALL.len()]);
        (0..n)
            .map(|i| SignResponse {
                artifact_id: ID.into(),
                product: "widget".into(),
                format: formats()[i % formats().len()],
                mode: MODES[i % MODES.len()],
                input_sha256: HEX.into(),
                output_sha256: HEX.into(),
                digest: pick(i),
                signatures: SigOut::full(),
                approvers: vec!["alice".into()],
                links: pick(i),
            })
            .collect()
    }
    fn minimal() -> Self {
        SignResponse {
            signatures: vec![],
            approvers: vec![],
            ..pick(0)
        }
    }
}

impl Sample for SignQuery {
    fn full() -> Vec<Self> {
        MODES
            .into_iter()
            .map(|m| SignQuery {
                mode: Some(m),
                format: Some("mcuboot".into()),
                name: Some("app.img".into()),
                version: Some("1.2.3+4".into()),
                source_uri: Some("https://git.example/fw".into()),
                commit: Some("abc123".into()),
                git_ref: Some("refs/heads/main".into()),
                ci_run_url: Some("https://ci.example/run/1".into()),
                builder_id: Some("ci-runner".into()),
            })
            .collect()
    }
    fn minimal() -> Self {
        SignQuery::default()
    }
}

impl Sample for JobApproval {
    fn full() -> Vec<Self> {
        vec![JobApproval {
            approver: "alice".into(),
            time: "2026-11-28T16:20:01Z".into(),
        }]
    }
    fn minimal() -> Self {
        pick(0)
    }
}

impl Sample for JobLinks {
    fn full() -> Vec<Self> {
        vec![JobLinks::for_job(ID, Some(ID))]
    }
    fn minimal() -> Self {
        JobLinks::for_job(ID, None)
    }
}

impl Sample for JobView {
    fn full() -> Vec<Self> {
        let n = cover(&[
            formats().len(),
            MODES.len(),
            DigestAlg::ALL.len(),
            JobState::ALL.len(),
            SignQuery::full().len(),
        ]);
        (0..n)
            .map(|i| JobView {
                id: ID.into(),
                product: "secure".into(),
                format: formats()[i % formats().len()],
                mode: MODES[i % MODES.len()],
                name: "app.img".into(),
                version: Some("1.2.3+4".into()),
                input_sha256: HEX.into(),
                input_len: 1552,
                digest: pick(i),
                requester: "ci".into(),
                build: pick(i),
                key_version: Some(2),
                approvals_required: 2,
                of_role: "release-approver".into(),
                approvals: JobApproval::full(),
                created: "2026-11-28T16:19:00Z".into(),
                expires: "2026-11-29T16:19:00Z".into(),
                state: JobState::ALL[i % JobState::ALL.len()],
                reason: Some("because".into()),
                artifact_id: Some(ID.into()),
                links: pick(i),
            })
            .collect()
    }
    fn minimal() -> Self {
        JobView {
            version: None,
            build: SignQuery::minimal(),
            key_version: None,
            approvals: vec![],
            reason: None,
            artifact_id: None,
            links: JobLinks::minimal(),
            ..pick(0)
        }
    }
}

impl Sample for JobList {
    fn full() -> Vec<Self> {
        vec![JobList {
            jobs: every::<JobView>(),
        }]
    }
    fn minimal() -> Self {
        JobList { jobs: vec![] }
    }
}

impl Sample for ProblemDoc {
    fn full() -> Vec<Self> {
        // `type` and `title` follow the code in real documents; here they stay fixed so that
        // only the enum (`code`) varies.
        codes::ALL
            .into_iter()
            .map(|code| ProblemDoc {
                kind: "https://fwseal.dev/problems/bad-request".into(),
                title: "Bad request".into(),
                status: 400,
                detail: "what and where".into(),
                code: code.into(),
            })
            .collect()
    }
    fn minimal() -> Self {
        pick(0)
    }
}

impl Sample for BatchItem {
    fn full() -> Vec<Self> {
        let mut out = Vec::new();
        for s in SignResponse::full() {
            out.push(BatchItem {
                name: Some("app.img".into()),
                status: 201,
                body: BatchBody::Signed(Box::new(s)),
            });
        }
        for j in JobView::full() {
            out.push(BatchItem {
                name: Some("app.img".into()),
                status: 202,
                body: BatchBody::Pending(Box::new(j)),
            });
        }
        for p in ProblemDoc::full() {
            out.push(BatchItem {
                name: Some("app.img".into()),
                status: 400,
                body: BatchBody::Problem(p),
            });
        }
        out
    }
    fn minimal() -> Self {
        BatchItem {
            name: None,
            status: 201,
            body: BatchBody::Signed(Box::new(SignResponse::minimal())),
        }
    }
}

// Transparency log (`fwseal_api::log`).

const B64H: &str = "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

impl Sample for LogRecord {
    fn full() -> Vec<Self> {
        ["allow", "deny"]
            .iter()
            .map(|d| LogRecord {
                seq: 7,
                prev_hash: HEX.into(),
                hash: HEX.into(),
                time: "2026-11-28T16:19:00Z".into(),
                client: "ci".into(),
                action: "sign".into(),
                product: Some("widget".into()),
                key_ids: vec![HEX.into()],
                cert_sha256: Some(HEX.into()),
                input_sha256: Some(HEX.into()),
                output_sha256: Some(HEX.into()),
                format: Some("raw".into()),
                mode: Some("embedded".into()),
                decision: (*d).into(),
                reason: Some("ok".into()),
                extra: Some("{\"n\":1}".into()),
            })
            .collect()
    }
    fn minimal() -> Self {
        LogRecord {
            product: None,
            key_ids: vec![],
            cert_sha256: None,
            input_sha256: None,
            output_sha256: None,
            format: None,
            mode: None,
            reason: None,
            extra: None,
            ..pick(0)
        }
    }
}

impl Sample for InclusionProof {
    fn full() -> Vec<Self> {
        every::<LogRecord>()
            .into_iter()
            .map(|record| InclusionProof {
                leaf_index: 6,
                tree_size: 9,
                proof: vec![B64H.into()],
                record,
                canonical_encoding: "AAAA".into(),
                checkpoint: Some("origin\n9\nroot\n\n— sig\n".into()),
            })
            .collect()
    }
    fn minimal() -> Self {
        InclusionProof {
            proof: vec![],
            checkpoint: None,
            ..pick(0)
        }
    }
}

impl Sample for ConsistencyProof {
    fn full() -> Vec<Self> {
        vec![ConsistencyProof {
            old_size: 3,
            new_size: 9,
            proof: vec![B64H.into()],
        }]
    }
    fn minimal() -> Self {
        ConsistencyProof {
            proof: vec![],
            ..pick(0)
        }
    }
}

impl Sample for Bundle {
    fn full() -> Vec<Self> {
        every::<LogRecord>()
            .into_iter()
            .map(|record| Bundle {
                bundle_format: BUNDLE_FORMAT.into(),
                artifact: ID.into(),
                output_sha256: HEX.into(),
                input_sha256: HEX.into(),
                detached: Some("{}".into()),
                provenance: Some("{}".into()),
                record,
                canonical_encoding: "AAAA".into(),
                leaf_index: 6,
                tree_size: 9,
                inclusion_proof: vec![B64H.into()],
                checkpoint: "origin\n9\nroot\n\n— sig\n".into(),
                timestamps: vec![BundleTimestamp {
                    covers: "checkpoint".into(),
                    token: "AAAA".into(),
                }],
            })
            .collect()
    }
    fn minimal() -> Self {
        Bundle {
            detached: None,
            provenance: None,
            inclusion_proof: vec![],
            timestamps: vec![],
            ..pick(0)
        }
    }
}

/// The minimal variants of the other bodies, for `BatchItem`.
fn batch_minimals() -> Vec<BatchItem> {
    vec![
        BatchItem::minimal(),
        BatchItem {
            name: None,
            status: 202,
            body: BatchBody::Pending(Box::new(JobView::minimal())),
        },
        BatchItem {
            name: None,
            status: 400,
            body: BatchBody::Problem(ProblemDoc::minimal()),
        },
    ]
}

impl Sample for BatchResponse {
    fn full() -> Vec<Self> {
        vec![BatchResponse {
            product: "widget".into(),
            results: BatchItem::full(),
        }]
    }
    fn minimal() -> Self {
        BatchResponse {
            product: "widget".into(),
            results: batch_minimals(),
        }
    }
}

impl Sample for ArtifactView {
    fn full() -> Vec<Self> {
        let n = cover(&[formats().len(), MODES.len()]);
        (0..n)
            .map(|i| ArtifactView {
                id: ID.into(),
                product: "widget".into(),
                format: formats()[i % formats().len()],
                mode: MODES[i % MODES.len()],
                name: Some("app.img".into()),
                version: Some("1.2.3+4".into()),
                input_sha256: HEX.into(),
                output_sha256: HEX.into(),
                detached_sha256: Some(HEX.into()),
                provenance_sha256: Some(HEX.into()),
                key_ids: vec![HEX.into()],
                client: Some("ci".into()),
                created: "2026-11-28T16:19:00Z".into(),
            })
            .collect()
    }
    fn minimal() -> Self {
        ArtifactView {
            name: None,
            version: None,
            detached_sha256: None,
            provenance_sha256: None,
            key_ids: vec![],
            client: None,
            ..pick(0)
        }
    }
}

impl Sample for ArtifactList {
    fn full() -> Vec<Self> {
        vec![ArtifactList {
            product: "widget".into(),
            artifacts: every::<ArtifactView>(),
        }]
    }
    fn minimal() -> Self {
        ArtifactList {
            product: "widget".into(),
            artifacts: vec![],
        }
    }
}

impl Sample for KeyView {
    fn full() -> Vec<Self> {
        SigAlg::ALL
            .into_iter()
            .map(|alg| KeyView {
                alg,
                key_id: HEX.into(),
                spki_pem: "-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----\n".into(),
            })
            .collect()
    }
    fn minimal() -> Self {
        pick(0)
    }
}

impl Sample for ProductKeys {
    fn full() -> Vec<Self> {
        vec![ProductKeys {
            product: "widget".into(),
            keys: KeyView::full(),
            certificate_pem: Some("-----BEGIN CERTIFICATE-----\n…".into()),
        }]
    }
    fn minimal() -> Self {
        ProductKeys {
            product: "widget".into(),
            keys: vec![],
            certificate_pem: None,
        }
    }
}

impl Sample for ApproveBody {
    fn full() -> Vec<Self> {
        vec![ApproveBody { digest: HEX.into() }]
    }
    fn minimal() -> Self {
        pick(0)
    }
}

impl Sample for RejectBody {
    fn full() -> Vec<Self> {
        vec![RejectBody {
            reason: "wrong build".into(),
        }]
    }
    fn minimal() -> Self {
        pick(0)
    }
}

/// Every name `Format::from_name` accepts (canonical names and extensions).
const FORMAT_NAMES: [&str; 11] = [
    "raw", "mcuboot", "ihex", "dfu", "efi", "bin", "fw", "img", "hex", "dfuse", "pe",
];

impl Sample for SignParamsQuery {
    fn full() -> Vec<Self> {
        FORMAT_NAMES
            .into_iter()
            .map(|f| SignParamsQuery {
                format: f.into(),
                version: Some("1.2.3+4".into()),
            })
            .collect()
    }
    fn minimal() -> Self {
        SignParamsQuery {
            format: "raw".into(),
            version: None,
        }
    }
}

impl Sample for ArtifactListQuery {
    fn full() -> Vec<Self> {
        vec![ArtifactListQuery {
            version: Some("1.2.3+4".into()),
            digest: Some(HEX.into()),
            since: Some("2026-11-28T00:00:00Z".into()),
            until: Some("2026-11-29T00:00:00Z".into()),
            limit: Some(10),
        }]
    }
    fn minimal() -> Self {
        ArtifactListQuery::default()
    }
}

impl Sample for JobsQuery {
    fn full() -> Vec<Self> {
        [JobsFilter::Pending, JobsFilter::All]
            .into_iter()
            .map(|s| JobsQuery {
                product: Some("secure".into()),
                state: Some(s),
            })
            .collect()
    }
    fn minimal() -> Self {
        JobsQuery::default()
    }
}

fn options(i: usize) -> SignOptions {
    SignOptions {
        product: "widget".into(),
        image_version: Some(ImageVersion {
            major: 1,
            minor: 2,
            revision: 3,
            build: 4,
        }),
        security_counter: Some(7),
        raw_digest: DigestAlg::ALL[i % DigestAlg::ALL.len()],
        hex_signature_address: Some(0x1000),
        hex_fill: 0xff,
        dfuse_signature_address: Some(0x0800_0000),
        mcuboot_public_key: [PublicKeyFormat::Hash, PublicKeyFormat::Full][i % 2],
        mcuboot_slot: Some(Slot {
            size: 0x2_0000,
            align: 4,
            max_align: [Some(8), None][i % 2],
            max_sectors: 128,
            overwrite_only: false,
        }),
    }
}

impl Sample for SignParams {
    fn full() -> Vec<Self> {
        let (c, q) = (
            family_algs(Family::Classical),
            family_algs(Family::PostQuantum),
        );
        let n = cover(&[formats().len(), c.len(), q.len(), DigestAlg::ALL.len()]);
        (0..n)
            .map(|i| SignParams {
                format: formats()[i % formats().len()],
                classical: Some(c[i % c.len()]),
                pq: Some(q[i % q.len()]),
                options: options(i),
            })
            .collect()
    }
    fn minimal() -> Self {
        SignParams {
            classical: None,
            pq: None,
            options: SignOptions {
                image_version: None,
                security_counter: None,
                hex_signature_address: None,
                dfuse_signature_address: None,
                mcuboot_slot: None,
                ..options(0)
            },
            ..pick(0)
        }
    }
}

fn signature(i: usize) -> Signature {
    Signature {
        alg: alg_at(i),
        key_id: KeyId([7; 32]),
        bytes: vec![1, 2, 3],
    }
}

impl Sample for WireMessage {
    fn full() -> Vec<Self> {
        SigAlg::ALL
            .into_iter()
            .map(|alg| WireMessage {
                alg,
                prehashed: Some(HEX.into()),
                bytes: Some("AAAA".into()),
            })
            .collect()
    }
    fn minimal() -> Self {
        WireMessage {
            prehashed: None,
            bytes: None,
            ..pick(0)
        }
    }
}

impl Sample for DigestItem {
    fn full() -> Vec<Self> {
        let n = cover(&[
            formats().len(),
            MODES.len(),
            DigestAlg::ALL.len(),
            SigAlg::ALL.len(),
        ]);
        (0..n)
            .map(|i| DigestItem {
                name: "app.img".into(),
                format: formats()[i % formats().len()],
                mode: MODES[i % MODES.len()],
                input_sha256: HEX.into(),
                digest: WireDigest {
                    alg: DigestAlg::ALL[i % DigestAlg::ALL.len()],
                    value: HEX.into(),
                },
                version: Some("1.2.3+4".into()),
                sign: vec![pick(i)],
                carried: vec![Carried {
                    message: pick(i),
                    signature: signature(i),
                }],
            })
            .collect()
    }
    fn minimal() -> Self {
        DigestItem {
            version: None,
            sign: vec![],
            carried: vec![],
            ..pick(0)
        }
    }
}

impl Sample for DigestSignRequest {
    fn full() -> Vec<Self> {
        vec![DigestSignRequest {
            items: every::<DigestItem>(),
            claims: BuildClaims {
                source_uri: Some("https://git.example/fw".into()),
                commit: Some("abc123".into()),
                git_ref: Some("refs/heads/main".into()),
                ci_run_url: Some("https://ci.example/run/1".into()),
                builder_id: Some("ci-runner".into()),
            },
        }]
    }
    fn minimal() -> Self {
        DigestSignRequest {
            items: vec![],
            claims: BuildClaims::default(),
        }
    }
}

impl Sample for DigestSignResponse {
    fn full() -> Vec<Self> {
        vec![DigestSignResponse {
            items: vec![DigestItemResult {
                name: "app.img".into(),
                signatures: (0..SigAlg::ALL.len()).map(signature).collect(),
                public_keys: vec!["AAAA".into()],
                certificates: vec!["AAAA".into()],
                complete: true,
                provenance: Some("{\"payloadType\":\"…\"}".into()),
                timestamps: vec![fwseal_crypto::SigTimestamp {
                    alg: SigAlg::MlDsa65,
                    key_id: fwseal_crypto::KeyId([7; 32]),
                    token: vec![0x30, 0x03, 0x02, 0x01, 0x01],
                }],
            }],
        }]
    }
    fn minimal() -> Self {
        DigestSignResponse {
            items: vec![DigestItemResult {
                name: "app.img".into(),
                signatures: vec![],
                public_keys: vec![],
                certificates: vec![],
                complete: false,
                provenance: None,
                timestamps: vec![],
            }],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The checker.

/// A sample set: the serialized full and minimal values, and how `T` deserializes.
struct Samples {
    full: Vec<Value>,
    all: Vec<Value>,
    parses: fn(&Value) -> bool,
}

fn parses<T: DeserializeOwned>(v: &Value) -> bool {
    serde_json::from_value::<T>(v.clone()).is_ok()
}

fn samples<T: Sample>() -> Samples {
    samples_with::<T>(Vec::new())
}

fn samples_with<T: Sample>(extra_minimal: Vec<T>) -> Samples {
    let ser = |t: &T| serde_json::to_value(t).expect("sample serializes");
    let full: Vec<Value> = T::full().iter().map(ser).collect();
    let mut all = full.clone();
    all.push(ser(&T::minimal()));
    all.extend(extra_minimal.iter().map(ser));
    // What the server sends, the client reads back identically.
    for v in &all {
        let back: T = serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("sample does not deserialize: {e}\n{v}"));
        assert_eq!(&ser(&back), v, "sample does not round-trip");
    }
    Samples {
        full,
        all,
        parses: parses::<T>,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Seg {
    Key(String),
    Each,
}

fn show(path: &[Seg]) -> String {
    let mut s = String::from("$");
    for p in path {
        match p {
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Each => s.push_str("[]"),
        }
    }
    s
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Remove `key` from every object at `path` in `v`.
fn remove_at(v: &mut Value, path: &[Seg], key: &str) {
    match path.split_first() {
        None => {
            if let Some(o) = v.as_object_mut() {
                o.remove(key);
            }
        }
        Some((Seg::Key(k), rest)) => {
            if let Some(c) = v.get_mut(k) {
                remove_at(c, rest, key);
            }
        }
        Some((Seg::Each, rest)) => {
            if let Some(a) = v.as_array_mut() {
                for c in a {
                    remove_at(c, rest, key);
                }
            }
        }
    }
}

/// `(path, key)` of every key a request type cannot be deserialized without: removing it from
/// a full sample (everywhere at that path) makes deserialization fail.
fn removal_required(s: &Samples) -> BTreeSet<(Vec<Seg>, String)> {
    fn keys(v: &Value, path: &mut Vec<Seg>, out: &mut BTreeSet<(Vec<Seg>, String)>) {
        match v {
            Value::Object(o) => {
                for (k, c) in o {
                    out.insert((path.clone(), k.clone()));
                    path.push(Seg::Key(k.clone()));
                    keys(c, path, out);
                    path.pop();
                }
            }
            Value::Array(a) => {
                path.push(Seg::Each);
                for c in a {
                    keys(c, path, out);
                }
                path.pop();
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for v in &s.full {
        let mut present = BTreeSet::new();
        keys(v, &mut Vec::new(), &mut present);
        for (p, k) in present {
            let mut w = v.clone();
            remove_at(&mut w, &p, &k);
            if !(s.parses)(&w) {
                out.insert((p, k));
            }
        }
    }
    out
}

struct Checker<'a> {
    doc: &'a Value,
    what: String,
    errors: Vec<String>,
    /// For a request body: the keys it cannot be deserialized without.
    required_by_type: Option<BTreeSet<(Vec<Seg>, String)>>,
}

impl<'a> Checker<'a> {
    fn err(&mut self, path: &[Seg], m: impl std::fmt::Display) {
        self.errors
            .push(format!("{}: {}: {m}", self.what, show(path)));
    }

    fn resolve(&mut self, mut s: &'a Value, path: &[Seg]) -> Option<&'a Value> {
        for _ in 0..16 {
            let Some(r) = s.get("$ref").and_then(Value::as_str) else {
                return Some(s);
            };
            let Some(p) = r.strip_prefix("#/") else {
                self.err(path, format!("unsupported $ref {r}"));
                return None;
            };
            let mut t = self.doc;
            for part in p.split('/') {
                match t.get(part) {
                    Some(x) => t = x,
                    None => {
                        self.err(path, format!("dangling $ref {r}"));
                        return None;
                    }
                }
            }
            s = t;
        }
        self.err(path, "$ref loop");
        None
    }

    fn check(&mut self, schema: &'a Value, values: &[&Value], path: &mut Vec<Seg>) {
        let Some(schema) = self.resolve(schema, path) else {
            return;
        };
        if values.is_empty() {
            self.err(
                path,
                "no sample value reaches this schema (fill the samples)",
            );
            return;
        }
        if let Some(alts) = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Value::as_array)
        {
            self.check_alternatives(alts, values, path);
            return;
        }

        // JSON types, both ways.
        let declared: BTreeSet<String> = match schema.get("type") {
            Some(Value::String(t)) => [t.clone()].into(),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
            _ => {
                self.err(path, "the schema gives no `type`");
                return;
            }
        };
        let seen: BTreeSet<String> = values.iter().map(|v| json_type(v).to_string()).collect();
        if declared != seen {
            self.err(
                path,
                format!("type: the schema says {declared:?}, the type emits {seen:?}"),
            );
        }

        // Enums, both ways.
        let strings: BTreeSet<&str> = values.iter().filter_map(|v| v.as_str()).collect();
        match schema.get("enum").and_then(Value::as_array) {
            Some(list) => {
                let listed: BTreeSet<&str> = list.iter().filter_map(Value::as_str).collect();
                for s in strings.difference(&listed) {
                    self.err(
                        path,
                        format!("enum: the type emits {s:?}, the schema does not list it"),
                    );
                }
                for s in listed.difference(&strings) {
                    self.err(
                        path,
                        format!("enum: the schema lists {s:?}, the type never emits it"),
                    );
                }
                if seen.contains("null") && !list.iter().any(Value::is_null) {
                    self.err(
                        path,
                        "enum: the type emits null, the enum does not list null",
                    );
                }
            }
            None if strings.len() > 1 => self.err(
                path,
                format!("the type emits the enum values {strings:?}; the schema has no `enum`"),
            ),
            None => {}
        }

        // Objects: properties and required keys, both ways.
        let objects: Vec<&serde_json::Map<String, Value>> =
            values.iter().filter_map(|v| v.as_object()).collect();
        if !objects.is_empty() {
            self.check_object(schema, &objects, path);
        }

        // Arrays.
        let arrays: Vec<&Vec<Value>> = values.iter().filter_map(|v| v.as_array()).collect();
        if !arrays.is_empty() {
            let Some(items) = schema.get("items") else {
                self.err(path, "array without `items`");
                return;
            };
            let elems: Vec<&Value> = arrays.iter().flat_map(|a| a.iter()).collect();
            path.push(Seg::Each);
            if elems.is_empty() {
                self.err(path, "no sample fills this array (fill the samples)");
            } else {
                self.check(items, &elems, path);
            }
            path.pop();
        }
    }

    fn check_object(
        &mut self,
        schema: &'a Value,
        objects: &[&serde_json::Map<String, Value>],
        path: &mut Vec<Seg>,
    ) {
        static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> =
            std::sync::OnceLock::new();
        let props = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(serde_json::Map::new));
        if schema
            .get("additionalProperties")
            .is_some_and(Value::is_object)
        {
            self.err(
                path,
                "`additionalProperties` with a schema: list the type's keys as `properties`",
            );
        }
        let emitted: BTreeSet<&String> = objects.iter().flat_map(|o| o.keys()).collect();
        for k in &emitted {
            if !props.contains_key(*k) {
                path.push(Seg::Key((*k).clone()));
                self.err(path, "emitted by the type but not in the schema");
                path.pop();
            }
        }
        for k in props.keys() {
            if !emitted.contains(k) {
                path.push(Seg::Key(k.clone()));
                self.err(path, "in the schema but never emitted by the type");
                path.pop();
            }
        }
        let listed: BTreeSet<String> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let needed: BTreeSet<String> = match &self.required_by_type {
            // Response: the keys every value has.
            None => emitted
                .iter()
                .filter(|k| objects.iter().all(|o| o.contains_key(**k)))
                .map(|k| (*k).clone())
                .collect(),
            // Request: the keys it cannot do without.
            Some(req) => emitted
                .iter()
                .filter(|k| req.contains(&(path.clone(), (**k).clone())))
                .map(|k| (*k).clone())
                .collect(),
        };
        let how = match self.required_by_type {
            None => "always emitted",
            Some(_) => "needed to deserialize",
        };
        for k in needed.difference(&listed) {
            path.push(Seg::Key(k.clone()));
            self.err(path, format!("{how} but not in the schema's `required`"));
            path.pop();
        }
        for k in listed.difference(&needed) {
            path.push(Seg::Key(k.clone()));
            self.err(
                path,
                format!("in the schema's `required` but not {how} by the type"),
            );
            path.pop();
        }
        for (k, sub) in props {
            if !emitted.contains(k) {
                continue;
            }
            let vals: Vec<&Value> = objects.iter().filter_map(|o| o.get(k)).collect();
            path.push(Seg::Key(k.clone()));
            self.check(sub, &vals, path);
            path.pop();
        }
    }

    /// `oneOf` / `anyOf`: each value goes to the alternative whose required keys it has and
    /// whose properties hold all its keys; every value must find one, every alternative must get
    /// values, and each alternative is then checked in full with its values.
    fn check_alternatives(&mut self, alts: &'a [Value], values: &[&Value], path: &mut Vec<Seg>) {
        let mut groups: Vec<Vec<&Value>> = vec![Vec::new(); alts.len()];
        for v in values {
            let mut hit = None;
            for (i, a) in alts.iter().enumerate() {
                let Some(a) = self.resolve(a, path) else {
                    return;
                };
                let (Some(o), Some(props)) = (
                    v.as_object(),
                    a.get("properties").and_then(Value::as_object),
                ) else {
                    continue;
                };
                let req_ok = a
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .all(|r| o.contains_key(r));
                if req_ok && o.keys().all(|k| props.contains_key(k)) {
                    hit = Some(i);
                    break;
                }
            }
            match hit {
                Some(i) => groups[i].push(v),
                None => self.err(
                    path,
                    format!("a value the type emits matches no alternative: {v}"),
                ),
            }
        }
        for (i, (a, g)) in alts.iter().zip(groups).enumerate() {
            if g.is_empty() {
                self.err(
                    path,
                    format!("alternative {i} is never emitted by the type"),
                );
            } else {
                self.check(a, &g, path);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The document.

fn doc() -> Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let text = std::fs::read_to_string(p).expect("read docs/openapi.json");
    serde_json::from_str(&text).expect("docs/openapi.json is JSON")
}

/// Where a shared type is used.
enum At {
    /// A response body: (status, content type).
    Response(&'static str, &'static str),
    /// The JSON request body.
    Request,
    /// The query parameters.
    Query,
}

struct Use {
    method: &'static str,
    path: &'static str,
    at: At,
    samples: Samples,
}

fn uses() -> Vec<Use> {
    const JSON: &str = "application/json";
    let u = |method, path, at, samples| Use {
        method,
        path,
        at,
        samples,
    };
    let sign = "/v1/products/{product}/sign";
    let batch = "/v1/products/{product}/sign-batch";
    vec![
        u("post", sign, At::Query, samples::<SignQuery>()),
        u(
            "post",
            sign,
            At::Response("201", JSON),
            samples::<SignResponse>(),
        ),
        u(
            "post",
            sign,
            At::Response("202", JSON),
            samples::<JobView>(),
        ),
        u("post", batch, At::Query, samples::<SignQuery>()),
        u(
            "post",
            batch,
            At::Response("200", JSON),
            samples::<BatchResponse>(),
        ),
        u(
            "get",
            "/v1/products/{product}/sign-params",
            At::Query,
            samples::<SignParamsQuery>(),
        ),
        u(
            "get",
            "/v1/products/{product}/sign-params",
            At::Response("200", JSON),
            samples::<SignParams>(),
        ),
        u(
            "post",
            "/v1/products/{product}/sign-digest",
            At::Request,
            samples::<DigestSignRequest>(),
        ),
        u(
            "post",
            "/v1/products/{product}/sign-digest",
            At::Response("200", JSON),
            samples::<DigestSignResponse>(),
        ),
        u(
            "get",
            "/v1/products/{product}/artifacts",
            At::Query,
            samples::<ArtifactListQuery>(),
        ),
        u(
            "get",
            "/v1/products/{product}/artifacts",
            At::Response("200", JSON),
            samples::<ArtifactList>(),
        ),
        u(
            "get",
            "/v1/products/{product}/keys",
            At::Response("200", JSON),
            samples::<ProductKeys>(),
        ),
        u(
            "get",
            "/v1/appliance/keys",
            At::Response("200", JSON),
            samples::<ProductKeys>(),
        ),
        u(
            "get",
            "/v1/artifacts/{id}",
            At::Response("200", JSON),
            samples::<ArtifactView>(),
        ),
        u("get", "/v1/jobs", At::Query, samples::<JobsQuery>()),
        u(
            "get",
            "/v1/jobs",
            At::Response("200", JSON),
            samples::<JobList>(),
        ),
        u(
            "get",
            "/v1/jobs/{id}",
            At::Response("200", JSON),
            samples::<JobView>(),
        ),
        u(
            "post",
            "/v1/jobs/{id}/approve",
            At::Request,
            samples::<ApproveBody>(),
        ),
        u(
            "post",
            "/v1/jobs/{id}/approve",
            At::Response("200", JSON),
            samples::<JobView>(),
        ),
        u(
            "post",
            "/v1/jobs/{id}/reject",
            At::Request,
            samples::<RejectBody>(),
        ),
        u(
            "post",
            "/v1/jobs/{id}/reject",
            At::Response("200", JSON),
            samples::<JobView>(),
        ),
        u(
            "get",
            "/v1/artifacts/{id}/bundle",
            At::Response("200", JSON),
            samples::<Bundle>(),
        ),
        u(
            "get",
            "/v1/log/inclusion",
            At::Response("200", JSON),
            samples::<InclusionProof>(),
        ),
        u(
            "get",
            "/v1/log/consistency",
            At::Response("200", JSON),
            samples::<ConsistencyProof>(),
        ),
    ]
}

/// Every drift between the document and the types, one line each.
fn drift(doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let problem = samples::<ProblemDoc>();
    let mut covered: BTreeSet<(String, String, String)> = BTreeSet::new();

    for u in uses() {
        let what = match u.at {
            At::Response(status, _) => format!("{} {} {status}", u.method.to_uppercase(), u.path),
            At::Request => format!("{} {} request body", u.method.to_uppercase(), u.path),
            At::Query => format!("{} {} query", u.method.to_uppercase(), u.path),
        };
        let Some(op) = doc["paths"].get(u.path).and_then(|p| p.get(u.method)) else {
            errors.push(format!("{what}: no such operation in the document"));
            continue;
        };
        let values: Vec<&Value> = u.samples.all.iter().collect();
        let mut c = Checker {
            doc,
            what: what.clone(),
            errors: Vec::new(),
            required_by_type: None,
        };
        match u.at {
            At::Response(status, ctype) => {
                covered.insert((u.path.into(), u.method.into(), status.into()));
                match op["responses"][status]["content"][ctype].get("schema") {
                    Some(s) => c.check(s, &values, &mut Vec::new()),
                    None => c
                        .errors
                        .push(format!("{what}: no {ctype} schema in the document")),
                }
            }
            At::Request => {
                covered.insert((u.path.into(), u.method.into(), "request".into()));
                c.required_by_type = Some(removal_required(&u.samples));
                match op["requestBody"]["content"]["application/json"].get("schema") {
                    Some(s) => c.check(s, &values, &mut Vec::new()),
                    None => c.errors.push(format!(
                        "{what}: no application/json schema in the document"
                    )),
                }
            }
            At::Query => {
                // The query parameters as one object schema.
                let mut props = serde_json::Map::new();
                let mut required = Vec::new();
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["in"] == "query" {
                        let name = p["name"].as_str().unwrap_or_default().to_string();
                        if p["required"] == true {
                            required.push(Value::String(name.clone()));
                        }
                        props.insert(name, p["schema"].clone());
                    }
                }
                let schema = json!({"type": "object", "properties": props, "required": required});
                c.required_by_type = Some(removal_required(&u.samples));
                let schema: &'static Value = Box::leak(Box::new(schema));
                c.check(schema, &values, &mut Vec::new());
            }
        }
        errors.extend(c.errors);
    }

    // Every problem document is a ProblemDoc, and every JSON body has a type above.
    let values: Vec<&Value> = problem.all.iter().collect();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let m = method.to_uppercase();
            for (status, r) in op["responses"].as_object().into_iter().flatten() {
                for (ctype, content) in r["content"].as_object().into_iter().flatten() {
                    let what = format!("{m} {path} {status}");
                    if ctype == "application/problem+json" {
                        let mut c = Checker {
                            doc,
                            what,
                            errors: Vec::new(),
                            required_by_type: None,
                        };
                        c.check(&content["schema"], &values, &mut Vec::new());
                        errors.extend(c.errors);
                    } else if ctype.contains("json")
                        && !covered.contains(&(path.clone(), method.clone(), status.clone()))
                    {
                        errors.push(format!("{what}: a {ctype} body no fwseal-api type checks"));
                    }
                }
            }
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
                && !covered.contains(&(path.clone(), method.clone(), "request".into()))
            {
                errors.push(format!(
                    "{m} {path} request body: no fwseal-api type checks it"
                ));
            }
        }
    }
    errors.sort();
    errors.dedup();
    errors
}

#[test]
fn openapi_matches_the_api_types() {
    let errors = drift(&doc());
    assert!(
        errors.is_empty(),
        "docs/openapi.json drifted from fwseal-api ({} problems):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// The checker itself: a property the type does not emit, a key the schema lacks, a wrong
/// `required`, a wrong type and a missing enum value are each reported with their path.
#[test]
fn the_checker_names_the_path_that_drifted() {
    let mut d = doc();
    let job = &mut d["components"]["schemas"]["Job"];
    job["properties"]["color"] = json!({"type": "string"});
    job["properties"]
        .as_object_mut()
        .unwrap()
        .remove("input_len");
    job["properties"]["key_version"] = json!({"type": "integer"});
    job["properties"]["state"]["enum"]
        .as_array_mut()
        .unwrap()
        .retain(|v| v != "failed");
    let problem = &mut d["components"]["schemas"]["Problem"];
    problem["required"]
        .as_array_mut()
        .unwrap()
        .retain(|v| v != "detail");
    let errors = drift(&d).join("\n");
    for want in [
        "GET /v1/jobs/{id} 200: $.color: in the schema but never emitted by the type",
        "GET /v1/jobs/{id} 200: $.input_len: emitted by the type but not in the schema",
        "GET /v1/jobs/{id} 200: $.key_version: type: the schema says {\"integer\"}, the type emits {\"integer\", \"null\"}",
        "GET /v1/jobs/{id} 200: $.state: enum: the type emits \"failed\", the schema does not list it",
        "POST /v1/products/{product}/sign-batch 200: $.results[].body: ",
        "GET /v1/jobs 200: $.jobs[].color",
        "GET /v1/artifacts/{id} 404: $.detail: always emitted but not in the schema's `required`",
    ] {
        assert!(errors.contains(want), "missing {want:?} in:\n{errors}");
    }
}

/// A request body's `required` is what the server cannot do without.
#[test]
fn request_required_is_what_deserialization_needs() {
    let req = removal_required(&samples::<DigestSignRequest>());
    let top: BTreeSet<&str> = req
        .iter()
        .filter(|(p, _)| p.is_empty())
        .map(|(_, k)| k.as_str())
        .collect();
    assert_eq!(top, ["items"].into());
    let item: BTreeSet<&str> = req
        .iter()
        .filter(|(p, _)| p == &[Seg::Key("items".into()), Seg::Each])
        .map(|(_, k)| k.as_str())
        .collect();
    assert_eq!(
        item,
        ["digest", "format", "input_sha256", "mode", "name"].into()
    );
}

/// The format names the sign-params sample cycles through are exactly what the daemon accepts.
#[test]
fn format_names_are_what_from_name_accepts() {
    for n in FORMAT_NAMES {
        assert!(Format::from_name(n).is_some(), "{n}");
    }
    for f in formats() {
        assert!(FORMAT_NAMES.contains(&f.name()), "{f}");
    }
}

/// The problem codes are the ones docs/api.md documents.
#[test]
fn problem_codes_match_the_api_doc() {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
    let text = std::fs::read_to_string(p).expect("read docs/api.md");
    let documented: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            // | status | `code` | when |
            (cells.len() >= 4 && cells[1].len() == 3 && cells[1].parse::<u16>().is_ok())
                .then(|| cells[2].trim_matches('`'))
        })
        .collect();
    let ours: BTreeSet<&str> = codes::ALL.into_iter().collect();
    assert_eq!(documented, ours);
}

/// Types whose JSON must not change shape silently: a few exact serializations.
#[test]
fn wire_shapes() {
    let r = SignResponse::minimal();
    let v = serde_json::to_value(&r).unwrap();
    assert!(v.get("approvers").is_none(), "approvers omitted when empty");
    assert_eq!(v["links"]["self"], format!("/v1/artifacts/{ID}"));
    let j = serde_json::to_value(JobView::minimal()).unwrap();
    for k in ["version", "key_version", "reason", "artifact_id"] {
        assert!(j[k].is_null() && j.get(k).is_some(), "{k} is sent as null");
    }
    assert!(j["links"].get("artifact").is_none());
    assert_eq!(j["build"], json!({}));
    let p = ProblemDoc::new(404, codes::NO_SUCH_JOB, "No such job", "no job \"x\"");
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        json!({"type": "https://fwseal.dev/problems/no-such-job", "title": "No such job",
               "status": 404, "detail": "no job \"x\"", "code": "no-such-job"})
    );
    // An untagged batch body comes back as the variant it was.
    for it in BatchItem::full().into_iter().chain(batch_minimals()) {
        let back: BatchItem = serde_json::from_value(serde_json::to_value(&it).unwrap()).unwrap();
        assert_eq!(back, it);
    }
}

/// Every format, in the descriptor list's order.
fn formats() -> Vec<Format> {
    Format::all().collect()
}
