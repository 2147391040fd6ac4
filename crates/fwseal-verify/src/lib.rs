//! `fwseal-verify`: a `no_std`, heap-free, streaming verifier for fwseal-signed firmware, for
//! bootloaders and verification rigs.
//!
//! It checks what a device holds in flash against `formats/*.md`:
//!
//! * the fwseal **signature block** (`formats/signature-block.md`) at the end of a raw image
//!   ([`Format::Raw`]), of an Intel HEX memory image ([`Format::Hex`]), of a DFU 1.1 payload
//!   ([`Format::Dfu`]) and of a DfuSe canonical element encoding ([`Format::DfuSe`]);
//! * **MCUboot** images ([`Format::Mcuboot`], `formats/mcuboot.md`): the protected
//!   FWSEAL_PQ_SIG TLV, the SHA256/SHA384/SHA512 image hash TLVs, the ECDSA_SIG TLV selected by
//!   KEYHASH/PUBKEY, and SEC_CNT;
//!
//! under a [`Policy`] (both halves / post-quantum only / classical only, minimum security
//! counter), with ECDSA P-256/P-384, ML-DSA-44/65/87 and (feature `slh-dsa`, on by default)
//! SLH-DSA-SHA2-128s/128f/192s/256s. RSA is not implemented (`unsupported-algorithm`).
//!
//! It shares no code with the signing side (`fwseal-formats`, `fwseal-crypto`): it is a second,
//! independent implementation of the specs, so the two check each other.
//!
//! # Streaming: the verifier asks for the bytes it needs
//!
//! A device knows the length of the image (the partition or the download) and can read flash
//! at any offset. The signature block sits at the **end**, and the digests to compute depend on
//! what it holds, so the verifier reads it first: [`Verifier::next_read`] names the next range
//! (offset, length) to feed, [`Verifier::update`] takes its bytes in order in chunks of any size
//! (1 byte to all of it), and [`Verifier::finish`] gives the verdict once `next_read` returns
//! `None`. Memory is constant: the context ([`CONTEXT_SIZE`] bytes) holds at most the protected
//! TLV area (a valid one is ≤ 504 bytes) and one signature at a time ([`MAX_SIGNATURE_LEN`]);
//! the body is only hashed.
//!
//! Reads, in order:
//! * signature-block formats: the 16-byte footer `[N-16, N)`, the block `[N-L, N-16)`, then the
//!   covered bytes `[0, IMAGE_RANGE length)` — 3 reads, every byte at most once;
//! * MCUboot: the 32-byte header, the TLV areas `[B, N)` (`B` = `ih_hdr_size + ih_img_size`),
//!   the hashed bytes `[0, B + ih_protect_tlv_size)`, and, when there is a classical signature
//!   TLV, the unprotected area again (its signature is checked against the image hash, known
//!   only after the hashed read). Areas read twice are compared (SHA-256 fingerprint) and a
//!   difference is `api-misuse`.
//!
//! ```
//! # use fwseal_verify::*;
//! # fn flash_read(offset: u64, buf: &mut [u8]) { buf.fill(0) }
//! # let (image_len, keys) = (64u64, [TrustedKey::Spki(&[])]);
//! let mut v = match Verifier::new(Format::Raw, image_len, &keys, Policy::default()) {
//!     Ok(v) => v,
//!     Err(e) => { assert_eq!(e.code(), "invalid-key"); return; }
//! };
//! let mut buf = [0u8; 256];
//! while let Some(r) = v.next_read() {
//!     let mut done = 0u64;
//!     while done < r.len {
//!         let n = (r.len - done).min(buf.len() as u64) as usize;
//!         flash_read(r.offset + done, &mut buf[..n]);
//!         if v.update(&buf[..n]).is_err() { break; } // the verdict is final; finish() repeats it
//!         done += n as u64;
//!     }
//! }
//! match v.finish() {
//!     Ok(verified) => { /* boot; verified.security_counter, verified.pq, … */ }
//!     Err(e) => { /* e.code(): "pq-signature-invalid", …; e.offset() */ }
//! }
//! ```
//!
//! [`verify`] does the same over an image held in memory.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod check;
mod error;
mod hash;
mod keys;
mod mcuboot;
mod sigblock;
mod verifier;

