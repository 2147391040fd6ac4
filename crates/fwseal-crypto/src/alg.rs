//! Algorithm identifiers.
//!
//! The numeric ids are part of the wire format (`formats/signature-block.md`) and must never be
//! renumbered. The string names are used in JSON documents and configuration.

use crate::parallel::ParallelStates;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// A hash function used to build a format-aware digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DigestAlg {
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// SHA-384 (FIPS 180-4).
    Sha384,
    /// SHA-512 (FIPS 180-4).
    Sha512,
}

#[allow(clippy::len_without_is_empty)] // len() is the output size; a digest is never empty
impl DigestAlg {
    /// All digest algorithms, in id order.
    pub const ALL: [DigestAlg; 3] = [DigestAlg::Sha256, DigestAlg::Sha384, DigestAlg::Sha512];

    /// Wire id (signature block).
    pub fn id(self) -> u8 {
        match self {
            DigestAlg::Sha256 => 1,
            DigestAlg::Sha384 => 2,
            DigestAlg::Sha512 => 3,
        }
    }

    /// Inverse of [`DigestAlg::id`].
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.id() == id)
    }

    /// Output length in bytes.
    pub fn len(self) -> usize {
        match self {
            DigestAlg::Sha256 => 32,
            DigestAlg::Sha384 => 48,
            DigestAlg::Sha512 => 64,
        }
    }

    /// Name as used in JSON and configuration (`sha256`, `sha384`, `sha512`).
    pub fn name(self) -> &'static str {
        match self {
            DigestAlg::Sha256 => "sha256",
            DigestAlg::Sha384 => "sha384",
            DigestAlg::Sha512 => "sha512",
        }
    }

    /// Parse a name as produced by [`DigestAlg::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }

    /// One-shot hash.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        let mut h = Hasher::new(self);
        h.update(data);
        h.finish()
    }
}

impl std::fmt::Display for DigestAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An incremental hasher for any [`DigestAlg`] (cloneable, so a state can be forked).
///
/// SHA-256 is RustCrypto's `sha2` (SHA-NI where the CPU has it). SHA-384 and SHA-512 — x86-64
/// has no instructions for them, so they are the slow half of a hybrid request — come from the
/// fastest maintained backend built in: the system OpenSSL (feature `openssl`, on by default:
/// its AVX2 code path, ~1.4× the others on this project's bench machine, BENCHMARKS.md), else
/// AWS-LC (`aws-lc-rs`, feature `aws-lc`), else `sha2`. Every backend computes the same
/// function; tests check each against `sha2`.
#[derive(Clone)]
pub struct Hasher(HasherState);

#[derive(Clone)]
enum HasherState {
    Sha256(sha2::Sha256),
    #[cfg(feature = "openssl")]
    OsslSha384(openssl::sha::Sha384),
    #[cfg(feature = "openssl")]
    OsslSha512(openssl::sha::Sha512),
    #[cfg(all(feature = "aws-lc", not(feature = "openssl")))]
    AwsLc(DigestAlg, aws_lc_rs::digest::Context),
    #[cfg(not(any(feature = "aws-lc", feature = "openssl")))]
    Sha384(sha2::Sha384),
    #[cfg(not(any(feature = "aws-lc", feature = "openssl")))]
    Sha512(sha2::Sha512),
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Hasher").field(&self.alg()).finish()
    }
}

