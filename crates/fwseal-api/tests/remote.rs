//! The hash-locally driver (`fwseal_api::digest::sign_remote`, formerly in fwseal-formats)
//! against an in-process signer that speaks the wire types: the images it produces carry the
//! same verifiable signatures as `sign_prepared`'s, it needs one request per batch (two with an
//! MCUboot embedded hybrid image), and it refuses answers that do not fit what it asked for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::*;
use fwseal_api::digest::{
    sign_remote, BuildClaims, DigestItemResult, DigestSignRequest, DigestSignResponse, LocalItem,
    RemoteError,
};
use fwseal_crypto::{soft::SoftKey, SigAlg, Signer};
use fwseal_formats::{assemble, prepare, Format, Mode};

#[derive(Debug)]
struct Refused;
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}
impl std::error::Error for Refused {}

/// What a daemon does with a request (decode, sign with the product keys), minus HTTP.
fn answer(keys: &Keys, req: &DigestSignRequest) -> DigestSignResponse {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    DigestSignResponse {
        items: req
            .items
            .iter()
            .map(|it| {
                let mut signatures = Vec::new();
                let mut public_keys = Vec::new();
                for m in &it.sign {
                    let k: &SoftKey = if m.alg == keys.pq.alg() {
                        &keys.pq
                    } else {
                        &keys.classical
                    };
                    signatures.push(k.sign(&m.decode().expect("well-formed message")).unwrap());
                    public_keys.push(b64(k.public_key().spki_der()));
                }
                DigestItemResult {
                    name: it.name.clone(),
                    signatures,
                    public_keys,
                    certificates: vec![],
                    complete: true,
                    provenance: None,
                    timestamps: vec![],
                }
            })
            .collect(),
    }
}

const IMAGES: [(&str, Format); 5] = [
    ("raw/sample.bin", Format::Raw),
    ("mcuboot/unsigned-h200.img", Format::Mcuboot),
    ("hex/multi.hex", Format::Ihex),
    ("dfu/dfuse.dfu", Format::Dfu),
    ("dfu/dfu11.dfu", Format::Dfu),
];

fn local_items(keys: &Keys, mode: Mode, which: &[(&str, Format)]) -> Vec<(Vec<u8>, LocalItem)> {
    which
        .iter()
        .map(|(f, format)| {
            let data = fixture(f);
            let plan = prepare(*format, &data, &keys.request(mode)).expect("prepare");
            let item = LocalItem {
                name: f.to_string(),
                input_sha256: fwseal_crypto::DigestAlg::Sha256
                    .hash(&data)
                    .try_into()
                    .unwrap(),
                version: None,
                plan,
            };
            (data, item)
        })
        .collect()
}

#[test]
fn batch_signs_every_streamable_format_in_one_or_two_requests() {
    let keys = Keys::default_hybrid();
    for mode in [Mode::Embedded, Mode::Detached] {
        let (datas, items): (Vec<Vec<u8>>, Vec<LocalItem>) =
            local_items(&keys, mode, &IMAGES).into_iter().unzip();
        let mut calls = 0;
        let signed = sign_remote(&items, &BuildClaims::default(), |req| {
            calls += 1;
            Ok::<_, Refused>(answer(&keys, req))
        })
        .expect("remote signing");
        // MCUboot embedded hybrid: its classical half covers the PQ TLV, so a second request.
        assert_eq!(
            calls,
            if mode == Mode::Embedded { 2 } else { 1 },
            "{mode:?}"
        );
        for ((data, item), rs) in datas.iter().zip(&items).zip(&signed) {
            assert_eq!(rs.set.signatures.len(), 2);
            assert_eq!(
                rs.set.signatures[0].alg,
                SigAlg::EcdsaP256Sha256,
                "classical first"
            );
            match mode {
                Mode::Embedded => {
                    let out = assemble(data, &item.plan.embed(&rs.set).unwrap()).unwrap();
                    let format = item.plan.format();
                    assert_eq!(keys.verify_extracted(format, &out), 2, "{}", item.name);
                    // Same digest as an image signed in-process with the same plan.
                    let direct = keys.embed(format, data, &keys.request(mode), vec![]);
                    assert_eq!(
                        fwseal_formats::extract(format, &out).unwrap().digest,
                        fwseal_formats::extract(format, &direct).unwrap().digest,
                        "{}",
                        item.name
                    );
                }
                Mode::Detached => {
                    let doc = item.plan.detached(&rs.set).unwrap();
                    assert_eq!(doc.signatures.len(), 2);
                }
            }
        }
    }
}