pub use error::{Error, Reason};
pub use verifier::{verify, Verifier};

/// The largest signature block the signature-block formats accept (`formats/signature-block.md`).
/// The streaming path accepts every block up to this size: it never buffers the block.
pub const MAX_BLOCK_LEN: u32 = 1 << 20;

/// The largest signature this build verifies, in bytes: SLH-DSA-SHA2-256s (29,792) with the
/// `slh-dsa` feature, ML-DSA-87 (4,627) without. The context holds one signature of this size.
#[cfg(feature = "slh-dsa")]
pub const MAX_SIGNATURE_LEN: usize = 29_792;
/// The largest signature this build verifies, in bytes: SLH-DSA-SHA2-256s (29,792) with the
/// `slh-dsa` feature, ML-DSA-87 (4,627) without. The context holds one signature of this size.
#[cfg(not(feature = "slh-dsa"))]
pub const MAX_SIGNATURE_LEN: usize = 4_627;

/// `core::mem::size_of::<Verifier>()`: the fixed size of a verification context.
pub const CONTEXT_SIZE: usize = core::mem::size_of::<Verifier<'static>>();

/// What the device holds, and so what it feeds to the verifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// A raw image (`.bin`, `.fw`): image bytes ‖ signature block.
    Raw,
    /// The Intel HEX **memory image**: from the lowest written address to the end of the
    /// signature block, gaps filled with the FILL byte (0xFF by default). The digests cover
    /// its first `IMAGE_RANGE length` bytes; bytes between those and the block (alignment
    /// padding below the signature address) are not covered and not read.
    Hex,
    /// The DFU 1.1 file without its 16-byte DFU suffix: payload ‖ signature block.
    Dfu,
    /// DfuSe: the canonical element encoding of `formats/dfu.md` §3 ‖ the signature element's
    /// data (the block).
    DfuSe,
    /// An MCUboot image as in its slot: header ‖ body ‖ protected TLVs ‖ unprotected TLVs,
    /// and nothing after (no slot padding).
    Mcuboot,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 5] = [
        Format::Raw,
        Format::Hex,
        Format::Dfu,
        Format::DfuSe,
        Format::Mcuboot,
    ];

    /// The conformance kit's name: `raw`, `hex`, `dfu`, `dfuse`, `mcuboot`.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Hex => "hex",
            Format::Dfu => "dfu",
            Format::DfuSe => "dfuse",
            Format::Mcuboot => "mcuboot",
        }
    }

    /// Inverse of [`Format::name`].
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Which halves the policy requires. Whatever the policy, **every** signature present must
/// verify with a trusted key (`formats/signature-block.md`, "Selecting keys"); the policy only
/// says which halves must be there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Require {
    /// A classical and a post-quantum signature (fwseal's default).
    #[default]
    Both,
    /// A post-quantum signature.
    PqOnly,
    /// A classical signature.
    ClassicalOnly,
}

/// Verification policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Policy {
    /// Required halves.
    pub require: Require,
    /// Anti-rollback: the image's security counter (SECURITY_COUNTER / SEC_CNT; absent = 0)
    /// must be at least this.
    pub min_security_counter: u32,
}

/// Digest algorithms (signature-block DIGEST ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestAlg {
    /// SHA-256 (id 1).
    Sha256,
    /// SHA-384 (id 2).
    Sha384,
    /// SHA-512 (id 3).
    Sha512,
}

impl DigestAlg {
    /// The signature-block / MCUboot PQ message digest id.
    pub const fn id(self) -> u8 {
        match self {
            DigestAlg::Sha256 => 1,
            DigestAlg::Sha384 => 2,
            DigestAlg::Sha512 => 3,
        }
    }
    /// Inverse of [`DigestAlg::id`].
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(DigestAlg::Sha256),
            2 => Some(DigestAlg::Sha384),
            3 => Some(DigestAlg::Sha512),
            _ => None,
        }
    }
    /// Digest length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            DigestAlg::Sha256 => 32,
            DigestAlg::Sha384 => 48,
            DigestAlg::Sha512 => 64,
        }
    }
    pub(crate) const fn index(self) -> usize {
        self.id() as usize - 1
    }
}

