//! fwseal-formats: the part of fwseal that knows firmware image formats.
//!
//! Sans-I/O: every function takes bytes and returns bytes or typed errors (the one exception is
//! [`files`], the shared helpers that stream an image file through a preparer). For each format it can
//! **detect** the format from content, **prepare** a signing plan (the format-aware digest the
//! device checks and the exact message each signature algorithm signs), **embed** a signature set
//! where the format's bootloader expects it, and **extract** embedded signatures for offline
//! verification. Raw, MCUboot and DFU images can be prepared from a stream in constant memory.
//!
//! ```
//! use fwseal_crypto::{soft::SoftKey, SigAlg, Signer};
//! use fwseal_formats::{prepare, sign_prepared, assemble, extract, Format, Mode, Request};
//! let image = vec![0x5a; 1000];
//! let ec = SoftKey::generate(SigAlg::EcdsaP256Sha256).unwrap();
//! let pq = SoftKey::generate(SigAlg::MlDsa65).unwrap();
//! let req = Request::hybrid(SigAlg::EcdsaP256Sha256, SigAlg::MlDsa65, Mode::Embedded, "demo");
//! let plan = prepare(Format::Raw, &image, &req).unwrap();
//! let set = sign_prepared(plan.as_ref(), Some(&ec as &dyn Signer), Some(&pq as &dyn Signer), vec![]).unwrap();
//! let signed = assemble(&image, &plan.embed(&set).unwrap()).unwrap();
//! let found = extract(Format::Raw, &signed).unwrap();
//! for s in &found.signatures {
//!     let key: &dyn Signer = if s.alg == SigAlg::MlDsa65 { &pq } else { &ec };
//!     key.public_key().verify_bytes(&s.message, &s.bytes).unwrap();
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod detached;
pub mod dfu;
pub mod efi;
mod error;
pub mod files;
pub mod hex;
pub mod mcuboot;
pub mod raw;
pub mod sigblock;

pub use error::{FormatError, Location};
pub use fwseal_crypto::{DigestAlg, KeyId, SigAlg, Signature, SignatureSet, SignedMessage};

use fwseal_crypto::{Family, Signer};
use serde::{Deserialize, Serialize};

