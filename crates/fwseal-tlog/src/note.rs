//! C2SP `signed-note` (<https://c2sp.org/signed-note>): text ending in a newline, a blank
//! line, then one or more signature lines `— <key name> <base64(key ID[4] || signature)>\n`.
//!
//! Signature types (the byte that enters the key ID; see `formats/log.md`):
//! - **ECDSA P-256**, type `0x02`, the signed-note spec's ECDSA type ("as implemented by
//!   github.com/transparency-dev/witness"). As the spec says for this type, the key ID is
//!   `SHA-256(SPKI DER of the public key)[:4]` (not the name-based formula). The signature
//!   is ASN.1 DER ECDSA over SHA-256 of the note text. (This is what
//!   transparency-dev/formats `note/note_verifier.go` `NewECDSAVerifier` checks:
//!   `ecdsa.VerifyASN1(key, SHA-256(msg), sig)`, key hash = big-endian `SHA-256(DER)[:4]`.)
//! - **ML-DSA-65** (FIPS 204, pure, empty context, over the note text), **fwseal-specific**:
//!   the spec assigns no byte to it, so it uses the spec's escape `0xff` followed by the
//!   ASCII identifier `fwseal/ml-dsa-65/v1` ([`MLDSA65_TYPE`]); key ID =
//!   `SHA-256(key name || 0x0A || 0xff || "fwseal/ml-dsa-65/v1" || 1952-byte public key)[:4]`.
//!   Other verifiers ignore such lines, as the spec requires of unknown keys.
//!
//! Parsing is strict: valid UTF-8, no ASCII control character but newline, the text
//! separated from the signatures by the *last* blank line, every signature line well formed
//! (name non-empty without Unicode spaces or `+`, canonical padded standard base64 of at
//! least 5 bytes), at most [`MAX_SIGNATURES`] lines and [`MAX_NOTE_BYTES`] bytes.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ml_dsa::signature::Keypair as _;
use ml_dsa::MlDsa65;
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
use sha2::{Digest, Sha256};

/// The largest note accepted (a hybrid checkpoint is about 4.6 KiB; many cosignatures fit).
pub const MAX_NOTE_BYTES: usize = 1 << 20;
/// The most signature lines accepted (the spec asks for at least 16; Go's `note` stops at 100).
pub const MAX_SIGNATURES: usize = 100;
/// The signed-note type byte of ECDSA signatures.
pub const ECDSA_TYPE: u8 = 0x02;
/// The fwseal-specific signature type of ML-DSA-65 lines: `0xff` + identifier.
pub const MLDSA65_TYPE: &[u8] = b"\xfffwseal/ml-dsa-65/v1";
/// Bytes of an ML-DSA-65 public key and signature (FIPS 204).
pub const MLDSA65_PUBLIC_KEY_LEN: usize = 1952;
pub const MLDSA65_SIGNATURE_LEN: usize = 3309;

const DASH: &str = "\u{2014} ";

/// The algorithms of signature lines this crate makes and checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigType {
    /// ECDSA P-256 / SHA-256, DER (signed-note type `0x02`).
    EcdsaP256,
    /// ML-DSA-65, pure, empty context (fwseal type `0xff "fwseal/ml-dsa-65/v1"`).
    MlDsa65,
}

impl std::fmt::Display for SigType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SigType::EcdsaP256 => "ECDSA P-256",
            SigType::MlDsa65 => "ML-DSA-65",
        })
    }
}

/// What is wrong with a signature line (1-based `line` counts from the note's first line).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    #[error("does not start with an em dash and a space")]
    NoDash,
    #[error("has no space between key name and signature")]
    NoSpace,
    #[error("has an empty key name")]
    EmptyName,
    #[error("key name contains a space or '+'")]
    BadName,
    #[error("signature is not canonical standard base64")]
    BadBase64,
    #[error("signature is {len} bytes, shorter than a 4-byte key ID plus a signature")]
    TooShort { len: usize },
}