#[test]
fn answers_that_do_not_fit_the_request_are_refused() {
    let keys = Keys::default_hybrid();
    let other = Keys::default_hybrid();
    let items = |mode| {
        local_items(&keys, mode, &[("raw/sample.bin", Format::Raw)])
            .into_iter()
            .map(|(_, i)| i)
            .collect::<Vec<_>>()
    };
    let expect_answer_error = |r: Result<_, RemoteError<Refused>>, what: &str| match r {
        Err(RemoteError::Answer(m)) => m,
        Err(e) => panic!("{what}: wrong error {e}"),
        Ok(_) => panic!("{what}: accepted"),
    };

    // Signed by a different key than the one it names.
    let r = sign_remote(&items(Mode::Embedded), &BuildClaims::default(), |req| {
        let mut a = answer(&other, req);
        a.items[0].public_keys = answer(&keys, req).items[0].public_keys.clone();
        Ok::<_, Refused>(a)
    });
    let m = expect_answer_error(r, "foreign key");
    assert!(
        m.contains("does not match") || m.contains("signature"),
        "{m}"
    );

    // A valid signature over a different message.
    let r = sign_remote(&items(Mode::Embedded), &BuildClaims::default(), |req| {
        let mut req2 = req.clone();
        req2.items[0].sign[1] = fwseal_api::digest::WireMessage::new(
            SigAlg::EcdsaP256Sha256,
            &fwseal_crypto::SignedMessage::Prehashed {
                alg: fwseal_crypto::DigestAlg::Sha256,
                digest: vec![7; 32],
            },
        );
        Ok::<_, Refused>(answer(&keys, &req2))
    });
    expect_answer_error(r, "other message");

    // Missing signatures.
    let r = sign_remote(&items(Mode::Detached), &BuildClaims::default(), |req| {
        let mut a = answer(&keys, req);
        a.items[0].signatures.pop();
        a.items[0].public_keys.pop();
        Ok::<_, Refused>(a)
    });
    let m = expect_answer_error(r, "missing");
    assert!(m.contains("1 signatures for 2 messages"), "{m}");

    // The transport's refusal is passed through.
    let r = sign_remote(&items(Mode::Detached), &BuildClaims::default(), |_| {
        Err::<DigestSignResponse, _>(Refused)
    });
    assert!(matches!(r, Err(RemoteError::Send(Refused))));
}

#[test]
fn wire_messages_are_checked() {
    use fwseal_api::digest::WireMessage;
    let ok = WireMessage {
        alg: SigAlg::EcdsaP256Sha256,
        prehashed: Some("ab".repeat(32)),
        bytes: None,
    };
    assert!(ok.decode().is_ok());
    let short = WireMessage {
        prehashed: Some("ab".repeat(31)),
        ..ok.clone()
    };
    assert!(short.decode().unwrap_err().contains("32 bytes"));
    let both = WireMessage {
        bytes: Some("AAAA".into()),
        ..ok.clone()
    };
    assert!(both.decode().unwrap_err().contains("exactly one"));
    let pq_prehash = WireMessage {
        alg: SigAlg::MlDsa65,
        ..ok.clone()
    };
    assert!(pq_prehash.decode().unwrap_err().contains("not a prehash"));
    let huge = WireMessage {
        alg: SigAlg::MlDsa65,
        prehashed: None,
        bytes: Some(base64::engine::general_purpose::STANDARD.encode(vec![0u8; 65 << 10])),
    };
    assert!(huge.decode().unwrap_err().contains("bytes"));
}
