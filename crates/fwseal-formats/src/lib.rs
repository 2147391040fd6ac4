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
mod reader;
pub mod sigblock;

pub use error::{FormatError, Location};
pub use fwseal_crypto::{DigestAlg, KeyId, SigAlg, Signature, SignatureSet, SignedMessage};

use fwseal_crypto::{Family, Signer};
use serde::{Deserialize, Serialize};

/// The image formats fwseal understands. Everything fwseal knows about a format beyond its
/// parser lives in the format's [`FormatSpec`] ([`Format::spec`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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

/// What a format's content detector says about some bytes.
#[derive(Debug)]
pub enum Detection {
    /// The content is this format.
    Match,
    /// The content is a flavour of this format's family that fwseal refuses (Android boot or
    /// FIT `.img`); detection stops with this error.
    Refuse(FormatError),
    /// Not this format; try the next one.
    NoMatch,
    /// Any content is acceptable as this format, provided no earlier detector matched and the
    /// extension hint names no format that refuses the content (raw images).
    Fallback,
}

impl Detection {
    /// [`Detection::Match`] if `yes`, else [`Detection::NoMatch`] (for magic checks).
    pub fn when(yes: bool) -> Self {
        if yes {
            Detection::Match
        } else {
            Detection::NoMatch
        }
    }
}

/// Prepare a signing plan from an image held in memory.
pub type PrepareFn = fn(&[u8], &Request) -> Result<Box<dyn Prepared>, FormatError>;

/// How a format prepares a signing plan.
#[derive(Clone, Copy)]
pub enum Preparation {
    /// Push-based, constant memory (the whole input never needs to be held).
    Stream(fn(Request) -> Box<dyn StreamPreparer>),
    /// Random access: the whole input is held in memory (bounded by the caller's limit).
    Buffered(PrepareFn),
}

/// One format, self-described: names, wire id, capabilities, algorithm rules and the entry
/// points of its module. Each format module defines one `SPEC`; [`FORMATS`] lists them.
pub struct FormatSpec {
    /// The enum value.
    pub format: Format,
    /// Stable name (`raw`, `mcuboot`, `ihex`, `dfu`, `efi`), used in messages, JSON and the
    /// signed-message domain separation: never change it.
    pub name: &'static str,
    /// Other accepted names ([`Format::from_name`]).
    pub aliases: &'static [&'static str],
    /// File extensions (accepted by [`Format::from_name`]); `[0]` is the extension of a
    /// downloaded signed image.
    pub extensions: &'static [&'static str],
    /// Wire id in the fwseal signature block (`formats/signature-block.md`): never renumber.
    pub id: u8,
    /// Whether preparation streams in constant memory ([`Preparation::Stream`]).
    pub streams: bool,
    /// One line for humans (`fwseal inspect`, bench labels).
    pub summary: &'static str,
    /// The contract document under `formats/`.
    pub doc: &'static str,
    /// Sample images (`fixtures/…`), also the fuzz target's seed corpus.
    pub fixtures: &'static str,
    /// The cargo-fuzz target (`fuzz/fuzz_targets/NAME.rs`) that covers this format's parser.
    pub fuzz_target: &'static str,
    /// Whether an embedded signed image carries the post-quantum half. When `false` (.efi:
    /// Authenticode has no place for it) the detached document must travel with the image.
    pub carries_pq: bool,
    /// The classical algorithm an RSA key signs with for this format, whatever the product
    /// names (MCUboot: PSS; Authenticode: PKCS#1 v1.5); `None` = as the product says.
    pub rsa_scheme: Option<SigAlg>,
    /// The classical algorithm of a product that accepts only this format and names none.
    pub default_classical: SigAlg,
    /// Content detector. [`FORMATS`] order is the detection order.
    pub detect: fn(&[u8]) -> Detection,
    /// The error when no detector matched but the extension hint names this format (`None`:
    /// the hint does not object).
    pub hint_mismatch: fn() -> Option<FormatError>,
    /// Signing-plan preparation.
    pub prepare: Preparation,
    /// [`extract`] for this format.
    pub extract: fn(&[u8]) -> Result<Extracted, FormatError>,
    /// [`describe`] for this format.
    pub describe: fn(&[u8]) -> Result<String, FormatError>,
}