/// Why a note (or a key, or a signing) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("note is {len} bytes, more than {MAX_NOTE_BYTES}")]
    TooLarge { len: usize },
    #[error("note is not valid UTF-8 (at byte {at})")]
    NotUtf8 { at: usize },
    #[error("note has control character 0x{byte:02x} at byte {at}")]
    ControlChar { at: usize, byte: u8 },
    #[error("note does not end with a newline")]
    NoFinalNewline,
    #[error("note has no blank line separating text and signatures")]
    NoSeparator,
    #[error("note text is empty")]
    EmptyText,
    #[error("note has no signature lines")]
    NoSignatures,
    #[error("note has more than {MAX_SIGNATURES} signature lines")]
    TooManySignatures,
    #[error("signature line {line} {problem}")]
    BadLine { line: usize, problem: LineProblem },
    #[error("two signatures by the trusted key {name} ({key_id:08x})")]
    DuplicateSignature { name: String, key_id: u32 },
    #[error("signature by the trusted key {name} ({key_id:08x}, {alg}) does not verify")]
    BadSignature {
        name: String,
        key_id: u32,
        alg: SigType,
    },
    #[error("no signature by a trusted key")]
    NoTrustedSignature,
    #[error("no verified {0} signature by a trusted key (both halves are required)")]
    MissingHalf(SigType),
    #[error("invalid key name {0:?}")]
    BadKeyName(String),
    #[error("invalid {alg} public key: {reason}")]
    BadKey { alg: SigType, reason: String },
    #[error("note text cannot be signed: {0}")]
    BadText(String),
    #[error("signer {name}: {reason}")]
    Signer { name: String, reason: String },
}

/// One parsed signature line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: u32,
    pub signature: Vec<u8>,
}

/// A parsed (not yet verified) signed note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote<'a> {
    /// The signed text, final newline included.
    pub text: &'a str,
    pub signatures: Vec<NoteSignature>,
}

/// Key names: non-empty, no Unicode white space, no `+`.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// Check the whole-note rules: size, UTF-8, control characters.
fn check_chars(bytes: &[u8]) -> Result<&str, NoteError> {
    if bytes.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge { len: bytes.len() });
    }
    let s = std::str::from_utf8(bytes).map_err(|e| NoteError::NotUtf8 {
        at: e.valid_up_to(),
    })?;
    if let Some(at) = bytes.iter().position(|&b| b < 0x20 && b != b'\n') {
        return Err(NoteError::ControlChar {
            at,
            byte: bytes[at],
        });
    }
    Ok(s)
}

/// Check that `text` can be the text of a note: non-empty, valid, ending in a newline.
pub fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() {
        return Err(NoteError::EmptyText);
    }
    check_chars(text.as_bytes())?;
    if !text.ends_with('\n') {
        return Err(NoteError::NoFinalNewline);
    }
    Ok(())
}

/// Parse a signed note (strictly; see the module documentation). Verifies nothing.
pub fn parse(note: &[u8]) -> Result<SignedNote<'_>, NoteError> {
    let s = check_chars(note)?;
    if !s.ends_with('\n') {
        return Err(NoteError::NoFinalNewline);
    }
    // The text ends at the last blank line: the last "\n\n" (its first '\n' ends the text).
    let sep = s.rfind("\n\n").ok_or(NoteError::NoSeparator)?;
    let text = &s[..sep + 1];
    let sigs = &s[sep + 2..];
    if text == "\n" {
        return Err(NoteError::EmptyText);
    }
    if sigs.is_empty() {
        return Err(NoteError::NoSignatures);
    }
    let first_sig_line = text.matches('\n').count() + 2;
    let mut signatures = Vec::new();
    // `sigs` ends with '\n' and (being after the last "\n\n") has no empty line.
    for (i, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
        if signatures.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let bad = |problem| NoteError::BadLine {
            line: first_sig_line + i,
            problem,
        };
        let rest = line
            .strip_prefix(DASH)
            .ok_or_else(|| bad(LineProblem::NoDash))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad(LineProblem::NoSpace))?;
        if name.is_empty() {
            return Err(bad(LineProblem::EmptyName));
        }
        if !valid_key_name(name) || b64.contains(' ') {
            // A second space would make the name or the signature contain one.
            return Err(bad(LineProblem::BadName));
        }
        let raw = B64.decode(b64).map_err(|_| bad(LineProblem::BadBase64))?;
        if raw.len() < 5 {
            return Err(bad(LineProblem::TooShort { len: raw.len() }));
        }
        let key_id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        signatures.push(NoteSignature {
            name: name.to_owned(),
            key_id,
            signature: raw[4..].to_vec(),
        });
    }
    Ok(SignedNote { text, signatures })
}