impl Hasher {
    /// A fresh state.
    pub fn new(alg: DigestAlg) -> Self {
        Hasher(match alg {
            DigestAlg::Sha256 => HasherState::Sha256(sha2::Sha256::new()),
            #[cfg(feature = "openssl")]
            DigestAlg::Sha384 => HasherState::OsslSha384(openssl::sha::Sha384::new()),
            #[cfg(feature = "openssl")]
            DigestAlg::Sha512 => HasherState::OsslSha512(openssl::sha::Sha512::new()),
            #[cfg(all(feature = "aws-lc", not(feature = "openssl")))]
            DigestAlg::Sha384 => HasherState::AwsLc(
                alg,
                aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA384),
            ),
            #[cfg(all(feature = "aws-lc", not(feature = "openssl")))]
            DigestAlg::Sha512 => HasherState::AwsLc(
                alg,
                aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA512),
            ),
            #[cfg(not(any(feature = "aws-lc", feature = "openssl")))]
            DigestAlg::Sha384 => HasherState::Sha384(sha2::Sha384::new()),
            #[cfg(not(any(feature = "aws-lc", feature = "openssl")))]
            DigestAlg::Sha512 => HasherState::Sha512(sha2::Sha512::new()),
        })
    }

    /// Which algorithm this state computes.
    pub fn alg(&self) -> DigestAlg {
        match &self.0 {
            HasherState::Sha256(_) => DigestAlg::Sha256,
            #[cfg(feature = "openssl")]
            HasherState::OsslSha384(_) => DigestAlg::Sha384,
            #[cfg(feature = "openssl")]
            HasherState::OsslSha512(_) => DigestAlg::Sha512,
            #[cfg(all(feature = "aws-lc", not(feature = "openssl")))]
            HasherState::AwsLc(a, _) => *a,
            #[cfg(not(any(feature = "aws-lc", feature = "openssl")))]
            HasherState::Sha384(_) => DigestAlg::Sha384,
            #[cfg(not(any(feature = "aws-lc", feature = "openssl")))]
            HasherState::Sha512(_) => DigestAlg::Sha512,
        }
    }

    /// Absorb bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            HasherState::Sha256(h) => h.update(data),
            #[cfg(feature = "openssl")]
            HasherState::OsslSha384(h) => h.update(data),
            #[cfg(feature = "openssl")]
            HasherState::OsslSha512(h) => h.update(data),
            #[cfg(all(feature = "aws-lc", not(feature = "openssl")))]
            HasherState::AwsLc(_, h) => h.update(data),
            #[cfg(not(any(feature = "aws-lc", feature = "openssl")))]
            HasherState::Sha384(h) => h.update(data),
            #[cfg(not(any(feature = "aws-lc", feature = "openssl")))]
            HasherState::Sha512(h) => h.update(data),
        }
    }

    /// Finish and return the digest.
    pub fn finish(self) -> Vec<u8> {
        match self.0 {
            HasherState::Sha256(h) => h.finalize().to_vec(),
            #[cfg(feature = "openssl")]
            HasherState::OsslSha384(h) => h.finish().to_vec(),
            #[cfg(feature = "openssl")]
            HasherState::OsslSha512(h) => h.finish().to_vec(),
            #[cfg(all(feature = "aws-lc", not(feature = "openssl")))]
            HasherState::AwsLc(_, h) => h.finish().as_ref().to_vec(),
            #[cfg(not(any(feature = "aws-lc", feature = "openssl")))]
            HasherState::Sha384(h) => h.finalize().to_vec(),
            #[cfg(not(any(feature = "aws-lc", feature = "openssl")))]
            HasherState::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// Several digests of the same byte stream, computed in one pass: one state on the caller's
/// thread, the others on persistent worker threads once the stream is large
/// ([`ParallelStates`]). Cloning forks the stream.
#[derive(Clone, Debug, Default)]
pub struct MultiHasher {
    states: ParallelStates,
}

fn dedup(algs: &[DigestAlg]) -> Vec<Hasher> {
    let mut states: Vec<Hasher> = Vec::new();
    for &a in algs {
        if !states.iter().any(|s| s.alg() == a) {
            states.push(Hasher::new(a));
        }
    }
    states
}

impl MultiHasher {
    /// Hash with every algorithm in `algs` (duplicates are ignored).
    pub fn new(algs: &[DigestAlg]) -> Self {
        MultiHasher {
            states: ParallelStates::new(dedup(algs)),
        }
    }

    /// Like [`MultiHasher::new`], but every state is hashed off the caller's thread (for callers
    /// whose own work, e.g. decoding text, is the bottleneck).
    pub fn offloaded(algs: &[DigestAlg]) -> Self {
        MultiHasher {
            states: ParallelStates::offloaded(dedup(algs)),
        }
    }

    /// Continue from existing states (e.g. states that already absorbed a header).
    pub fn from_states(states: Vec<Hasher>) -> Self {
        MultiHasher {
            states: ParallelStates::new(states),
        }
    }

    /// Absorb bytes into every state.
    pub fn update(&mut self, data: &[u8]) {
        self.states.update(data);
    }

    /// The states after every byte absorbed (joins the worker threads).
    pub fn into_states(self) -> Vec<Hasher> {
        self.states.into_states()
    }

    /// Finish every state.
    pub fn finish(self) -> Digests {
        Digests(
            self.into_states()
                .into_iter()
                .map(|s| (s.alg(), s.finish()))
                .collect(),
        )
    }
}

/// The result of a [`MultiHasher`]: one digest per algorithm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Digests(pub Vec<(DigestAlg, Vec<u8>)>);

impl Digests {
    /// The digest for `alg`, if it was computed.
    pub fn get(&self, alg: DigestAlg) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, d)| d.as_slice())
    }
}

