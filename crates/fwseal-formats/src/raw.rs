//! Raw images (`.bin`, `.fw`): the whole file is the image.
//!
//! Embedded mode appends the fwseal signature block ([`crate::sigblock`]); re-signing strips an
//! existing block first. Detached mode signs the file digest (see [`crate::detached::message`]).

use crate::sigblock::{self, BlockPlan, Layout};
use crate::{
    Detection, Extracted, Format, FormatError, FormatSpec, Part, Preparation, Prepared, Request,
    StreamPreparer,
};
use fwseal_crypto::{MultiHasher, SigAlg};

/// How many trailing bytes are held back while streaming, so an existing signature block at the
/// end of the stream can be recognised and excluded without a second pass.
const HOLD: usize = sigblock::MAX_BLOCK_LEN;

/// The smallest raw image fwseal signs (bytes before any existing signature block): an empty
/// image is refused (`formats/raw.md`).
pub const MIN_LEN: u64 = 1;

/// The raw-image descriptor.
pub static SPEC: FormatSpec = FormatSpec {
    format: Format::Raw,
    name: "raw",
    aliases: &["bin", "fw"],
    extensions: &["bin", "fw"],
    id: 1,
    streams: true,
    summary: "raw binary",
    doc: "formats/raw.md",
    fixtures: "fixtures/raw",
    fuzz_target: "sigblock",
    carries_pq: true,
    rsa_scheme: None,
    default_classical: SigAlg::EcdsaP256Sha256,
    detect: |_| Detection::Fallback,
    hint_mismatch: || None,
    prepare: Preparation::Stream(|req| Box::new(RawStream::new(req))),
    extract,
    describe,
};

/// Describe a raw image.
pub fn describe(data: &[u8]) -> Result<String, FormatError> {
    Ok(format!("raw image, {} bytes", data.len()))
}

/// Streaming preparation of a raw image (constant memory: at most [`HOLD`] bytes buffered).
pub struct RawStream {
    req: Request,
    hasher: MultiHasher,
    hashed: u64,
    tail: Vec<u8>,
}

impl RawStream {
    /// New stream for `req`.
    pub fn new(req: Request) -> Self {
        let algs = req.digest_algs(req.options.raw_digest);
        RawStream {
            hasher: MultiHasher::new(&algs),
            req,
            hashed: 0,
            tail: Vec::new(),
        }
    }
}