/// Something that signs note text: an HSM-backed key implements this as well as the
/// in-process signers below.
pub trait NoteSigner {
    /// The key name on the signature line.
    fn name(&self) -> &str;
    /// The 4-byte key ID (big-endian u32).
    fn key_id(&self) -> u32;
    /// The algorithm.
    fn sig_type(&self) -> SigType;
    /// Sign the note text (final newline included); returns the raw signature
    /// (DER for ECDSA, 3309 bytes for ML-DSA-65).
    fn sign(&self, text: &[u8]) -> Result<Vec<u8>, NoteError>;
}

/// Key ID of an ECDSA key: `SHA-256(SPKI DER)[:4]` (signed-note type 0x02).
pub fn ecdsa_key_id(spki_der: &[u8]) -> u32 {
    let h = Sha256::digest(spki_der);
    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
}

/// Key ID of an ML-DSA-65 key:
/// `SHA-256(name || 0x0A || 0xff "fwseal/ml-dsa-65/v1" || public key)[:4]`.
pub fn mldsa65_key_id(name: &str, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0a]);
    h.update(MLDSA65_TYPE);
    h.update(public_key);
    let h = h.finalize();
    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if valid_key_name(name) {
        Ok(())
    } else {
        Err(NoteError::BadKeyName(name.to_owned()))
    }
}

/// An in-process ECDSA P-256 note signer (RFC 6979 deterministic signatures).
pub struct EcdsaP256NoteSigner {
    name: String,
    key: p256::ecdsa::SigningKey,
    key_id: u32,
}

impl EcdsaP256NoteSigner {
    pub fn new(name: &str, key: p256::ecdsa::SigningKey) -> Result<Self, NoteError> {
        check_name(name)?;
        let spki = key
            .verifying_key()
            .to_public_key_der()
            .map_err(|e| NoteError::BadKey {
                alg: SigType::EcdsaP256,
                reason: e.to_string(),
            })?;
        Ok(Self {
            name: name.to_owned(),
            key_id: ecdsa_key_id(spki.as_bytes()),
            key,
        })
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey::EcdsaP256 {
            name: self.name.clone(),
            key_id: self.key_id,
            key: *self.key.verifying_key(),
        }
    }
}

impl NoteSigner for EcdsaP256NoteSigner {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.key_id
    }
    fn sig_type(&self) -> SigType {
        SigType::EcdsaP256
    }
    fn sign(&self, text: &[u8]) -> Result<Vec<u8>, NoteError> {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature =
            self.key.try_sign(text).map_err(|e| NoteError::Signer {
                name: self.name.clone(),
                reason: e.to_string(),
            })?;
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

/// An in-process ML-DSA-65 note signer (deterministic variant, empty context).
pub struct MlDsa65NoteSigner {
    name: String,
    key: Box<ml_dsa::SigningKey<MlDsa65>>,
    public: Vec<u8>,
    key_id: u32,
}

impl MlDsa65NoteSigner {
    /// From the 32-byte FIPS 204 seed ξ.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = ml_dsa::SigningKey::<MlDsa65>::from_seed(&(*seed).into());
        let public = key.verifying_key().encode().to_vec();
        Ok(Self {
            name: name.to_owned(),
            key_id: mldsa65_key_id(name, &public),
            key: Box::new(key),
            public,
        })
    }

    /// The encoded public key (1952 bytes).
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey::MlDsa65 {
            name: self.name.clone(),
            key_id: self.key_id,
            key: Box::new(self.key.verifying_key()),
        }
    }
}

