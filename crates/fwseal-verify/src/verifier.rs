//! The streaming [`Verifier`]: the read protocol, shared state (the signature buffer, the
//! outcome of each signature) and the final verdict (precedence: structural → digests →
//! security counter → signatures → policy).

use crate::error::{Error, Reason};
use crate::keys::{self, Key};
use crate::{
    check, mcuboot, sigblock, Alg, Format, Policy, Read, Require, SignatureInfo, TrustedKey,
    Verified, MAX_SIGNATURE_LEN,
};
use core::mem::MaybeUninit;

/// One signature being collected (the only large buffer).
pub(crate) struct SigBuf {
    pub(crate) buf: [u8; MAX_SIGNATURE_LEN],
    pub(crate) len: usize,
}

impl SigBuf {
    /// Append what fits (callers never exceed the capacity; the rest is dropped).
    pub(crate) fn push(&mut self, data: &[u8]) {
        let room = self.buf.len() - self.len;
        let n = data.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
    }
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// What the signature checks found, kept until the verdict.
#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) classical: Option<SignatureInfo>,
    pub(crate) pq: Option<SignatureInfo>,
    pub(crate) verified: u16,
    /// First digest mismatch (reported before a missing digest).
    pub(crate) digest_mismatch: Option<Error>,
    /// First signature whose matched digest is absent.
    pub(crate) digest_missing: Option<Error>,
    /// First signature-level failure (unsupported, untrusted, invalid), in image order.
    pub(crate) sig_err: Option<Error>,
}

impl Outcome {
    pub(crate) fn mismatch(&mut self, e: Error) {
        self.digest_mismatch.get_or_insert(e);
    }
    pub(crate) fn missing(&mut self, e: Error) {
        self.digest_missing.get_or_insert(e);
    }
    pub(crate) fn sig_fail(&mut self, e: Error) {
        self.sig_err.get_or_insert(e);
    }
    pub(crate) fn sig_ok(&mut self, alg: Alg, key_id: [u8; 32]) {
        let info = SignatureInfo { alg, key_id };
        if alg.is_pq() {
            self.pq.get_or_insert(info);
        } else {
            self.classical.get_or_insert(info);
        }
        self.verified = self.verified.saturating_add(1);
    }
}

/// State shared by every format.
pub(crate) struct Ctx<'k> {
    pub(crate) keys: &'k [TrustedKey<'k>],
    pub(crate) policy: Policy,
    pub(crate) format: Format,
    /// Image length.
    pub(crate) n: u64,
    pub(crate) sig: SigBuf,
    pub(crate) out: Outcome,
}

impl<'k> Ctx<'k> {
    /// Verify the collected signature with `key` and record the result; `at` is the offset of
    /// the signature bytes (for the error).
    pub(crate) fn check(&mut self, key: &Key<'_>, msg: check::Message<'_>, at: u64) {
        if check::verify(key, msg, self.sig.bytes()) {
            self.out.sig_ok(key.alg, key.key_id());
        } else {
            self.out.sig_fail(invalid(key.alg, at));
        }
    }

    /// The final verdict after the digests were compared.
    pub(crate) fn verdict(
        &self,
        counter: Option<u32>,
        counter_at: Option<u64>,
    ) -> Result<(), Error> {
        if let Some(e) = self.out.digest_mismatch.or(self.out.digest_missing) {
            return Err(e);
        }
        if counter.unwrap_or(0) < self.policy.min_security_counter {
            return Err(Error::new(
                Reason::SecurityCounterTooLow,
                counter_at,
                "security counter is below the policy minimum (an absent counter is 0)",
            ));
        }
        if let Some(e) = self.out.sig_err {
            return Err(e);
        }
        let (need_c, need_pq) = match self.policy.require {
            Require::Both => (true, true),
            Require::PqOnly => (false, true),
            Require::ClassicalOnly => (true, false),
        };
        if need_pq && self.out.pq.is_none() {
            return Err(Error::new(
                Reason::PqSignatureMissing,
                None,
                "the policy requires a post-quantum signature and the image has none",
            ));
        }
        if need_c && self.out.classical.is_none() {
            return Err(Error::new(
                Reason::ClassicalSignatureMissing,
                None,
                "the policy requires a classical signature and the image has none",
            ));
        }
        Ok(())
    }

    pub(crate) fn verified(&self) -> Verified {
        Verified {
            format: self.format,
            classical: self.out.classical,
            pq: self.out.pq,
            signatures: self.out.verified,
            security_counter: None,
            image_version: None,
            product: None,
            image_range: None,
            fill: None,
            block_offset: None,
            covered_len: 0,
        }
    }
}

/// The error for a signature that does not verify.
pub(crate) fn invalid(alg: Alg, at: u64) -> Error {
    if alg.is_pq() {
        Error::at(
            Reason::PqSignatureInvalid,
            at,
            "post-quantum signature does not verify",
        )
    } else {
        Error::at(
            Reason::ClassicalSignatureInvalid,
            at,
            "classical signature does not verify",
        )
    }
}

// Both variants are about 2 KB and live inline: the verifier never allocates.
#[allow(clippy::large_enum_variant)]
enum State {
    Block(sigblock::Block),
    Mcu(mcuboot::Mcu),
}

/// A verification in progress. Fixed size ([`crate::CONTEXT_SIZE`]), no heap; see the crate
/// documentation for the read protocol.
///
/// After any error the verifier is finished: [`Verifier::next_read`] returns `None` and
/// [`Verifier::update`] / [`Verifier::finish`] return that error.
pub struct Verifier<'k> {
    ctx: Ctx<'k>,
    read: Option<Read>,
    done: u64,
    failed: Option<Error>,
    state: State,
}