/// The image formats fwseal understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Format {
    /// Raw binary (`.bin`, `.fw`): the whole file is the image.
    Raw,
    /// MCUboot image (`.img`): header, body, protected and unprotected TLVs.
    Mcuboot,
    /// Intel HEX (`.hex`).
    Ihex,
    /// DFU 1.1 file (payload + 16-byte suffix) or ST DfuSe file (`.dfu`).
    Dfu,
    /// PE/COFF UEFI application or driver (`.efi`), Authenticode.
    Efi,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 5] = [
        Format::Raw,
        Format::Mcuboot,
        Format::Ihex,
        Format::Dfu,
        Format::Efi,
    ];

    /// Stable name (`raw`, `mcuboot`, `ihex`, `dfu`, `efi`), used in messages and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Mcuboot => "mcuboot",
            Format::Ihex => "ihex",
            Format::Dfu => "dfu",
            Format::Efi => "efi",
        }
    }

    /// Wire id in the fwseal signature block.
    pub fn id(self) -> u8 {
        match self {
            Format::Raw => 1,
            Format::Mcuboot => 2,
            Format::Ihex => 3,
            Format::Dfu => 4,
            Format::Efi => 5,
        }
    }

    /// Inverse of [`Format::id`].
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.id() == id)
    }

    /// Parse a name or a common file extension (`bin`, `fw`, `img`, `hex`, `ihex`, `dfu`, `efi`).
    pub fn from_name(s: &str) -> Option<Self> {
        match s.trim_start_matches('.').to_ascii_lowercase().as_str() {
            "raw" | "bin" | "fw" => Some(Format::Raw),
            "mcuboot" | "img" => Some(Format::Mcuboot),
            "ihex" | "hex" => Some(Format::Ihex),
            "dfu" | "dfuse" => Some(Format::Dfu),
            "efi" | "pe" => Some(Format::Efi),
            _ => None,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Detect the format from content. `ext_hint` (a file extension such as `"img"`) only breaks
/// ties: content wins. An `.img` that is Android boot (`ANDROID!`) or a FIT/device tree
/// (`d00dfeed`) is refused as an unsupported `.img` flavour rather than signed as raw.
pub fn detect(data: &[u8], ext_hint: Option<&str>) -> Result<Format, FormatError> {
    // DFU first: it is a container, and its payload may itself be an MCUboot or PE image.
    if dfu::looks_like(data) {
        return Ok(Format::Dfu);
    }
    if mcuboot::looks_like(data) {
        return Ok(Format::Mcuboot);
    }
    if data.starts_with(b"ANDROID!") {
        return Err(FormatError::UnsupportedFlavour(
            "Android boot image (magic \"ANDROID!\"); only MCUboot .img is supported".into(),
        ));
    }
    if data.starts_with(&[0xd0, 0x0d, 0xfe, 0xed]) {
        return Err(FormatError::UnsupportedFlavour(
            "FIT / device-tree blob (magic d00dfeed); only MCUboot .img is supported".into(),
        ));
    }
    let hint = ext_hint.and_then(Format::from_name);
    if efi::looks_like(data) {
        return Ok(Format::Efi);
    }
    if hex::looks_like(data) {
        return Ok(Format::Ihex);
    }
    match hint {
        Some(Format::Mcuboot) => Err(FormatError::UnsupportedFlavour(
            "file has an .img extension but no MCUboot header magic (0x96f3b83d)".into(),
        )),
        Some(f @ (Format::Efi | Format::Dfu | Format::Ihex)) => Err(FormatError::Malformed {
            format: f,
            at: Location::Offset(0),
            what: format!("content is not recognisable as {f} (wrong magic)"),
        }),
        _ => Ok(Format::Raw),
    }
}

/// Where the signatures go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Signatures are written into the image where the format's bootloader expects them.
    Embedded,
    /// The image is unchanged; signatures travel in the detached document.
    Detached,
}

/// An image version, MCUboot-style (`major.minor.revision+build`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageVersion {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Revision.
    pub revision: u16,
    /// Build number.
    pub build: u32,
}

impl std::str::FromStr for ImageVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (main, build) = match s.split_once('+') {
            Some((m, b)) => (m, b.parse::<u32>().map_err(|e| format!("build: {e}"))?),
            None => (s, 0),
        };
        let mut it = main.split('.');
        let mut next = |name: &str| -> Result<u64, String> {
            it.next()
                .filter(|x| !x.is_empty())
                .map(|x| x.parse::<u64>().map_err(|e| format!("{name}: {e}")))
                .unwrap_or(Ok(0))
        };
        let (ma, mi, re) = (next("major")?, next("minor")?, next("revision")?);
        Ok(ImageVersion {
            major: u8::try_from(ma).map_err(|_| "major > 255".to_string())?,
            minor: u8::try_from(mi).map_err(|_| "minor > 255".to_string())?,
            revision: u16::try_from(re).map_err(|_| "revision > 65535".to_string())?,
            build,
        })
    }
}

impl std::fmt::Display for ImageVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}.{}+{}",
            self.major, self.minor, self.revision, self.build
        )
    }
}

/// Per-request options. Everything has a default that works for the common case.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SignOptions {
    /// Product id recorded in the fwseal signature block.
    pub product: String,
    /// Image version recorded in the signature block (optional).
    pub image_version: Option<ImageVersion>,
    /// Anti-rollback security counter recorded in the signature block (optional).
    pub security_counter: Option<u32>,
    /// Primary digest for raw images (`sha256` default, `sha384`/`sha512` selectable).
    pub raw_digest: DigestAlg,
    /// Intel HEX: address where the signature block is written (default: next 16-byte-aligned
    /// address after the highest data byte).
    pub hex_signature_address: Option<u32>,
    /// Intel HEX: the byte value that fills gaps in the memory image when hashing.
    pub hex_fill: u8,
    /// DfuSe: address of the extra element holding the signature block (default: next
    /// 16-byte-aligned address after the highest element of the last target).
    pub dfuse_signature_address: Option<u32>,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            product: String::new(),
            image_version: None,
            security_counter: None,
            raw_digest: DigestAlg::Sha256,
            hex_signature_address: None,
            hex_fill: 0xff,
            dfuse_signature_address: None,
        }
    }
}