impl NoteSigner for MlDsa65NoteSigner {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.key_id
    }
    fn sig_type(&self) -> SigType {
        SigType::MlDsa65
    }
    fn sign(&self, text: &[u8]) -> Result<Vec<u8>, NoteError> {
        let sig = self
            .key
            .expanded_key()
            .sign_deterministic(text, &[])
            .map_err(|e| NoteError::Signer {
                name: self.name.clone(),
                reason: e.to_string(),
            })?;
        Ok(sig.encode().to_vec())
    }
}

/// A trusted public key: the (name, key ID) pair a signature line must carry, and the key.
#[derive(Clone, Debug)]
pub enum VerifierKey {
    EcdsaP256 {
        name: String,
        key_id: u32,
        key: p256::ecdsa::VerifyingKey,
    },
    MlDsa65 {
        name: String,
        key_id: u32,
        key: Box<ml_dsa::VerifyingKey<MlDsa65>>,
    },
}

impl VerifierKey {
    /// An ECDSA P-256 key from its SubjectPublicKeyInfo DER.
    pub fn ecdsa_p256(name: &str, spki_der: &[u8]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der).map_err(|e| {
            NoteError::BadKey {
                alg: SigType::EcdsaP256,
                reason: e.to_string(),
            }
        })?;
        // The key ID is over the canonical re-encoding, so a non-canonical input encoding
        // cannot make a second ID for the same key.
        let spki = key.to_public_key_der().map_err(|e| NoteError::BadKey {
            alg: SigType::EcdsaP256,
            reason: e.to_string(),
        })?;
        Ok(VerifierKey::EcdsaP256 {
            name: name.to_owned(),
            key_id: ecdsa_key_id(spki.as_bytes()),
            key,
        })
    }

    /// An ML-DSA-65 key from its 1952-byte FIPS 204 encoding.
    pub fn ml_dsa_65(name: &str, public_key: &[u8]) -> Result<Self, NoteError> {
        check_name(name)?;
        let enc = ml_dsa::EncodedVerifyingKey::<MlDsa65>::try_from(public_key).map_err(|_| {
            NoteError::BadKey {
                alg: SigType::MlDsa65,
                reason: format!(
                    "{} bytes, expected {MLDSA65_PUBLIC_KEY_LEN}",
                    public_key.len()
                ),
            }
        })?;
        Ok(VerifierKey::MlDsa65 {
            name: name.to_owned(),
            key_id: mldsa65_key_id(name, public_key),
            key: Box::new(ml_dsa::VerifyingKey::<MlDsa65>::decode(&enc)),
        })
    }

    pub fn name(&self) -> &str {
        match self {
            VerifierKey::EcdsaP256 { name, .. } | VerifierKey::MlDsa65 { name, .. } => name,
        }
    }

    pub fn key_id(&self) -> u32 {
        match self {
            VerifierKey::EcdsaP256 { key_id, .. } | VerifierKey::MlDsa65 { key_id, .. } => *key_id,
        }
    }

    pub fn sig_type(&self) -> SigType {
        match self {
            VerifierKey::EcdsaP256 { .. } => SigType::EcdsaP256,
            VerifierKey::MlDsa65 { .. } => SigType::MlDsa65,
        }
    }

    /// Does `sig` verify over `text` under this key?
    pub fn verifies(&self, text: &[u8], sig: &[u8]) -> bool {
        match self {
            VerifierKey::EcdsaP256 { key, .. } => {
                use p256::ecdsa::signature::Verifier as _;
                p256::ecdsa::Signature::from_der(sig).is_ok_and(|s| key.verify(text, &s).is_ok())
            }
            VerifierKey::MlDsa65 { key, .. } => ml_dsa::Signature::<MlDsa65>::try_from(sig)
                .is_ok_and(|s| key.verify_with_context(text, &[], &s)),
        }
    }
}