/// Whether an algorithm is classical (pre-quantum) or post-quantum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// ECDSA, RSA.
    Classical,
    /// ML-DSA, SLH-DSA.
    PostQuantum,
}

/// A signature algorithm, including the hash it is used with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigAlg {
    /// ECDSA on P-256 with SHA-256. Signature: DER `Ecdsa-Sig-Value`.
    #[serde(rename = "ecdsa-p256-sha256")]
    EcdsaP256Sha256,
    /// ECDSA on P-384 with SHA-384. Signature: DER `Ecdsa-Sig-Value`.
    #[serde(rename = "ecdsa-p384-sha384")]
    EcdsaP384Sha384,
    /// RSASSA-PSS, SHA-256, MGF1-SHA-256, salt length 32. Signature: big-endian, modulus length.
    #[serde(rename = "rsa-pss-sha256")]
    RsaPssSha256,
    /// RSASSA-PKCS1-v1_5 with SHA-256. Signature: big-endian, modulus length.
    #[serde(rename = "rsa-pkcs1-sha256")]
    RsaPkcs1Sha256,
    /// ML-DSA-44 (FIPS 204), empty context.
    #[serde(rename = "ml-dsa-44")]
    MlDsa44,
    /// ML-DSA-65 (FIPS 204), empty context.
    #[serde(rename = "ml-dsa-65")]
    MlDsa65,
    /// ML-DSA-87 (FIPS 204), empty context.
    #[serde(rename = "ml-dsa-87")]
    MlDsa87,
    /// SLH-DSA-SHA2-128s (FIPS 205), pure mode, empty context.
    #[serde(rename = "slh-dsa-sha2-128s")]
    SlhDsaSha2_128s,
    /// SLH-DSA-SHA2-128f (FIPS 205), pure mode, empty context.
    #[serde(rename = "slh-dsa-sha2-128f")]
    SlhDsaSha2_128f,
    /// SLH-DSA-SHA2-192s (FIPS 205), pure mode, empty context.
    #[serde(rename = "slh-dsa-sha2-192s")]
    SlhDsaSha2_192s,
    /// SLH-DSA-SHA2-256s (FIPS 205), pure mode, empty context.
    #[serde(rename = "slh-dsa-sha2-256s")]
    SlhDsaSha2_256s,
}

impl SigAlg {
    /// Every algorithm, in id order.
    pub const ALL: [SigAlg; 11] = [
        SigAlg::EcdsaP256Sha256,
        SigAlg::EcdsaP384Sha384,
        SigAlg::RsaPssSha256,
        SigAlg::RsaPkcs1Sha256,
        SigAlg::MlDsa44,
        SigAlg::MlDsa65,
        SigAlg::MlDsa87,
        SigAlg::SlhDsaSha2_128s,
        SigAlg::SlhDsaSha2_128f,
        SigAlg::SlhDsaSha2_192s,
        SigAlg::SlhDsaSha2_256s,
    ];

    /// Wire id (signature block, `formats/signature-block.md`).
    pub fn id(self) -> u16 {
        match self {
            SigAlg::EcdsaP256Sha256 => 0x0001,
            SigAlg::EcdsaP384Sha384 => 0x0002,
            SigAlg::RsaPssSha256 => 0x0010,
            SigAlg::RsaPkcs1Sha256 => 0x0011,
            SigAlg::MlDsa44 => 0x0101,
            SigAlg::MlDsa65 => 0x0102,
            SigAlg::MlDsa87 => 0x0103,
            SigAlg::SlhDsaSha2_128s => 0x0201,
            SigAlg::SlhDsaSha2_128f => 0x0202,
            SigAlg::SlhDsaSha2_192s => 0x0203,
            SigAlg::SlhDsaSha2_256s => 0x0205,
        }
    }