/// What to sign and how.
#[derive(Clone, Debug)]
pub struct Request {
    /// Classical half (ECDSA / RSA), if any.
    pub classical: Option<SigAlg>,
    /// Post-quantum half (ML-DSA / SLH-DSA), if any.
    pub pq: Option<SigAlg>,
    /// Embedded or detached.
    pub mode: Mode,
    /// Format options.
    pub options: SignOptions,
}

impl Request {
    /// A hybrid request with default options for `product`.
    pub fn hybrid(classical: SigAlg, pq: SigAlg, mode: Mode, product: &str) -> Self {
        Request {
            classical: Some(classical),
            pq: Some(pq),
            mode,
            options: SignOptions {
                product: product.to_string(),
                ..SignOptions::default()
            },
        }
    }

    /// Check the algorithm slots hold algorithms of the right family.
    pub fn validate(&self) -> Result<(), FormatError> {
        if self.classical.is_none() && self.pq.is_none() {
            return Err(FormatError::Misuse(
                "request names no signature algorithm".into(),
            ));
        }
        if let Some(c) = self.classical {
            if c.family() != Family::Classical {
                return Err(FormatError::Misuse(format!(
                    "{c} is not a classical algorithm"
                )));
            }
        }
        if let Some(p) = self.pq {
            if p.family() != Family::PostQuantum {
                return Err(FormatError::Misuse(format!(
                    "{p} is not a post-quantum algorithm"
                )));
            }
        }
        Ok(())
    }

    /// The digest algorithms a one-pass hash must compute for this request: `primary` plus the
    /// digest matched to each requested algorithm.
    pub fn digest_algs(&self, primary: DigestAlg) -> Vec<DigestAlg> {
        let mut v = vec![primary];
        for a in [self.classical, self.pq].into_iter().flatten() {
            if !v.contains(&a.digest_alg()) {
                v.push(a.digest_alg());
            }
        }
        v
    }
}

/// One piece of an output image: a range copied from the input, or new bytes. Lets a caller that
/// holds the input in a file write a multi-GiB output without loading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Copy `len` bytes of the input starting at `start`.
    Input {
        /// Offset in the input.
        start: u64,
        /// Length.
        len: u64,
    },
    /// Literal bytes.
    Bytes(Vec<u8>),
}

/// Concatenate `parts` over `input` into one buffer.
pub fn assemble(input: &[u8], parts: &[Part]) -> Result<Vec<u8>, FormatError> {
    let mut total: usize = 0;
    for p in parts {
        total = total.saturating_add(match p {
            Part::Input { len, .. } => usize::try_from(*len).unwrap_or(usize::MAX),
            Part::Bytes(b) => b.len(),
        });
    }
    let mut out =
        Vec::with_capacity(total.min(input.len().saturating_mul(2).saturating_add(1 << 20)));
    for p in parts {
        match p {
            Part::Input { start, len } => {
                let s = usize::try_from(*start)
                    .map_err(|_| FormatError::Misuse("part start overflows".into()))?;
                let l = usize::try_from(*len)
                    .map_err(|_| FormatError::Misuse("part length overflows".into()))?;
                let chunk = s
                    .checked_add(l)
                    .and_then(|e| input.get(s..e))
                    .ok_or_else(|| FormatError::Misuse("part range outside the input".into()))?;
                out.extend_from_slice(chunk);
            }
            Part::Bytes(b) => out.extend_from_slice(b),
        }
    }
    Ok(out)
}