/// The keys a verifier trusts for one log, and whether both halves are required.
#[derive(Clone, Debug)]
pub struct TrustedKeys {
    /// The checkpoint origin line the log must use.
    pub origin: String,
    pub keys: Vec<VerifierKey>,
    /// Require a verified ECDSA P-256 *and* a verified ML-DSA-65 signature (default: yes).
    pub require_hybrid: bool,
}

impl TrustedKeys {
    /// Trust `keys` for the log `origin`, requiring both halves.
    pub fn new(origin: &str, keys: Vec<VerifierKey>) -> Self {
        TrustedKeys {
            origin: origin.to_owned(),
            keys,
            require_hybrid: true,
        }
    }
}

/// Sign `text` (which must be valid note text) with every signer; returns the whole note.
pub fn sign_note(text: &str, signers: &[&dyn NoteSigner]) -> Result<String, NoteError> {
    check_text(text)?;
    if signers.is_empty() {
        return Err(NoteError::NoSignatures);
    }
    if signers.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures);
    }
    let mut out = String::with_capacity(text.len() + 1 + signers.len() * 4500);
    out.push_str(text);
    out.push('\n');
    for s in signers {
        check_name(s.name())?;
        let sig = s.sign(text.as_bytes())?;
        let mut raw = Vec::with_capacity(4 + sig.len());
        raw.extend_from_slice(&s.key_id().to_be_bytes());
        raw.extend_from_slice(&sig);
        out.push_str(DASH);
        out.push_str(s.name());
        out.push(' ');
        out.push_str(&B64.encode(&raw));
        out.push('\n');
    }
    if out.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge { len: out.len() });
    }
    Ok(out)
}

/// Parse `note` and check its signatures against `trusted` (the spec's rules: lines whose
/// (name, key ID) match no trusted key are ignored; a line that matches one must verify, or
/// the whole note is refused; at least one must verify, and with `require_hybrid` one of
/// each type). Returns the verified text.
pub fn verify_note<'a>(note: &'a [u8], trusted: &TrustedKeys) -> Result<&'a str, NoteError> {
    let parsed = parse(note)?;
    let (mut ecdsa, mut mldsa) = (false, false);
    let mut seen: Vec<(&str, u32)> = Vec::new();
    for sig in &parsed.signatures {
        let Some(key) = trusted
            .keys
            .iter()
            .find(|k| k.name() == sig.name && k.key_id() == sig.key_id)
        else {
            continue;
        };
        if seen.contains(&(key.name(), key.key_id())) {
            return Err(NoteError::DuplicateSignature {
                name: sig.name.clone(),
                key_id: sig.key_id,
            });
        }
        seen.push((key.name(), key.key_id()));
        if !key.verifies(parsed.text.as_bytes(), &sig.signature) {
            return Err(NoteError::BadSignature {
                name: sig.name.clone(),
                key_id: sig.key_id,
                alg: key.sig_type(),
            });
        }
        match key.sig_type() {
            SigType::EcdsaP256 => ecdsa = true,
            SigType::MlDsa65 => mldsa = true,
        }
    }
    if !(ecdsa || mldsa) {
        return Err(NoteError::NoTrustedSignature);
    }
    if trusted.require_hybrid {
        if !ecdsa {
            return Err(NoteError::MissingHalf(SigType::EcdsaP256));
        }
        if !mldsa {
            return Err(NoteError::MissingHalf(SigType::MlDsa65));
        }
    }
    Ok(parsed.text)
}