    /// Inverse of [`SigAlg::id`].
    pub fn from_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.id() == id)
    }

    /// Name used in JSON and configuration (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            SigAlg::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            SigAlg::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            SigAlg::RsaPssSha256 => "rsa-pss-sha256",
            SigAlg::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            SigAlg::MlDsa44 => "ml-dsa-44",
            SigAlg::MlDsa65 => "ml-dsa-65",
            SigAlg::MlDsa87 => "ml-dsa-87",
            SigAlg::SlhDsaSha2_128s => "slh-dsa-sha2-128s",
            SigAlg::SlhDsaSha2_128f => "slh-dsa-sha2-128f",
            SigAlg::SlhDsaSha2_192s => "slh-dsa-sha2-192s",
            SigAlg::SlhDsaSha2_256s => "slh-dsa-sha2-256s",
        }
    }

    /// Parse a name as produced by [`SigAlg::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Classical or post-quantum.
    pub fn family(self) -> Family {
        match self {
            SigAlg::EcdsaP256Sha256
            | SigAlg::EcdsaP384Sha384
            | SigAlg::RsaPssSha256
            | SigAlg::RsaPkcs1Sha256 => Family::Classical,
            _ => Family::PostQuantum,
        }
    }

    /// The digest algorithm whose strength matches this signature algorithm.
    ///
    /// Classical algorithms use their own hash. Post-quantum algorithms sign a message that
    /// embeds a digest of the image; that digest is SHA-256 for category 1/2 parameter sets
    /// (ML-DSA-44, SLH-DSA-128) and SHA-512 for category 3 and above (ML-DSA-65/87,
    /// SLH-DSA-192/256), so the digest is never the weakest link.
    pub fn digest_alg(self) -> DigestAlg {
        match self {
            SigAlg::EcdsaP256Sha256 | SigAlg::RsaPssSha256 | SigAlg::RsaPkcs1Sha256 => {
                DigestAlg::Sha256
            }
            SigAlg::EcdsaP384Sha384 => DigestAlg::Sha384,
            SigAlg::MlDsa44 | SigAlg::SlhDsaSha2_128s | SigAlg::SlhDsaSha2_128f => {
                DigestAlg::Sha256
            }
            SigAlg::MlDsa65
            | SigAlg::MlDsa87
            | SigAlg::SlhDsaSha2_192s
            | SigAlg::SlhDsaSha2_256s => DigestAlg::Sha512,
        }
    }

    /// Signature length in bytes when it is fixed (post-quantum algorithms). ECDSA (DER) and RSA
    /// (modulus-dependent) return `None`.
    pub fn fixed_signature_len(self) -> Option<usize> {
        match self {
            SigAlg::MlDsa44 => Some(2420),
            SigAlg::MlDsa65 => Some(3309),
            SigAlg::MlDsa87 => Some(4627),
            SigAlg::SlhDsaSha2_128s => Some(7856),
            SigAlg::SlhDsaSha2_128f => Some(17088),
            SigAlg::SlhDsaSha2_192s => Some(16224),
            SigAlg::SlhDsaSha2_256s => Some(29792),
            _ => None,
        }
    }
}