/// A signing plan for one image: what the device hashes and what each algorithm signs.
///
/// Sign in this order: the post-quantum half over [`Prepared::pq_message`], then the classical
/// half over [`Prepared::classical_message`] (which may cover the PQ signature, as in MCUboot).
/// [`sign_prepared`] does exactly that.
pub trait Prepared: Send + Sync {
    /// The format.
    fn format(&self) -> Format;
    /// The request this plan was made for.
    fn request(&self) -> &Request;
    /// The format-aware digest the device checks (the format's primary digest).
    fn digest(&self) -> (DigestAlg, Vec<u8>);
    /// Message for the post-quantum half.
    fn pq_message(&self, alg: SigAlg) -> Result<SignedMessage, FormatError>;
    /// Whether [`Prepared::classical_message`] depends on the post-quantum signature (the
    /// classical half covers the PQ half, as in MCUboot's protected TLVs). A remote signer must
    /// then obtain the PQ signature before it can ask for the classical one.
    fn classical_needs_pq(&self) -> bool {
        false
    }
    /// Message for the classical half, given the post-quantum signature if there is one.
    fn classical_message(
        &self,
        alg: SigAlg,
        pq: Option<&Signature>,
    ) -> Result<SignedMessage, FormatError>;
    /// The signed image (embedded mode) as parts over the input.
    fn embed(&self, set: &SignatureSet) -> Result<Vec<Part>, FormatError>;
    /// The detached signature document.
    fn detached(&self, set: &SignatureSet) -> Result<detached::DetachedDoc, FormatError> {
        Ok(detached::DetachedDoc::new(self, set))
    }
}

/// Sign a plan with the given signers (PQ first, then classical) and return the signature set.
/// `certificates` (DER, signer first) are carried where the format needs them (Authenticode).
pub fn sign_prepared(
    plan: &dyn Prepared,
    classical: Option<&dyn Signer>,
    pq: Option<&dyn Signer>,
    certificates: Vec<Vec<u8>>,
) -> Result<SignatureSet, FormatError> {
    let req = plan.request();
    let mut set = SignatureSet {
        signatures: Vec::new(),
        certificates,
        public_keys: Vec::new(),
    };
    let mut pq_sig = None;
    match (req.pq, pq) {
        (Some(alg), Some(s)) if s.alg() == alg => {
            let sig = s.sign(&plan.pq_message(alg)?)?;
            set.public_keys.push(s.public_key().spki_der().to_vec());
            pq_sig = Some(sig.clone());
            set.signatures.push(sig);
        }
        (None, None) => {}
        _ => {
            return Err(FormatError::Misuse(
                "post-quantum signer does not match the request".into(),
            ))
        }
    }
    match (req.classical, classical) {
        (Some(alg), Some(s)) if s.alg() == alg => {
            let sig = s.sign(&plan.classical_message(alg, pq_sig.as_ref())?)?;
            set.signatures.insert(0, sig);
            set.public_keys
                .insert(0, s.public_key().spki_der().to_vec());
        }
        (None, None) => {}
        _ => {
            return Err(FormatError::Misuse(
                "classical signer does not match the request".into(),
            ))
        }
    }
    Ok(set)
}

/// Push-based preparation for images that arrive as a stream.
pub trait StreamPreparer: Send {
    /// Feed the next chunk.
    fn update(&mut self, chunk: &[u8]) -> Result<(), FormatError>;
    /// End of input: produce the plan.
    fn finish(self: Box<Self>) -> Result<Box<dyn Prepared>, FormatError>;
}

/// Whether `format` can be prepared in constant memory from a stream (DFU: DFU 1.1 streams;
/// DfuSe is buffered up to its documented limit).
pub fn streams(format: Format) -> bool {
    matches!(format, Format::Raw | Format::Mcuboot | Format::Dfu)
}

