//! SHA-2 states for the digests an image needs (only the algorithms actually present).

use crate::DigestAlg;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// A finished digest (up to 64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Digest {
    bytes: [u8; 64],
    len: u8,
}

impl Digest {
    pub(crate) fn new(b: &[u8]) -> Self {
        let mut d = Digest {
            bytes: [0; 64],
            len: 0,
        };
        let n = b.len().min(64);
        d.bytes[..n].copy_from_slice(&b[..n]);
        d.len = n as u8;
        d
    }
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// One running hash.
#[derive(Clone)]
pub(crate) enum Hasher {
    S256(Sha256),
    S384(Sha384),
    S512(Sha512),
}

impl Hasher {
    pub(crate) fn new(alg: DigestAlg) -> Self {
        match alg {
            DigestAlg::Sha256 => Hasher::S256(Sha256::new()),
            DigestAlg::Sha384 => Hasher::S384(Sha384::new()),
            DigestAlg::Sha512 => Hasher::S512(Sha512::new()),
        }
    }
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::S256(h) => h.update(data),
            Hasher::S384(h) => h.update(data),
            Hasher::S512(h) => h.update(data),
        }
    }
    pub(crate) fn finish(self) -> Digest {
        match self {
            Hasher::S256(h) => Digest::new(&h.finalize()),
            Hasher::S384(h) => Digest::new(&h.finalize()),
            Hasher::S512(h) => Digest::new(&h.finalize()),
        }
    }
}

/// One optional state per digest algorithm.
#[derive(Clone, Default)]
pub(crate) struct Hashers([Option<Hasher>; 3]);

impl Hashers {
    pub(crate) fn enable(&mut self, alg: DigestAlg) {
        let slot = &mut self.0[alg.index()];
        if slot.is_none() {
            *slot = Some(Hasher::new(alg));
        }
    }
    pub(crate) fn update(&mut self, data: &[u8]) {
        for h in self.0.iter_mut().flatten() {
            h.update(data);
        }
    }
    pub(crate) fn get(&self, alg: DigestAlg) -> Option<&Hasher> {
        self.0[alg.index()].as_ref()
    }
    /// Finish every state: digests indexed by [`DigestAlg::index`].
    pub(crate) fn finish(self) -> [Option<Digest>; 3] {
        let [a, b, c] = self.0;
        [
            a.map(Hasher::finish),
            b.map(Hasher::finish),
            c.map(Hasher::finish),
        ]
    }
}

/// SHA-256 over the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `alg` over the concatenation of `parts`.
pub(crate) fn digest(alg: DigestAlg, parts: &[&[u8]]) -> Digest {
    let mut h = Hasher::new(alg);
    for p in parts {
        h.update(p);
    }
    h.finish()
}

/// A SHA-256 fingerprint of a range read twice (MCUboot), to detect bytes that changed between
/// the reads.
pub(crate) type Fingerprint = Sha256;

pub(crate) fn fingerprint() -> Fingerprint {
    Sha256::new()
}

pub(crate) fn fingerprint_done(f: Fingerprint) -> [u8; 32] {
    f.finalize().into()
}