impl std::fmt::Display for SigAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SigAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SigAlg::from_name(s).ok_or_else(|| format!("unknown signature algorithm {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PARALLEL_UPDATE_MIN;

    /// The reference: RustCrypto's one-shot digests.
    fn reference(alg: DigestAlg, data: &[u8]) -> Vec<u8> {
        match alg {
            DigestAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            DigestAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
            DigestAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// A small deterministic generator (xorshift64*), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Every non-empty combination of the digest algorithms.
    fn combinations() -> Vec<Vec<DigestAlg>> {
        (1u8..8)
            .map(|m| {
                DigestAlg::ALL
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| m & (1 << i) != 0)
                    .map(|(_, &a)| a)
                    .collect()
            })
            .collect()
    }

    fn check(m: Digests, algs: &[DigestAlg], d: &[u8], what: &str) {
        assert_eq!(m.0.len(), algs.len(), "{what}");
        for &alg in algs {
            assert_eq!(
                m.get(alg),
                Some(&reference(alg, d)[..]),
                "{alg} over {} bytes, {what}",
                d.len()
            );
        }
    }

    #[test]
    fn parallel_digests_equal_serial_ones_for_any_chunking() {
        let mut rng = Rng(0x5eed_f00d);
        let big = 5 * (1 << 20) + 3;
        let data: Vec<u8> = (0..big).map(|_| rng.next() as u8).collect();
        let t = PARALLEL_UPDATE_MIN;
        for algs in combinations() {
            for len in [0, 1, 111, t - 1, t, t + 1, 3 * t + 7, big] {
                let d = &data[..len];
                // One update.
                let mut one = MultiHasher::new(&algs);
                one.update(d);
                check(one.finish(), &algs, d, "one update");
                // Every state off the caller's thread.
                let mut off = MultiHasher::offloaded(&algs);
                off.update(d);
                check(off.finish(), &algs, d, "offloaded");
                // In place, one thread per digest, over uneven parts.
                let cut = |f: usize| (len * f / 7).min(len);
                let parts = [
                    &d[..cut(1)],
                    &d[cut(1)..cut(1)],
                    &d[cut(1)..cut(5)],
                    &d[cut(5)..],
                ];
                let (m, r) = crate::digest_parts(&parts, &algs, || 7);
                assert_eq!(r, 7);
                check(m, &algs, d, "digest_parts");
                // Random chunkings: tiny, around the threshold, and MiB-sized pieces mixed.
                for round in 0..3 {
                    let mut h = if round == 2 {
                        MultiHasher::offloaded(&algs)
                    } else {
                        MultiHasher::new(&algs)
                    };
                    let mut rest = d;
                    while !rest.is_empty() {
                        let n = match rng.below(4) {
                            0 => rng.below(64),
                            1 => t - 1 + rng.below(3),
                            2 => rng.below(2 << 20),
                            _ => rng.below(4096),
                        }
                        .min(rest.len());
                        let (a, b) = rest.split_at(n);
                        h.update(a);
                        rest = b;
                    }
                    check(h.finish(), &algs, d, "random chunks");
                }
            }
        }
    }

    #[test]
    fn forks_and_states_continue_where_the_stream_is() {
        let data: Vec<u8> = (0..3 * PARALLEL_UPDATE_MIN + 7)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let algs = DigestAlg::ALL;
        for len in [0, 1, PARALLEL_UPDATE_MIN + 5, data.len()] {
            let d = &data[..len];
            let (a, b) = d.split_at(len * 2 / 3);
            let mut pieces = MultiHasher::new(&algs);
            pieces.update(a);
            // A fork taken while the workers run, then both continue.
            let mut forked = pieces.clone();
            pieces.update(b);
            forked.update(b);
            check(pieces.finish(), &algs, d, "original");
            check(forked.finish(), &algs, d, "fork");
            // States taken out mid-stream continue serially, and back in parallel.
            let mut h = MultiHasher::new(&algs);
            h.update(a);
            let mut states = h.into_states();
            states.iter_mut().for_each(|s| s.update(b));
            let mut again = MultiHasher::from_states(states);
            again.update(b);
            let mut want = d.to_vec();
            want.extend_from_slice(b);
            check(again.finish(), &algs, &want, "from_states");
        }
    }

    #[test]
    fn ids_and_names_round_trip_and_are_unique() {
        for a in SigAlg::ALL {
            assert_eq!(SigAlg::from_id(a.id()), Some(a));
            assert_eq!(SigAlg::from_name(a.name()), Some(a));
            let json = serde_json_name(a);
            assert_eq!(json, a.name());
        }
        let mut ids: Vec<u16> = SigAlg::ALL.iter().map(|a| a.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), SigAlg::ALL.len());
        for d in DigestAlg::ALL {
            assert_eq!(DigestAlg::from_id(d.id()), Some(d));
            assert_eq!(d.hash(b"abc").len(), d.len());
        }
    }

    fn serde_json_name(a: SigAlg) -> String {
        // serde's rename must agree with name(); checked through the Display impl of the
        // serialized unit variant.
        #[derive(Serialize)]
        struct W {
            a: SigAlg,
        }
        let s = serde_json::to_string(&W { a }).expect("serialize");
        s.trim_start_matches("{\"a\":\"")
            .trim_end_matches("\"}")
            .to_string()
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            hex::encode(DigestAlg::Sha256.hash(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