/// Signature algorithms this crate knows (signature-block ids). RSA (0x0010, 0x0011) is known
/// to the specs but not implemented here: it is `unsupported-algorithm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256 (0x0001).
    EcdsaP256,
    /// ECDSA P-384 with SHA-384 (0x0002).
    EcdsaP384,
    /// ML-DSA-44 (0x0101).
    MlDsa44,
    /// ML-DSA-65 (0x0102).
    MlDsa65,
    /// ML-DSA-87 (0x0103).
    MlDsa87,
    /// SLH-DSA-SHA2-128s (0x0201).
    SlhDsaSha2_128s,
    /// SLH-DSA-SHA2-128f (0x0202).
    SlhDsaSha2_128f,
    /// SLH-DSA-SHA2-192s (0x0203).
    SlhDsaSha2_192s,
    /// SLH-DSA-SHA2-256s (0x0205).
    SlhDsaSha2_256s,
}

impl Alg {
    /// Every algorithm, in id order.
    pub const ALL: [Alg; 9] = [
        Alg::EcdsaP256,
        Alg::EcdsaP384,
        Alg::MlDsa44,
        Alg::MlDsa65,
        Alg::MlDsa87,
        Alg::SlhDsaSha2_128s,
        Alg::SlhDsaSha2_128f,
        Alg::SlhDsaSha2_192s,
        Alg::SlhDsaSha2_256s,
    ];

    /// Wire id.
    pub const fn id(self) -> u16 {
        match self {
            Alg::EcdsaP256 => 0x0001,
            Alg::EcdsaP384 => 0x0002,
            Alg::MlDsa44 => 0x0101,
            Alg::MlDsa65 => 0x0102,
            Alg::MlDsa87 => 0x0103,
            Alg::SlhDsaSha2_128s => 0x0201,
            Alg::SlhDsaSha2_128f => 0x0202,
            Alg::SlhDsaSha2_192s => 0x0203,
            Alg::SlhDsaSha2_256s => 0x0205,
        }
    }

    /// Inverse of [`Alg::id`] (`None` for RSA and unknown ids).
    pub fn from_id(id: u16) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.id() == id)
    }

    /// fwseal's name (`ecdsa-p256-sha256`, `ml-dsa-65`, `slh-dsa-sha2-128s`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Alg::EcdsaP256 => "ecdsa-p256-sha256",
            Alg::EcdsaP384 => "ecdsa-p384-sha384",
            Alg::MlDsa44 => "ml-dsa-44",
            Alg::MlDsa65 => "ml-dsa-65",
            Alg::MlDsa87 => "ml-dsa-87",
            Alg::SlhDsaSha2_128s => "slh-dsa-sha2-128s",
            Alg::SlhDsaSha2_128f => "slh-dsa-sha2-128f",
            Alg::SlhDsaSha2_192s => "slh-dsa-sha2-192s",
            Alg::SlhDsaSha2_256s => "slh-dsa-sha2-256s",
        }
    }

    /// Inverse of [`Alg::name`].
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Post-quantum (ML-DSA, SLH-DSA) rather than classical (ECDSA).
    pub const fn is_pq(self) -> bool {
        !matches!(self, Alg::EcdsaP256 | Alg::EcdsaP384)
    }

    /// Whether this build verifies it (SLH-DSA needs the `slh-dsa` feature).
    pub const fn supported(self) -> bool {
        match self {
            Alg::SlhDsaSha2_128s
            | Alg::SlhDsaSha2_128f
            | Alg::SlhDsaSha2_192s
            | Alg::SlhDsaSha2_256s => cfg!(feature = "slh-dsa"),
            _ => true,
        }
    }

    /// The digest matched to the algorithm (its DIGEST TLV must be present).
    pub const fn digest(self) -> DigestAlg {
        match self {
            Alg::EcdsaP256 | Alg::MlDsa44 | Alg::SlhDsaSha2_128s | Alg::SlhDsaSha2_128f => {
                DigestAlg::Sha256
            }
            Alg::EcdsaP384 => DigestAlg::Sha384,
            _ => DigestAlg::Sha512,
        }
    }

    /// Fixed signature length (post-quantum), `None` for ECDSA (DER, variable).
    pub const fn signature_len(self) -> Option<usize> {
        match self {
            Alg::EcdsaP256 | Alg::EcdsaP384 => None,
            Alg::MlDsa44 => Some(2420),
            Alg::MlDsa65 => Some(3309),
            Alg::MlDsa87 => Some(4627),
            Alg::SlhDsaSha2_128s => Some(7856),
            Alg::SlhDsaSha2_128f => Some(17088),
            Alg::SlhDsaSha2_192s => Some(16224),
            Alg::SlhDsaSha2_256s => Some(29792),
        }
    }

    /// Raw public key length: the SEC1 uncompressed point for ECDSA, the FIPS 204/205 key for
    /// the post-quantum algorithms.
    pub const fn public_key_len(self) -> usize {
        match self {
            Alg::EcdsaP256 => 65,
            Alg::EcdsaP384 => 97,
            Alg::MlDsa44 => 1312,
            Alg::MlDsa65 => 1952,
            Alg::MlDsa87 => 2592,
            Alg::SlhDsaSha2_128s | Alg::SlhDsaSha2_128f => 32,
            Alg::SlhDsaSha2_192s => 48,
            Alg::SlhDsaSha2_256s => 64,
        }
    }
}