impl std::fmt::Debug for FormatSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormatSpec")
            .field("name", &self.name)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Every format, **in detection order**: containers first (a DFU payload may itself be an
/// MCUboot or PE image), then MCUboot (whose detector also refuses Android boot and FIT `.img`),
/// PE, Intel HEX, and raw last as the fallback. Adding a format = one module with its `SPEC`,
/// one line here, one variant in [`Format`] (and its arm in [`Format::spec`]).
pub static FORMATS: &[&FormatSpec] = &[
    &dfu::SPEC,
    &mcuboot::SPEC,
    &efi::SPEC,
    &hex::SPEC,
    &raw::SPEC,
];

impl Format {
    /// The format's descriptor.
    pub fn spec(self) -> &'static FormatSpec {
        match self {
            Format::Raw => &raw::SPEC,
            Format::Mcuboot => &mcuboot::SPEC,
            Format::Ihex => &hex::SPEC,
            Format::Dfu => &dfu::SPEC,
            Format::Efi => &efi::SPEC,
        }
    }

    /// Every format, in [`FORMATS`] (detection) order.
    pub fn all() -> impl Iterator<Item = Format> {
        FORMATS.iter().map(|s| s.format)
    }

    /// Stable name (`raw`, `mcuboot`, `ihex`, `dfu`, `efi`), used in messages and JSON.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Wire id in the fwseal signature block.
    pub fn id(self) -> u8 {
        self.spec().id
    }

    /// Inverse of [`Format::id`].
    pub fn from_id(id: u8) -> Option<Self> {
        FORMATS.iter().find(|s| s.id == id).map(|s| s.format)
    }

    /// Parse a name, an alias or a file extension (`bin`, `fw`, `img`, `hex`, `dfuse`, `pe`,
    /// ...), case-insensitive, a leading `.` allowed.
    pub fn from_name(s: &str) -> Option<Self> {
        let s = s.trim_start_matches('.');
        FORMATS
            .iter()
            .find(|f| {
                std::iter::once(&f.name)
                    .chain(f.aliases)
                    .chain(f.extensions)
                    .any(|n| n.eq_ignore_ascii_case(s))
            })
            .map(|f| f.format)
    }

    /// Every accepted name, comma-separated (for error messages and help).
    pub fn names() -> String {
        FORMATS
            .iter()
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The classical algorithm this format signs with when a product's key is `product_alg`:
    /// RSA keys sign PSS for MCUboot and PKCS#1 v1.5 for Authenticode; everything else
    /// unchanged.
    pub fn classical_alg(self, product_alg: SigAlg) -> SigAlg {
        match (product_alg, self.spec().rsa_scheme) {
            (SigAlg::RsaPkcs1Sha256 | SigAlg::RsaPssSha256, Some(rsa)) => rsa,
            (a, _) => a,
        }
    }

    /// The product's default classical algorithm when it accepts only this format (efi:
    /// RsaPkcs1Sha256; others EcdsaP256Sha256).
    pub fn default_classical(self) -> SigAlg {
        self.spec().default_classical
    }

    /// Name of the signed output: embedded → `stem.signed.ext` (or `name.signed`), detached →
    /// unchanged (the image is not modified; the document travels beside it).
    pub fn output_name(self, input_name: &str, mode: Mode) -> String {
        match mode {
            Mode::Detached => input_name.to_string(),
            Mode::Embedded => match input_name.rsplit_once('.') {
                Some((stem, ext)) => format!("{stem}.signed.{ext}"),
                None => format!("{input_name}.signed"),
            },
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `Malformed` at offset 0: the extension promised `format` but the magic is not there.
pub(crate) fn wrong_magic(format: Format) -> FormatError {
    FormatError::Malformed {
        format,
        at: Location::Offset(0),
        what: format!("content is not recognisable as {format} (wrong magic)"),
    }
}

/// Detect the format from content. `ext_hint` (a file extension such as `"img"`) only breaks
/// ties: content wins. An `.img` that is Android boot (`ANDROID!`) or a FIT/device tree
/// (`d00dfeed`) is refused as an unsupported `.img` flavour rather than signed as raw.
/// The detectors run in [`FORMATS`] order.
pub fn detect(data: &[u8], ext_hint: Option<&str>) -> Result<Format, FormatError> {
    let mut fallback = None;
    for spec in FORMATS {
        match (spec.detect)(data) {
            Detection::Match => return Ok(spec.format),
            Detection::Refuse(e) => return Err(e),
            Detection::NoMatch => {}
            Detection::Fallback => {
                fallback = Some(spec.format);
                break;
            }
        }
    }
    if let Some(e) = ext_hint
        .and_then(Format::from_name)
        .and_then(|f| (f.spec().hint_mismatch)())
    {
        return Err(e);
    }
    fallback.ok_or_else(|| FormatError::Unsupported("no format recognises the content".into()))
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
    /// MCUboot: which key TLV names the classical key — KEYHASH (`hash`, the default) or the
    /// full PUBKEY (`full`, for bootloaders built with `MCUBOOT_HW_KEY`), as imgtool's
    /// `--public-key-format`.
    pub mcuboot_public_key: mcuboot::PublicKeyFormat,
    /// MCUboot: the slot the signed image must fit, image trailer included (imgtool's
    /// `--slot-size`, `--align`, `--max-align`, `--max-sectors`, `--overwrite-only`). `None`: no
    /// check.
    pub mcuboot_slot: Option<mcuboot::Slot>,
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
            mcuboot_public_key: mcuboot::PublicKeyFormat::Hash,
            mcuboot_slot: None,
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
    /// The image version the signed image states: the format's own field where it has one
    /// (MCUboot `ih_ver`, which fwseal never rewrites), otherwise the requested
    /// `options.image_version` (recorded in the fwseal signature block; `.efi` records none).
    fn image_version(&self) -> Option<ImageVersion> {
        self.request().options.image_version
    }
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
        timestamps: Vec::new(),
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
    format.spec().streams
}

/// Start a streaming preparation. Formats that need random access (.hex, .efi) buffer the input
/// up to `limit` bytes and fail with [`FormatError::TooLarge`] beyond it.
pub fn prepare_stream(
    format: Format,
    req: &Request,
    limit: u64,
) -> Result<Box<dyn StreamPreparer>, FormatError> {
    req.validate()?;
    Ok(match format.spec().prepare {
        Preparation::Stream(new) => new(req.clone()),
        Preparation::Buffered(prepare) => Box::new(Buffered {
            prepare,
            req: req.clone(),
            buf: Vec::new(),
            limit,
        }),
    })
}

struct Buffered {
    prepare: PrepareFn,
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
        (self.prepare)(&self.buf, &self.req)
    }
}

/// Prepare a signing plan for an image held in memory.
pub fn prepare(
    format: Format,
    data: &[u8],
    req: &Request,
) -> Result<Box<dyn Prepared>, FormatError> {
    req.validate()?;
    match format.spec().prepare {
        Preparation::Buffered(prepare) => prepare(data, req),
        Preparation::Stream(new) => {
            let mut s = new(req.clone());
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
    /// How the format names the key when it records no key id (MCUboot KEYHASH / PUBKEY).
    pub key_hint: Option<KeyHint>,
    /// Signature bytes in the fwseal canonical encoding (ECDSA DER).
    pub bytes: Vec<u8>,
    /// The message the signature must verify against.
    pub message: SignedMessage,
    /// An RFC 3161 timestamp token over [`FoundSignature::bytes`] that the image carries with
    /// the signature (`.efi`: the Authenticode RFC 3161 countersignature;
    /// `formats/timestamp.md`). `None` where the format has no place for one.
    pub timestamp: Option<Vec<u8>>,
}

impl FoundSignature {
    /// Whether the key `spki` (DER SubjectPublicKeyInfo) is the one the image names for this
    /// signature: its key id, or the format's key hint. A signature that names no key matches
    /// every key (the signature check decides).
    pub fn names_key(&self, spki: &[u8]) -> bool {
        match (&self.key_id, &self.key_hint) {
            (Some(id), _) => KeyId::of_spki(spki) == *id,
            (None, Some(h)) => h.matches(self.alg, spki),
            (None, None) => true,
        }
    }
}

/// How a format names the key of a signature without an fwseal key id.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyHint {
    /// MCUboot KEYHASH (`0x01`): `alg` (the image hash algorithm) over the key's MCUboot
    /// encoding ([`mcuboot::public_key_bytes`]).
    McubootKeyHash {
        /// The image hash algorithm.
        alg: DigestAlg,
        /// The hash.
        value: Vec<u8>,
    },
    /// MCUboot PUBKEY (`0x02`): the key's MCUboot encoding itself.
    McubootPubKey(Vec<u8>),
}

impl KeyHint {
    /// Whether `spki` (a key for `alg`) is the key this hint names.
    pub fn matches(&self, alg: SigAlg, spki: &[u8]) -> bool {
        let Ok(enc) = mcuboot::public_key_bytes(alg, spki) else {
            return false;
        };
        match self {
            KeyHint::McubootKeyHash { alg: h, value } => h.hash(&enc) == *value,
            KeyHint::McubootPubKey(k) => *k == enc,
        }
    }
}

impl std::fmt::Display for KeyHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyHint::McubootKeyHash { alg, value } => {
                write!(f, "KEYHASH {alg} {}", ::hex::encode(value))
            }
            KeyHint::McubootPubKey(k) => write!(f, "PUBKEY ({} bytes)", k.len()),
        }
    }
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
    (format.spec().extract)(data)
}

/// A short structural description for `fwseal inspect`.
pub fn describe(format: Format, data: &[u8]) -> Result<String, FormatError> {
    (format.spec().describe)(data)
}

#[cfg(test)]
mod spec_tests {
    use super::*;

    #[test]
    fn descriptors_are_consistent() {
        for (i, s) in FORMATS.iter().enumerate() {
            assert_eq!(s.format.spec().name, s.name, "spec() of {}", s.name);
            assert_eq!(Format::from_id(s.id), Some(s.format));
            assert_eq!(Format::from_name(s.name), Some(s.format));
            assert_eq!(s.streams, matches!(s.prepare, Preparation::Stream(_)));
            assert!(!s.extensions.is_empty(), "{} has no extension", s.name);
            for n in s.aliases.iter().chain(s.extensions) {
                assert_eq!(Format::from_name(n), Some(s.format), "{n}");
            }
            for t in &FORMATS[i + 1..] {
                assert_ne!(s.id, t.id);
                assert_ne!(s.name, t.name);
                assert_ne!(s.format, t.format);
            }
            assert_eq!(
                s.format.default_classical().family(),
                Family::Classical,
                "{}",
                s.name
            );
        }
        // Exactly one fallback, and it is last.
        let fallbacks: Vec<_> = FORMATS
            .iter()
            .filter(|s| matches!((s.detect)(b"\0\0\0\0"), Detection::Fallback))
            .collect();
        assert_eq!(fallbacks.len(), 1);
        assert!(matches!(
            FORMATS.last().map(|s| (s.detect)(b"")),
            Some(Detection::Fallback)
        ));
    }

    #[test]
    fn every_format_has_its_contract_fixtures_and_fuzz_target() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for s in FORMATS {
            assert!(root.join(s.doc).is_file(), "{}: {} missing", s.name, s.doc);
            assert!(
                root.join(s.fixtures).is_dir(),
                "{}: {} missing",
                s.name,
                s.fixtures
            );
            let t = format!("fuzz/fuzz_targets/{}.rs", s.fuzz_target);
            assert!(root.join(&t).is_file(), "{}: {t} missing", s.name);
        }
    }

    #[test]
    fn names_and_algorithm_rules_are_as_before() {
        for (n, f) in [
            ("raw", Format::Raw),
            ("BIN", Format::Raw),
            (".fw", Format::Raw),
            ("mcuboot", Format::Mcuboot),
            ("img", Format::Mcuboot),
            ("ihex", Format::Ihex),
            (".HEX", Format::Ihex),
            ("dfu", Format::Dfu),
            ("dfuse", Format::Dfu),
            ("efi", Format::Efi),
            ("pe", Format::Efi),
        ] {
            assert_eq!(Format::from_name(n), Some(f), "{n}");
        }
        assert_eq!(Format::from_name("elf"), None);
        assert_eq!(Format::from_name(""), None);
        let ids: Vec<u8> = [
            Format::Raw,
            Format::Mcuboot,
            Format::Ihex,
            Format::Dfu,
            Format::Efi,
        ]
        .iter()
        .map(|f| f.id())
        .collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        use SigAlg::*;
        assert_eq!(Format::Mcuboot.classical_alg(RsaPkcs1Sha256), RsaPssSha256);
        assert_eq!(Format::Efi.classical_alg(RsaPssSha256), RsaPkcs1Sha256);
        assert_eq!(Format::Raw.classical_alg(RsaPssSha256), RsaPssSha256);
        assert_eq!(Format::Efi.classical_alg(EcdsaP256Sha256), EcdsaP256Sha256);
        assert_eq!(Format::Efi.default_classical(), RsaPkcs1Sha256);
        assert_eq!(Format::Ihex.default_classical(), EcdsaP256Sha256);
        assert_eq!(
            Format::Raw.output_name("fw.v1.bin", Mode::Embedded),
            "fw.v1.signed.bin"
        );
        assert_eq!(Format::Raw.output_name("fw", Mode::Embedded), "fw.signed");
        assert_eq!(Format::Efi.output_name("a.efi", Mode::Detached), "a.efi");
        assert_eq!(Format::Mcuboot.spec().extensions[0], "img");
    }

    #[test]
    fn detection_order_is_as_before() {
        let wrong = |r: Result<Format, FormatError>| r.map_err(|e| e.to_string());
        // A DFU suffix wins over an MCUboot header (containers first).
        let mut d = mcuboot::IMAGE_MAGIC.to_le_bytes().to_vec();
        d.resize(64, 0);
        d.extend_from_slice(
            &dfu::Suffix {
                bcd_device: 0,
                id_product: 0,
                id_vendor: 0,
                bcd_dfu: 0x0100,
                crc: 0,
            }
            .encode(0),
        );
        assert_eq!(wrong(detect(&d, Some("img"))), Ok(Format::Dfu));
        assert_eq!(wrong(detect(&d[..64], Some("bin"))), Ok(Format::Mcuboot));
        assert!(matches!(
            detect(b"ANDROID!xxxx", Some("bin")),
            Err(FormatError::UnsupportedFlavour(_))
        ));
        assert!(matches!(
            detect(&[0xd0, 0x0d, 0xfe, 0xed, 0], None),
            Err(FormatError::UnsupportedFlavour(_))
        ));
        assert_eq!(wrong(detect(b"MZ\0\0", Some("hex"))), Ok(Format::Efi));
        assert_eq!(
            wrong(detect(b":10010000214601360121470136007EFE09D2190140", None)),
            Ok(Format::Ihex)
        );
        assert_eq!(wrong(detect(b"plain", None)), Ok(Format::Raw));
        assert_eq!(wrong(detect(b"plain", Some("fw"))), Ok(Format::Raw));
        assert!(matches!(
            detect(b"plain", Some("img")),
            Err(FormatError::UnsupportedFlavour(_))
        ));
        for h in ["efi", "dfu", "hex"] {
            let e = detect(b"plain", Some(h)).expect_err(h);
            assert_eq!(e.location(), Some(Location::Offset(0)), "{h}");
            assert!(e.to_string().contains("wrong magic"), "{e}");
        }
    }
}
