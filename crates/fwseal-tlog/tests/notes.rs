//! Signed checkpoints: hybrid signing and verification, the signed-note trust rules, and
//! strict rejection of malformed notes and checkpoint bodies with precise errors.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use fwseal_tlog::checkpoint::VerifyError;
use fwseal_tlog::note::{self, LineProblem, MAX_SIGNATURES};
use fwseal_tlog::{
    sign_checkpoint, verify_checkpoint, Checkpoint, CheckpointError, EcdsaP256NoteSigner,
    MlDsa65NoteSigner, NoteError, NoteSigner, SigType, TrustedKeys, VerifierKey, EMPTY_ROOT,
};
use p256::pkcs8::EncodePublicKey as _;

const ORIGIN: &str = "fwseal.example/log";

/// The spec test keys of `formats/signature-block.md`: RFC 6979 A.2.5 P-256, ML-DSA-65 seed
/// 00 01 … 1f.
fn ec() -> EcdsaP256NoteSigner {
    let d = hex::decode("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
        .expect("hex");
    EcdsaP256NoteSigner::new(
        ORIGIN,
        p256::ecdsa::SigningKey::from_slice(&d).expect("key"),
    )
    .expect("signer")
}

fn pq() -> MlDsa65NoteSigner {
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
    MlDsa65NoteSigner::from_seed(ORIGIN, &seed).expect("signer")
}

fn other_ec() -> EcdsaP256NoteSigner {
    EcdsaP256NoteSigner::new(
        "other.example/witness",
        p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("key"),
    )
    .expect("signer")
}

fn trusted() -> TrustedKeys {
    TrustedKeys::new(ORIGIN, vec![ec().verifier(), pq().verifier()])
}

const ROOT: [u8; 32] = [0x5a; 32];

fn signed() -> String {
    sign_checkpoint(ORIGIN, 42, &ROOT, &[&ec(), &pq()]).expect("sign")
}

fn note_err(note: &str) -> NoteError {
    match verify_checkpoint(note, &trusted()) {
        Err(VerifyError::Note(e)) => e,
        other => panic!("expected a note error, got {other:?}"),
    }
}

fn cp_err(text: &str) -> CheckpointError {
    Checkpoint::parse(text.as_bytes()).expect_err("should be refused")
}

#[test]
fn hybrid_round_trip() {
    let n = signed();
    let cp = verify_checkpoint(&n, &trusted()).expect("verify");
    assert_eq!(cp, Checkpoint::new(ORIGIN, 42, ROOT));
    let text = format!("{ORIGIN}\n42\n{}\n", B64.encode(ROOT));
    assert!(n.starts_with(&format!("{text}\n\u{2014} {ORIGIN} ")));
    assert_eq!(n.matches('\n').count(), 6);
    // Deterministic signers: the same note twice.
    assert_eq!(n, signed());
}

#[test]
fn key_ids_follow_the_documented_formulas() {
    use sha2::{Digest, Sha256};
    let spki = ec().verifier();
    let VerifierKey::EcdsaP256 { key, .. } = &spki else {
        panic!("not ecdsa")
    };
    let der = key.to_public_key_der().expect("der");
    let h = Sha256::digest(der.as_bytes());
    assert_eq!(ec().key_id(), u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
    let mut m = ORIGIN.as_bytes().to_vec();
    m.push(0x0a);
    m.push(0xff);
    m.extend_from_slice(b"fwseal/ml-dsa-65/v1");
    m.extend_from_slice(pq().public_key());
    let h = Sha256::digest(&m);
    assert_eq!(pq().key_id(), u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
    // And the key IDs are what the signature lines carry.
    let parsed = note::parse(signed().as_bytes()).expect("parse").signatures;
    assert_eq!(parsed[0].key_id, ec().key_id());
    assert_eq!(parsed[1].key_id, pq().key_id());
    assert_eq!(parsed[1].signature.len(), 3309);
    // A verifier built from the SPKI DER has the same ID.
    let v = VerifierKey::ecdsa_p256(ORIGIN, der.as_bytes()).expect("key");
    assert_eq!(v.key_id(), ec().key_id());
    let v = VerifierKey::ml_dsa_65(ORIGIN, pq().public_key()).expect("key");
    assert_eq!(v.key_id(), pq().key_id());
}

fn lines(n: &str) -> Vec<String> {
    n.split_inclusive('\n').map(str::to_owned).collect()
}

#[test]
fn both_halves_required_when_asked() {
    let l = lines(&signed());
    let ec_only: String = l[..5].concat();
    let pq_only: String = [&l[..4], &l[5..]].concat().concat();
    assert_eq!(note_err(&ec_only), NoteError::MissingHalf(SigType::MlDsa65));
    assert_eq!(
        note_err(&pq_only),
        NoteError::MissingHalf(SigType::EcdsaP256)
    );
    let mut relaxed = trusted();
    relaxed.require_hybrid = false;
    assert!(verify_checkpoint(&ec_only, &relaxed).is_ok());
    assert!(verify_checkpoint(&pq_only, &relaxed).is_ok());
    // Trusting only one key: the other line is ignored as unknown.
    let only_ec = TrustedKeys {
        require_hybrid: false,
        ..TrustedKeys::new(ORIGIN, vec![ec().verifier()])
    };
    assert!(verify_checkpoint(signed(), &only_ec).is_ok());
    assert_eq!(
        match verify_checkpoint(&pq_only, &only_ec) {
            Err(VerifyError::Note(e)) => e,
            other => panic!("{other:?}"),
        },
        NoteError::NoTrustedSignature
    );
}

#[test]
fn unknown_keys_are_ignored_and_known_keys_must_verify() {
    let text = format!("{ORIGIN}\n42\n{}\n", B64.encode(ROOT));
    // A cosignature by an unknown key, first: ignored.
    let n = note::sign_note(&text, &[&other_ec(), &ec(), &pq()]).expect("sign");
    assert!(verify_checkpoint(&n, &trusted()).is_ok());
    // Same name as a trusted key, different key ID: ignored (spec: name *and* ID).
    let l = lines(&signed());
    let raw = B64
        .decode(l[4].trim_end().rsplit(' ').next().expect("sig"))
        .expect("b64");
    let mut wrong_id = raw.clone();
    wrong_id[0] ^= 1;
    let renamed = format!("\u{2014} {ORIGIN} {}\n", B64.encode(&wrong_id));
    let n = [&l[..4], &[renamed], &l[4..]].concat().concat();
    assert!(verify_checkpoint(&n, &trusted()).is_ok());
    // Known (name, ID) with a bad signature: the whole note is refused.
    let mut bad = raw.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let n = [
        &l[..4],
        &[format!("\u{2014} {ORIGIN} {}\n", B64.encode(&bad))],
        &l[5..],
    ]
    .concat()
    .concat();
    assert!(matches!(
        note_err(&n),
        NoteError::BadSignature {
            alg: SigType::EcdsaP256,
            ..
        }
    ));
    // Twice the same trusted signature.
    let n = [&l[..], &l[4..5]].concat().concat();
    assert!(matches!(note_err(&n), NoteError::DuplicateSignature { .. }));
}

#[test]
fn tampered_text_fails_each_half() {
    let n = signed().replacen("\n42\n", "\n43\n", 1);
    assert!(matches!(
        note_err(&n),
        NoteError::BadSignature {
            alg: SigType::EcdsaP256,
            ..
        }
    ));
    let l = lines(&signed());
    // Same tampering, ML-DSA line first: the ML-DSA half is the one that fails.
    let n = [&l[..4], &l[5..6], &l[4..5]]
        .concat()
        .concat()
        .replacen("\n42\n", "\n43\n", 1);
    assert!(matches!(
        note_err(&n),
        NoteError::BadSignature {
            alg: SigType::MlDsa65,
            ..
        }
    ));
}

#[test]
fn origin_must_be_the_trusted_logs() {
    let other = TrustedKeys::new(
        "another.example/log",
        vec![ec().verifier(), pq().verifier()],
    );
    assert_eq!(
        verify_checkpoint(signed(), &other),
        Err(VerifyError::OriginMismatch {
            found: ORIGIN.into(),
            expected: "another.example/log".into()
        })
    );
}

#[test]
fn malformed_envelopes() {
    let good = signed();
    let sigline = |s: &str| format!("{ORIGIN}\n42\n{}\n\n{s}\n", B64.encode(ROOT));
    let line = 5;
    let bad_line = |problem| NoteError::BadLine { line, problem };
    let cases: Vec<(String, NoteError)> = vec![
        (good.trim_end().to_owned(), NoteError::NoFinalNewline),
        (good.replacen("\n\n", "\n", 1), NoteError::NoSeparator),
        (
            good.replacen("42\n", "42\r\n", 1),
            NoteError::ControlChar {
                at: 21,
                byte: b'\r',
            },
        ),
        (
            good.replacen("fwseal.example", "fwseal\texample", 1),
            NoteError::ControlChar { at: 6, byte: b'\t' },
        ),
        (format!("{good}\n"), NoteError::NoSignatures),
        (
            format!("\n\n{}", &good[good.find("\u{2014}").expect("dash")..]),
            NoteError::EmptyText,
        ),
        (
            sigline("- fwseal.example/log AAAAAAA="),
            bad_line(LineProblem::NoDash),
        ),
        (
            sigline("\u{2014}fwseal.example/log AAAAAAA="),
            bad_line(LineProblem::NoDash),
        ),
        (
            sigline("\u{2014} fwseal.example/log"),
            bad_line(LineProblem::NoSpace),
        ),
        (
            sigline("\u{2014}  AAAAAAA="),
            bad_line(LineProblem::EmptyName),
        ),
        (
            sigline("\u{2014} a+b AAAAAAA="),
            bad_line(LineProblem::BadName),
        ),
        (
            sigline("\u{2014} a\u{a0}b AAAAAAA="),
            bad_line(LineProblem::BadName),
        ),
        (
            sigline("\u{2014} a  AAAAAAA="),
            bad_line(LineProblem::BadName),
        ),
        (
            sigline("\u{2014} a AAAAAAA= "),
            bad_line(LineProblem::BadName),
        ),
        (
            sigline("\u{2014} a AAAAAAA"),
            bad_line(LineProblem::BadBase64),
        ),
        (
            sigline("\u{2014} a AAAAAAB="),
            bad_line(LineProblem::BadBase64),
        ),
        (
            sigline("\u{2014} a AAAA_AA="),
            bad_line(LineProblem::BadBase64),
        ),
        (
            sigline("\u{2014} a AAAAAA=="),
            bad_line(LineProblem::TooShort { len: 4 }),
        ),
    ];
    for (note, want) in cases {
        assert_eq!(note_err(&note), want, "{note:?}");
    }
    let mut bytes = good.clone().into_bytes();
    bytes[3] = 0xff;
    assert_eq!(
        verify_checkpoint(&bytes, &trusted()),
        Err(VerifyError::Note(NoteError::NotUtf8 { at: 3 }))
    );
    let many = format!(
        "{}{}",
        good,
        "\u{2014} x AAAAAAA=\n".repeat(MAX_SIGNATURES - 1)
    );
    assert_eq!(note_err(&many), NoteError::TooManySignatures);
    let huge = format!("{}\n{}", "a".repeat(note::MAX_NOTE_BYTES), &good);
    assert!(matches!(note_err(&huge), NoteError::TooLarge { .. }));
    // The text may contain blank lines: the *last* blank line separates. The checkpoint body
    // then refuses the empty line.
    let text = format!("{ORIGIN}\n42\n\n{}\n", B64.encode(ROOT));
    let n = note::sign_note(&text, &[&ec(), &pq()]).expect("sign");
    assert_eq!(
        verify_checkpoint(&n, &trusted()),
        Err(VerifyError::Checkpoint(CheckpointError::EmptyLine {
            line: 3
        }))
    );
}

#[test]
fn malformed_checkpoint_bodies() {
    let r = B64.encode(ROOT);
    let cases: Vec<(String, CheckpointError)> = vec![
        (
            format!("{ORIGIN}\n42\n"),
            CheckpointError::TooFewLines { got: 2 },
        ),
        (
            format!("\n42\n{r}\n"),
            CheckpointError::EmptyLine { line: 1 },
        ),
        (
            format!("{ORIGIN}\n42\n{r}\n\next\n"),
            CheckpointError::EmptyLine { line: 4 },
        ),
        (
            format!("{ORIGIN}\n042\n{r}\n"),
            CheckpointError::SizeLeadingZero("042".into()),
        ),
        (
            format!("{ORIGIN}\n00\n{r}\n"),
            CheckpointError::SizeLeadingZero("00".into()),
        ),
        (
            format!("{ORIGIN}\n+42\n{r}\n"),
            CheckpointError::SizeNotDecimal("+42".into()),
        ),
        (
            format!("{ORIGIN}\n-1\n{r}\n"),
            CheckpointError::SizeNotDecimal("-1".into()),
        ),
        (
            format!("{ORIGIN}\n 42\n{r}\n"),
            CheckpointError::SizeNotDecimal(" 42".into()),
        ),
        (
            format!("{ORIGIN}\n４２\n{r}\n"),
            CheckpointError::SizeNotDecimal("４２".into()),
        ),
        (
            format!("{ORIGIN}\n18446744073709551616\n{r}\n"),
            CheckpointError::SizeOverflow("18446744073709551616".into()),
        ),
        (
            format!("{ORIGIN}\n9223372036854775809\n{r}\n"),
            CheckpointError::SizeTooLarge(9223372036854775809),
        ),
        (
            format!("{ORIGIN}\n42\n{}\n", &r[..r.len() - 1]),
            CheckpointError::RootNotBase64,
        ),
        // Hex happens to be valid base64, of the wrong length.
        (
            format!("{ORIGIN}\n42\n{}\n", hex::encode(ROOT)),
            CheckpointError::RootLength(48),
        ),
        // Non-canonical: non-zero trailing bits ("Wlo=" is canonical, "Wlp=" decodes the same).
        (
            format!("{ORIGIN}\n42\n{}p=\n", &r[..r.len() - 2]),
            CheckpointError::RootNotBase64,
        ),
        (
            format!("{ORIGIN}\n42\n{}\n", B64.encode([1u8; 31])),
            CheckpointError::RootLength(31),
        ),
        (
            format!("{ORIGIN}\n42\n{r}"),
            CheckpointError::Text(NoteError::NoFinalNewline),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(cp_err(&text), want, "{text:?}");
    }
    // Extension lines are kept; size 0 with the empty root and 2^63 are fine.
    let t = format!(
        "{ORIGIN}\n0\n{}\nx-ext one\nsecond\n",
        B64.encode(EMPTY_ROOT)
    );
    let cp = Checkpoint::parse(t.as_bytes()).expect("parse");
    assert_eq!(cp.extensions, vec!["x-ext one", "second"]);
    assert_eq!(cp.to_text().expect("text"), t);
    assert!(t.contains("\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"));
    let big = format!("{ORIGIN}\n9223372036854775808\n{r}\n");
    assert_eq!(
        Checkpoint::parse(big.as_bytes()).expect("parse").size,
        1 << 63
    );
}

#[test]
fn signing_refuses_what_would_not_parse_back() {
    let root = [0u8; 32];
    assert!(sign_checkpoint("", 1, &root, &[&ec()]).is_err());
    assert!(matches!(
        sign_checkpoint("a\nb", 1, &root, &[&ec()]),
        Err(VerifyError::Checkpoint(CheckpointError::Newline))
    ));
    assert!(sign_checkpoint("a\u{7}", 1, &root, &[&ec()]).is_err());
    assert!(sign_checkpoint(ORIGIN, u64::MAX, &root, &[&ec()]).is_err());
    assert!(matches!(
        sign_checkpoint(ORIGIN, 1, &root, &[]),
        Err(VerifyError::Note(NoteError::NoSignatures))
    ));
    let mut cp = Checkpoint::new(ORIGIN, 1, root);
    cp.extensions.push(String::new());
    assert!(cp.sign(&[&ec()]).is_err());
    assert!(matches!(
        EcdsaP256NoteSigner::new(
            "a b",
            p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("k")
        ),
        Err(NoteError::BadKeyName(_))
    ));
    assert!(matches!(
        VerifierKey::ml_dsa_65(ORIGIN, &[0u8; 100]),
        Err(NoteError::BadKey {
            alg: SigType::MlDsa65,
            ..
        })
    ));
    assert!(matches!(
        VerifierKey::ecdsa_p256(ORIGIN, &[0u8; 10]),
        Err(NoteError::BadKey {
            alg: SigType::EcdsaP256,
            ..
        })
    ));
}