/// A public key the device trusts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustedKey<'a> {
    /// DER SubjectPublicKeyInfo, exactly as fwseal's key ids hash it
    /// (`formats/signature-block.md`, "Key id"): `id-ecPublicKey` + named curve with the
    /// uncompressed point; ML-DSA / SLH-DSA OID with absent parameters.
    Spki(&'a [u8]),
    /// A raw public key: the SEC1 uncompressed point (`04 ‖ x ‖ y`) for ECDSA, the FIPS 204 /
    /// FIPS 205 encoding for ML-DSA / SLH-DSA. Its key id is computed over the canonical SPKI.
    Raw {
        /// The algorithm the key is for.
        alg: Alg,
        /// The key bytes.
        key: &'a [u8],
    },
}

/// The next range of the image the verifier wants: `len` bytes starting at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read {
    /// Offset in the image.
    pub offset: u64,
    /// Number of bytes (≥ 1).
    pub len: u64,
}

/// One verified signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureInfo {
    /// Algorithm.
    pub alg: Alg,
    /// Key id of the trusted key that verified it (SHA-256 of its SPKI DER).
    pub key_id: [u8; 32],
}

/// An image version (signature block IMAGE_VERSION, MCUboot `ih_ver`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageVersion {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Revision.
    pub revision: u16,
    /// Build.
    pub build: u32,
}

/// The PRODUCT of a signature block (1–255 bytes of UTF-8), held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Product {
    bytes: [u8; 255],
    len: u8,
}

impl Product {
    pub(crate) const EMPTY: Product = Product {
        bytes: [0; 255],
        len: 0,
    };
    pub(crate) fn new(b: &[u8]) -> Product {
        let mut p = Product::EMPTY;
        let n = b.len().min(255);
        p.bytes[..n].copy_from_slice(&b[..n]);
        p.len = n as u8;
        p
    }
    /// The product id.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
    /// The product id bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl core::fmt::Debug for Product {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// What a successful verification established. Everything in it is authenticated by the
/// signatures that verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Format verified.
    pub format: Format,
    /// The first classical signature that verified.
    pub classical: Option<SignatureInfo>,
    /// The first post-quantum signature that verified.
    pub pq: Option<SignatureInfo>,
    /// How many signatures verified (every signature present did).
    pub signatures: u16,
    /// SECURITY_COUNTER / SEC_CNT, if present.
    pub security_counter: Option<u32>,
    /// IMAGE_VERSION (signature block) or `ih_ver` (MCUboot).
    pub image_version: Option<ImageVersion>,
    /// PRODUCT (signature-block formats; `None` for MCUboot). A device that checks the product
    /// compares it here.
    pub product: Option<Product>,
    /// IMAGE_RANGE (start address, length) of a signature block. For [`Format::Hex`] the start
    /// is the load address of byte 0 of the memory image: a device checks it is where it
    /// loaded the image.
    pub image_range: Option<(u64, u64)>,
    /// FILL (Intel HEX), if recorded.
    pub fill: Option<u8>,
    /// Offset of the signature block in the image (signature-block formats).
    pub block_offset: Option<u64>,
    /// Bytes covered by the digests: `IMAGE_RANGE` length, or MCUboot's header + body +
    /// protected TLVs.
    pub covered_len: u64,
}