impl StreamPreparer for RawStream {
    fn update(&mut self, chunk: &[u8]) -> Result<(), FormatError> {
        let hasher = &mut self.hasher;
        self.hashed += hold_back(&mut self.tail, chunk, HOLD, |b| hasher.update(b));
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Box<dyn Prepared>, FormatError> {
        // An already signed input: exclude its block (re-signing replaces it).
        let keep = match sigblock::find_trailer(Format::Raw, &self.tail)? {
            Some(start) => {
                sigblock::decode(Format::Raw, &self.tail[start..], self.hashed + start as u64)?;
                start
            }
            None => self.tail.len(),
        };
        self.hasher.update(&self.tail[..keep]);
        let len = self.hashed + keep as u64;
        if len < MIN_LEN {
            return Err(FormatError::at(
                Format::Raw,
                0,
                if keep < self.tail.len() {
                    "empty image: the input is only a signature block (a raw image needs at \
                     least 1 byte before it)"
                } else {
                    "empty image: a raw image needs at least 1 byte"
                },
            ));
        }
        Ok(Box::new(BlockPlan {
            format: Format::Raw,
            primary: self.req.options.raw_digest,
            req: self.req,
            digests: self.hasher.finish(),
            range: (0, len),
            fill: None,
            layout: Appended { len },
        }))
    }
}

/// Stream `chunk` through `tail`, which keeps the last `hold` bytes seen (a trailer that may
/// have to be excluded): bytes that can no longer be part of it go to `flush`, in order, and
/// their count is returned. Flushes only once more than `2 × hold` bytes are held, so the held
/// bytes move rarely; bytes that go straight from `chunk` to `flush` are not copied.
pub(crate) fn hold_back(
    tail: &mut Vec<u8>,
    chunk: &[u8],
    hold: usize,
    mut flush: impl FnMut(&[u8]),
) -> u64 {
    let total = tail.len() + chunk.len();
    if total <= 2 * hold {
        tail.extend_from_slice(chunk);
        return 0;
    }
    let n = total - hold;
    if n <= tail.len() {
        flush(&tail[..n]);
        tail.drain(..n);
        tail.extend_from_slice(chunk);
    } else {
        let from_chunk = n - tail.len();
        if !tail.is_empty() {
            flush(tail);
        }
        flush(&chunk[..from_chunk]);
        tail.clear();
        tail.extend_from_slice(&chunk[from_chunk..]);
    }
    n as u64
}

/// Raw layout: the block is appended to the image.
struct Appended {
    len: u64,
}

impl Layout for Appended {
    fn embed(&self, block: Vec<u8>) -> Result<Vec<Part>, FormatError> {
        Ok(vec![
            Part::Input {
                start: 0,
                len: self.len,
            },
            Part::Bytes(block),
        ])
    }
}

/// Extract the signature block of a signed raw image and check its digests.
pub fn extract(data: &[u8]) -> Result<Extracted, FormatError> {
    let start =
        sigblock::find_trailer(Format::Raw, data)?.ok_or(FormatError::NotSigned(Format::Raw))?;
    let d = sigblock::decode(Format::Raw, &data[start..], start as u64)?;
    let body = &data[..start];
    sigblock::check_digests(Format::Raw, &d, start as u64, (0, start as u64), |a| {
        a.hash(body)
    })?;
    d.extracted()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{assemble, detached, prepare, prepare_stream, sign_prepared, Mode};
    use fwseal_crypto::{soft::SoftKey, DigestAlg, SignatureSet, SignedMessage, Signer};

    fn keys() -> (SoftKey, SoftKey) {
        (
            SoftKey::generate(SigAlg::EcdsaP256Sha256).expect("ec"),
            SoftKey::generate(SigAlg::MlDsa65).expect("pq"),
        )
    }

    fn sign(data: &[u8], mode: Mode, k: &(SoftKey, SoftKey)) -> (Box<dyn Prepared>, SignatureSet) {
        let req = Request::hybrid(SigAlg::EcdsaP256Sha256, SigAlg::MlDsa65, mode, "widget");
        let plan = prepare(Format::Raw, data, &req).expect("prepare");
        let set = sign_prepared(
            plan.as_ref(),
            Some(&k.0 as &dyn Signer),
            Some(&k.1 as &dyn Signer),
            vec![],
        )
        .expect("sign");
        (plan, set)
    }

    #[test]
    fn embedded_round_trip_and_resign_replaces() {
        let k = keys();
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let (plan, set) = sign(&data, Mode::Embedded, &k);
        assert_eq!(plan.digest().1, DigestAlg::Sha256.hash(&data));
        let signed = assemble(&data, &plan.embed(&set).expect("embed")).expect("assemble");
        assert_eq!(&signed[..data.len()], &data[..]);
        let ex = extract(&signed).expect("extract");
        assert_eq!(ex.signatures.len(), 2);
        for s in &ex.signatures {
            let pk = if s.alg == SigAlg::MlDsa65 {
                k.1.public_key()
            } else {
                k.0.public_key()
            };
            pk.verify_bytes(&s.message, &s.bytes).expect("verifies");
        }
        // Re-sign the signed image: the old block is replaced, not stacked.
        let (plan2, set2) = sign(&signed, Mode::Embedded, &k);
        assert_eq!(plan2.digest().1, DigestAlg::Sha256.hash(&data));
        let resigned = assemble(&signed, &plan2.embed(&set2).expect("embed")).expect("assemble");
        assert_eq!(resigned.len(), signed.len());
        // Tampering with the body is caught by the digest check.
        let mut bad = signed.clone();
        bad[10] ^= 1;
        assert!(matches!(extract(&bad), Err(FormatError::Malformed { .. })));
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..(3 * HOLD + 123)).map(|i| (i % 251) as u8).collect();
        let req = Request::hybrid(
            SigAlg::EcdsaP256Sha256,
            SigAlg::MlDsa65,
            Mode::Detached,
            "p",
        );
        let one = prepare(Format::Raw, &data, &req).expect("one");
        let mut s = prepare_stream(Format::Raw, &req, u64::MAX).expect("stream");
        for c in data.chunks(65_537) {
            s.update(c).expect("update");
        }
        let two = s.finish().expect("finish");
        assert_eq!(one.digest(), two.digest());
        assert_eq!(
            one.pq_message(SigAlg::MlDsa65).expect("m"),
            two.pq_message(SigAlg::MlDsa65).expect("m")
        );
    }

    #[test]
    fn detached_classical_is_plain_sha256_ecdsa() {
        let k = keys();
        let data = b"hello firmware".to_vec();
        let (plan, set) = sign(&data, Mode::Detached, &k);
        let msg = SignedMessage::Bytes(data.clone());
        k.0.public_key()
            .verify(&msg, &set.signatures[0])
            .expect("plain ECDSA-SHA256 over the file");
        let doc = plan.detached(&set).expect("doc");
        assert_eq!(doc.digests.len(), 2);
        let back = detached::DetachedDoc::from_json(doc.to_json().as_bytes()).expect("parse");
        assert_eq!(back, doc);
    }

    #[test]
    fn unsigned_is_not_signed() {
        assert!(matches!(
            extract(b"plain"),
            Err(FormatError::NotSigned(Format::Raw))
        ));
    }

    #[test]
    fn hold_back_keeps_the_last_bytes_and_flushes_the_rest_in_order() {
        let hold = 1000;
        let input: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 253) as u8).collect();
        // Chunk sizes below, at and above the hold, and around twice it.
        for sizes in [
            vec![1],
            vec![999, 1000, 1001],
            vec![1999, 2000, 2001, 3],
            vec![5000],
            vec![17, 2500, 1, 700],
        ] {
            let (mut tail, mut out, mut counted) = (Vec::new(), Vec::new(), 0u64);
            let mut rest = &input[..];
            for &n in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (c, r) = rest.split_at(n.min(rest.len()));
                counted += hold_back(&mut tail, c, hold, |b| out.extend_from_slice(b));
                rest = r;
                let seen = input.len() - rest.len();
                assert_eq!(counted as usize, out.len(), "{sizes:?}");
                assert!(
                    tail.len() >= hold.min(seen),
                    "{sizes:?}: tail {}",
                    tail.len()
                );
                assert!(tail.len() <= 2 * hold, "{sizes:?}: tail {}", tail.len());
                out.extend_from_slice(&tail);
                assert_eq!(out, input[..seen], "{sizes:?}");
                out.truncate(counted as usize);
            }
        }
    }
}