/// Start a streaming preparation. Formats that need random access (.hex, .efi) buffer the input
/// up to `limit` bytes and fail with [`FormatError::TooLarge`] beyond it.
pub fn prepare_stream(
    format: Format,
    req: &Request,
    limit: u64,
) -> Result<Box<dyn StreamPreparer>, FormatError> {
    req.validate()?;
    Ok(match format {
        Format::Raw => Box::new(raw::RawStream::new(req.clone())),
        Format::Mcuboot => Box::new(mcuboot::McubootStream::new(req.clone())),
        Format::Dfu => Box::new(dfu::DfuStream::new(req.clone())),
        Format::Ihex | Format::Efi => Box::new(Buffered {
            format,
            req: req.clone(),
            buf: Vec::new(),
            limit,
        }),
    })
}

struct Buffered {
    format: Format,
    req: Request,
    buf: Vec<u8>,
    limit: u64,
}

impl StreamPreparer for Buffered {
    fn update(&mut self, chunk: &[u8]) -> Result<(), FormatError> {
        if (self.buf.len() as u64).saturating_add(chunk.len() as u64) > self.limit {
            return Err(FormatError::TooLarge { limit: self.limit });
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<Box<dyn Prepared>, FormatError> {
        prepare(self.format, &self.buf, &self.req)
    }
}

/// Prepare a signing plan for an image held in memory.
pub fn prepare(
    format: Format,
    data: &[u8],
    req: &Request,
) -> Result<Box<dyn Prepared>, FormatError> {
    req.validate()?;
    match format {
        Format::Ihex => hex::prepare(data, req),
        Format::Efi => efi::prepare(data, req),
        _ => {
            let mut s = prepare_stream(format, req, u64::MAX)?;
            s.update(data)?;
            s.finish()
        }
    }
}

/// A signature found in a signed image, with the message it must verify against — recomputed
/// from the image, never taken from the file.
#[derive(Clone, Debug)]
pub struct FoundSignature {
    /// Algorithm.
    pub alg: SigAlg,
    /// Key id if the format records one (our key id: SHA-256 of SPKI DER).
    pub key_id: Option<KeyId>,
    /// A format-specific key hint (MCUboot KEYHASH), if any.
    pub key_hint: Option<Vec<u8>>,
    /// Signature bytes in the fwseal canonical encoding (ECDSA DER).
    pub bytes: Vec<u8>,
    /// The message the signature must verify against.
    pub message: SignedMessage,
}

/// Everything [`extract`] learns from a signed image.
#[derive(Clone, Debug)]
pub struct Extracted {
    /// Format.
    pub format: Format,
    /// The format-aware digest recomputed from the image.
    pub digest: (DigestAlg, Vec<u8>),
    /// Signatures with their messages.
    pub signatures: Vec<FoundSignature>,
    /// Certificates carried by the format (Authenticode).
    pub certificates: Vec<Vec<u8>>,
    /// Product id recorded in a signature block.
    pub product: Option<String>,
    /// Image version recorded in the image.
    pub image_version: Option<ImageVersion>,
    /// Security counter recorded in the image.
    pub security_counter: Option<u32>,
}

/// Extract embedded signatures. Fails with [`FormatError::NotSigned`] when there are none, and
/// with a `Malformed` error if a recorded digest disagrees with the image.
pub fn extract(format: Format, data: &[u8]) -> Result<Extracted, FormatError> {
    match format {
        Format::Raw => raw::extract(data),
        Format::Mcuboot => mcuboot::extract(data),
        Format::Ihex => hex::extract(data),
        Format::Dfu => dfu::extract(data),
        Format::Efi => efi::extract(data),
    }
}

/// A short structural description for `fwseal inspect`.
pub fn describe(format: Format, data: &[u8]) -> Result<String, FormatError> {
    match format {
        Format::Raw => Ok(format!("raw image, {} bytes", data.len())),
        Format::Mcuboot => mcuboot::describe(data),
        Format::Ihex => hex::describe(data),
        Format::Dfu => dfu::describe(data),
        Format::Efi => efi::describe(data),
    }
}