impl<'k> Verifier<'k> {
    /// Start verifying an image of `image_len` bytes in `format` against `keys` under
    /// `policy`. Fails only if a trusted key is invalid (`invalid-key`); a verdict on the image
    /// (even one known from its length alone) comes from [`Verifier::update`] /
    /// [`Verifier::finish`].
    pub fn new(
        format: Format,
        image_len: u64,
        keys: &'k [TrustedKey<'k>],
        policy: Policy,
    ) -> Result<Self, Error> {
        for k in keys {
            keys::parse(k)?;
        }
        let mut v = Self::blank(format, image_len, keys, policy);
        v.start();
        Ok(v)
    }

    /// [`Verifier::new`] in place: the verifier is built in `slot` (static storage, a C
    /// context) instead of being returned by value, so no context-sized temporary is needed on
    /// the stack. Same result as `new`; on an error `slot` is left as it was.
    pub fn new_in<'s>(
        slot: &'s mut MaybeUninit<Verifier<'k>>,
        format: Format,
        image_len: u64,
        keys: &'k [TrustedKey<'k>],
        policy: Policy,
    ) -> Result<&'s mut Verifier<'k>, Error> {
        for k in keys {
            keys::parse(k)?;
        }
        let v = slot.write(Self::blank(format, image_len, keys, policy));
        v.start();
        Ok(v)
    }

    /// A verifier before its first read is computed (inlined, so that `new_in` writes it
    /// straight into the slot).
    #[inline(always)]
    fn blank(format: Format, image_len: u64, keys: &'k [TrustedKey<'k>], policy: Policy) -> Self {
        Verifier {
            ctx: Ctx {
                keys,
                policy,
                format,
                n: image_len,
                sig: SigBuf {
                    buf: [0; MAX_SIGNATURE_LEN],
                    len: 0,
                },
                out: Outcome::default(),
            },
            read: None,
            done: 0,
            failed: None,
            state: match format {
                Format::Mcuboot => State::Mcu(mcuboot::Mcu::new()),
                _ => State::Block(sigblock::Block::new(format)),
            },
        }
    }

    /// The first read (or the error known from the image length alone).
    fn start(&mut self) {
        let first = match &mut self.state {
            State::Mcu(m) => m.start(&mut self.ctx),
            State::Block(b) => b.start(&mut self.ctx),
        };
        match first {
            Ok(r) => self.read = r,
            Err(e) => self.failed = Some(e),
        }
    }

    /// The range to feed next (`None`: call [`Verifier::finish`]). While a read is partly fed,
    /// this is its remaining part.
    pub fn next_read(&self) -> Option<Read> {
        if self.failed.is_some() {
            return None;
        }
        self.read.map(|r| Read {
            offset: r.offset + self.done,
            len: r.len - self.done,
        })
    }

    /// Feed the next bytes of the current read (any length up to what [`Verifier::next_read`]
    /// names). Returns an error as soon as the image is known to be rejected for a structural
    /// reason; other verdicts come from [`Verifier::finish`].
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), Error> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = match self.read {
            Some(r) => r,
            None if chunk.is_empty() => return Ok(()),
            None => return self.fail(Error::misuse("update() after the last read")),
        };
        let len = chunk.len() as u64;
        if len > r.len - self.done {
            return self.fail(Error::misuse(
                "update() was given more bytes than next_read() asked for",
            ));
        }
        if chunk.is_empty() {
            return Ok(());
        }
        let off = r.offset + self.done;
        let res = match &mut self.state {
            State::Block(b) => b.feed(&mut self.ctx, off, chunk),
            State::Mcu(m) => m.feed(&mut self.ctx, off, chunk),
        };
        if let Err(e) = res {
            return self.fail(e);
        }
        self.done += len;
        if self.done == r.len {
            self.done = 0;
            let next = match &mut self.state {
                State::Block(b) => b.end_read(&mut self.ctx),
                State::Mcu(m) => m.end_read(&mut self.ctx),
            };
            match next {
                Ok(n) => self.read = n,
                Err(e) => return self.fail(e),
            }
        }
        Ok(())
    }

    /// The verdict, once [`Verifier::next_read`] returns `None`. It takes `&self` (nothing is
    /// moved out of the context) and gives the same answer each time it is called.
    pub fn finish(&self) -> Result<Verified, Error> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.read.is_some() {
            return Err(Error::misuse(
                "finish() before every range next_read() asked for was fed",
            ));
        }
        match &self.state {
            State::Block(b) => b.finish(&self.ctx),
            State::Mcu(m) => m.finish(&self.ctx),
        }
    }

    fn fail(&mut self, e: Error) -> Result<(), Error> {
        self.failed = Some(e);
        self.read = None;
        Err(e)
    }
}

/// Verify an image held in memory (`image` is the whole device image of `format`).
pub fn verify(
    format: Format,
    image: &[u8],
    keys: &[TrustedKey<'_>],
    policy: Policy,
) -> Result<Verified, Error> {
    // Built in place: the one-shot call holds one context on its stack, not two.
    let mut slot = MaybeUninit::uninit();
    let v = Verifier::new_in(&mut slot, format, image.len() as u64, keys, policy)?;
    while let Some(r) = v.next_read() {
        let range = usize::try_from(r.offset)
            .ok()
            .zip(usize::try_from(r.offset + r.len).ok())
            .and_then(|(s, e)| image.get(s..e))
            .ok_or(Error::misuse("read outside the image"))?;
        // An error is final; finish() below reports it.
        if v.update(range).is_err() {
            break;
        }
    }
    v.finish()
}
