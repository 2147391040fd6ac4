//! PE/COFF UEFI images (`.efi`), PE32 and PE32+, signed with Authenticode.
//!
//! The contract is `formats/efi.md`. In short:
//!
//! * **Digest**: the Authenticode PE image hash (SHA-256) over the headers without the
//!   `CheckSum` field and the Certificate Table data-directory entry, the sections in ascending
//!   `PointerToRawData` order, then the trailing data up to the certificate table, the file
//!   being zero-padded to a multiple of 8 first (as sbsign, osslsigncode and EDK2 see it once
//!   the certificate table is appended). The same ranges are also hashed with the digest
//!   matched to the post-quantum algorithm (SHA-512 for ML-DSA-65/87).
//! * **Classical half** (embedded and detached): a PKCS#7 `SignedData` whose content is a
//!   `SpcIndirectDataContent` (SpcPeImageData + DigestInfo(SHA-256, image hash)), one
//!   digestAlgorithm, the signer certificate, signed attributes `contentType` and
//!   `messageDigest`, and an RSA PKCS#1 v1.5 SHA-256 signature over the DER `SET OF` of those
//!   attributes. Embedded: one `WIN_CERTIFICATE` (revision 0x0200, type 0x0002, padded to 8)
//!   at the end of the file; Security data directory and PE `CheckSum` updated. Re-signing
//!   replaces the whole certificate table.
//! * **Post-quantum half**: never inside the PE; it travels in the detached document, signing
//!   [`crate::detached::message`] over the Authenticode hash under its matched digest.
//!
//! Only RSA (`rsa-pkcs1-sha256`) is accepted as the classical algorithm: OVMF/EDK2 Secure
//! Boot refuses ECDSA Authenticode signatures, so an ECDSA-signed `.efi` would not boot.
//! [`extract`] still reads ECDSA P-256 signatures made by other tools.
//!
//! Input is held in memory (PE needs random access); [`MAX_IMAGE_LEN`] bounds it.

use crate::reader::Reader;
use crate::{
    detached, Detection, Extracted, Format, FormatError, FormatSpec, Part, Preparation, Prepared,
    Request,
};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, Null, OctetString, SetOfVec};
use der::{Decode, Encode, SliceReader};
use fwseal_crypto::{DigestAlg, Digests, KeyId, SigAlg, Signature, SignatureSet, SignedMessage};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::Certificate;

/// Largest `.efi` accepted (1 GiB). PE file offsets are 32-bit; UEFI images are far smaller.
pub const MAX_IMAGE_LEN: u64 = 1 << 30;

/// The PE/COFF (UEFI, Authenticode) descriptor.
pub static SPEC: FormatSpec = FormatSpec {
    format: Format::Efi,
    name: "efi",
    aliases: &["pe"],
    extensions: &["efi"],
    id: 5,
    streams: false,
    summary: "PE/COFF UEFI image, Authenticode",
    doc: "formats/efi.md",
    fixtures: "fixtures/efi",
    fuzz_target: "efi",
    // Authenticode has no place for the PQ half: it travels in the detached document.
    carries_pq: false,
    rsa_scheme: Some(SigAlg::RsaPkcs1Sha256),
    // OVMF/EDK2 Secure Boot refuses ECDSA Authenticode signatures.
    default_classical: SigAlg::RsaPkcs1Sha256,
    detect: |d| Detection::when(looks_like(d)),
    hint_mismatch: || Some(crate::wrong_magic(Format::Efi)),
    prepare: Preparation::Buffered(prepare),
    extract,
    describe,
};

/// `SPC_INDIRECT_DATA_OBJID` (Authenticode content type).
pub const OID_SPC_INDIRECT_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.4");
/// `SPC_PE_IMAGE_DATAOBJ`.
pub const OID_SPC_PE_IMAGE_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.15");
const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
/// Authenticode's RFC 3161 countersignature (`SPC_RFC3161_OBJID`), an unsigned attribute of
/// the SignerInfo whose value is a `TimeStampToken` over the SignerInfo's signature value.
pub const OID_RFC3161_COUNTERSIGN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.3.3.1");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");

/// `SpcPeImageData` as every current signer writes it: empty flags, and the file link
/// `[0] { [2] { [0] IMPLICIT BMPString "<<<Obsolete>>>" } }`. A constant: nothing in it
/// depends on the image.
const SPC_PE_IMAGE_DATA: [u8; 39] = [
    0x30, 0x25, 0x03, 0x01, 0x00, 0xa0, 0x20, 0xa2, 0x1e, 0x80, 0x1c, 0x00, 0x3c, 0x00, 0x3c, 0x00,
    0x3c, 0x00, 0x4f, 0x00, 0x62, 0x00, 0x73, 0x00, 0x6f, 0x00, 0x6c, 0x00, 0x65, 0x00, 0x74, 0x00,
    0x65, 0x00, 0x3e, 0x00, 0x3e, 0x00, 0x3e,
];

/// `WIN_CERT_REVISION_2_0`.
pub const WIN_CERT_REVISION: u16 = 0x0200;
/// `WIN_CERT_TYPE_PKCS_SIGNED_DATA`.
pub const WIN_CERT_TYPE_PKCS: u16 = 0x0002;

/// `SpcAttributeTypeAndOptionalValue`.
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct SpcAttributeTypeAndOptionalValue {
    value_type: ObjectIdentifier,
    value: Option<Any>,
}

/// `DigestInfo` (PKCS#1 / Authenticode).
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct DigestInfo {
    digest_algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

/// `SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue,
/// messageDigest DigestInfo }`.
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct SpcIndirectDataContent {
    data: SpcAttributeTypeAndOptionalValue,
    message_digest: DigestInfo,
}

fn err(off: usize, what: impl Into<String>) -> FormatError {
    FormatError::at(Format::Efi, off as u64, what)
}

/// A reader over the whole file (errors at file offsets).
fn reader(d: &[u8]) -> Reader<'_> {
    Reader::new(Format::Efi, d, 0)
}

const IN_DOS: &str = "file ends inside the DOS header (e_lfanew)";
const IN_COFF: &str = "file ends inside the COFF header";
const IN_OPT: &str = "file ends inside the optional header";
const IN_DD: &str = "file ends inside the data directory";
const IN_SECTION: &str = "file ends inside a section header";
const IN_WIN_CERT: &str = "file ends inside WIN_CERTIFICATE";

fn align8(n: usize) -> usize {
    n.saturating_add(7) & !7
}

/// One section header.
#[derive(Clone, Debug)]
struct Section {
    name: String,
    ptr: usize,
    size: usize,
}

/// The parsed view of a PE image: the offsets Authenticode needs.
#[derive(Clone, Debug)]
struct Pe {
    pe32plus: bool,
    machine: u16,
    subsystem: u16,
    checksum_off: usize,
    /// Offset of the Certificate Table data-directory entry (8 bytes), if the image has one.
    secdir_off: Option<usize>,
    size_of_headers: usize,
    sections: Vec<Section>,
    /// Certificate table (file offset, size), if the image is signed.
    cert: Option<(usize, usize)>,
    /// Length of the image without its certificate table.
    content_len: usize,
    /// SizeOfHeaders + the raw sizes of all sections: where Authenticode's trailing data starts.
    sum_hashed: usize,
}

fn parse(d: &[u8]) -> Result<Pe, FormatError> {
    if d.len() as u64 > MAX_IMAGE_LEN {
        return Err(FormatError::TooLarge {
            limit: MAX_IMAGE_LEN,
        });
    }
    if !d.starts_with(b"MZ") {
        return Err(err(0, "no MZ signature"));
    }
    let pe_off = reader(d).at(0x3c).u32_le(IN_DOS)? as usize;
    if pe_off.checked_add(24).is_none_or(|e| e > d.len()) {
        return Err(err(
            0x3c,
            format!(
                "PE header offset 0x{pe_off:x} leaves no room for a PE header in a {}-byte file",
                d.len()
            ),
        ));
    }
    if d.get(pe_off..pe_off + 4) != Some(b"PE\0\0") {
        return Err(err(pe_off, "no PE\\0\\0 signature at e_lfanew"));
    }
    let coff = pe_off + 4;
    let machine = reader(d).at(coff).u16_le(IN_COFF)?;
    let nsections = reader(d).at(coff + 2).u16_le(IN_COFF)? as usize;
    let size_opt = reader(d).at(coff + 16).u16_le(IN_COFF)? as usize;
    let opt = coff + 20;
    let opt_end = opt + size_opt;
    if opt_end > d.len() {
        return Err(err(
            coff + 16,
            format!("optional header ({size_opt} bytes) runs past the end of the file"),
        ));
    }
    let magic = reader(d).at(opt).u16_le(IN_OPT)?;
    let (pe32plus, dd_off, nrva_off) = match magic {
        0x10b => (false, opt + 96, opt + 92),
        0x20b => (true, opt + 112, opt + 108),
        m => {
            return Err(err(
                opt,
                format!(
                    "optional header magic 0x{m:04x} is neither PE32 (0x10b) nor PE32+ (0x20b)"
                ),
            ))
        }
    };
    if dd_off > opt_end {
        return Err(err(
            coff + 16,
            format!("optional header is {size_opt} bytes, too short for its magic"),
        ));
    }
    let size_of_headers = reader(d).at(opt + 60).u32_le(IN_OPT)? as usize;
    let subsystem = reader(d).at(opt + 68).u16_le(IN_OPT)?;
    let nrva = reader(d).at(nrva_off).u32_le(IN_OPT)? as usize;
    if nrva > (opt_end - dd_off) / 8 {
        return Err(err(
            nrva_off,
            format!("NumberOfRvaAndSizes {nrva} does not fit in the optional header"),
        ));
    }
    let secdir_off = (nrva > 4).then_some(dd_off + 32);
    let sect_tab = opt_end;
    let sect_end = nsections
        .checked_mul(40)
        .and_then(|n| n.checked_add(sect_tab))
        .filter(|&e| e <= d.len())
        .ok_or_else(|| {
            err(
                coff + 2,
                format!("{nsections} section headers run past the end of the file"),
            )
        })?;
    if size_of_headers > d.len() || size_of_headers < sect_end {
        return Err(err(
            opt + 60,
            format!(
                "SizeOfHeaders {size_of_headers} must cover the section table (ends at {sect_end}) and fit in the {}-byte file",
                d.len()
            ),
        ));
    }
    // Certificate table.
    let mut cert = None;
    if let Some(s) = secdir_off {
        let va = reader(d).at(s).u32_le(IN_DD)? as usize;
        let size = reader(d).at(s + 4).u32_le(IN_DD)? as usize;
        if va != 0 || size != 0 {
            let end = va.saturating_add(size);
            if end > d.len() {
                return Err(err(
                    s,
                    format!(
                        "certificate table [{va}, {end}) runs past the end of the {}-byte file",
                        d.len()
                    ),
                ));
            }
            if end != d.len() {
                return Err(err(
                    s,
                    format!("certificate table ends at {end}, but the file goes on to {}; Authenticode needs it last", d.len()),
                ));
            }
            if va < size_of_headers || size < 8 {
                return Err(err(
                    s,
                    format!("certificate table [{va}, {end}) overlaps the headers or is too small"),
                ));
            }
            cert = Some((va, size));
        }
    }
    let content_len = cert.map(|c| c.0).unwrap_or(d.len());
    let mut sections = Vec::with_capacity(nsections);
    let mut sum_hashed = size_of_headers;
    for i in 0..nsections {
        let h = sect_tab + 40 * i;
        let name_bytes = d.get(h..h + 8).unwrap_or_default();
        let name = String::from_utf8_lossy(name_bytes)
            .trim_end_matches('\0')
            .to_string();
        let size = reader(d).at(h + 16).u32_le(IN_SECTION)? as usize;
        let ptr = reader(d).at(h + 20).u32_le(IN_SECTION)? as usize;
        if size > 0 {
            let end = ptr.saturating_add(size);
            if end > content_len || ptr < size_of_headers {
                return Err(err(
                    h + 16,
                    format!(
                        "section {name:?} raw data [{ptr}, {end}) lies outside the image body [{size_of_headers}, {content_len})"
                    ),
                ));
            }
        }
        sum_hashed = sum_hashed.saturating_add(size);
        sections.push(Section { name, ptr, size });
    }
    if sum_hashed > content_len {
        return Err(err(
            sect_tab,
            format!(
                "headers and section raw data add up to {sum_hashed} bytes, more than the {content_len}-byte image (overlapping sections)"
            ),
        ));
    }
    Ok(Pe {
        pe32plus,
        machine,
        subsystem,
        checksum_off: opt + 64,
        secdir_off,
        size_of_headers,
        sections,
        cert,
        content_len,
        sum_hashed,
    })
}

impl Pe {
    /// Length of the image as hashed and as embedded: the content padded to 8.
    fn padded_len(&self) -> usize {
        align8(self.content_len)
    }

    /// Authenticode image hash with each of `algs`.
    fn digests(&self, d: &[u8], algs: &[DigestAlg]) -> Result<Digests, FormatError> {
        Ok(self.digests_and(d, algs, || ())?.0)
    }

    /// [`Pe::digests`] (one thread per digest, reading the image in place) while `alongside`
    /// runs on the caller's thread.
    fn digests_and<R>(
        &self,
        d: &[u8],
        algs: &[DigestAlg],
        alongside: impl FnOnce() -> R,
    ) -> Result<(Digests, R), FormatError> {
        let secdir = self.secdir_off.ok_or_else(|| {
            err(
                self.checksum_off,
                "image has no Certificate Table data directory (NumberOfRvaAndSizes < 5)",
            )
        })?;
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut feed = |a: usize, b: usize| -> Result<(), FormatError> {
            let s = d
                .get(a..b)
                .ok_or_else(|| err(a, format!("hash range [{a}, {b}) is outside the file")))?;
            parts.push(s);
            Ok(())
        };
        feed(0, self.checksum_off)?;
        feed(self.checksum_off + 4, secdir)?;
        feed(secdir + 8, self.size_of_headers)?;
        let mut order: Vec<&Section> = self.sections.iter().filter(|s| s.size > 0).collect();
        order.sort_by_key(|s| s.ptr);
        for s in order {
            feed(s.ptr, s.ptr + s.size)?;
        }
        feed(self.sum_hashed, self.content_len)?;
        parts.push(&[0u8; 8][..self.padded_len() - self.content_len]);
        Ok(fwseal_crypto::digest_parts(&parts, algs, alongside))
    }

    fn machine_name(&self) -> String {
        match self.machine {
            0x8664 => "x86-64".into(),
            0x014c => "i386".into(),
            0xaa64 => "AArch64".into(),
            0x01c2 | 0x01c4 => "ARM".into(),
            0x5064 => "RISC-V 64".into(),
            0x6264 => "LoongArch64".into(),
            m => format!("machine 0x{m:04x}"),
        }
    }
}

/// Add bytes at absolute file offset `pos` to a PE checksum accumulator (16-bit little-endian
/// words at even offsets; carries are folded at the end).
fn checksum_add(acc: &mut u64, pos: usize, bytes: &[u8]) {
    let mut bytes = bytes;
    if pos % 2 == 1 {
        if let Some((&b, rest)) = bytes.split_first() {
            *acc += u64::from(b) << 8;
            bytes = rest;
        }
    }
    let mut it = bytes.chunks_exact(2);
    for w in &mut it {
        *acc += u64::from(u16::from_le_bytes([w[0], w[1]]));
    }
    if let [b] = it.remainder() {
        *acc += u64::from(*b);
    }
}

fn checksum_finish(mut acc: u64, len: usize) -> u32 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    (acc as u32).wrapping_add(len as u32)
}

/// Whether `data` looks like PE/COFF: it starts with the DOS `MZ` magic. Deliberately loose,
/// so that a damaged `.efi` (bad `e_lfanew`, truncated) is detected as `.efi` and gets the
/// parser's precise, located error instead of being signed as a raw image.
pub fn looks_like(data: &[u8]) -> bool {
    data.starts_with(b"MZ")
}

fn sha256_alg() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: OID_SHA256,
        parameters: Some(Null.into()),
    }
}

fn der_err(what: &str) -> impl Fn(der::Error) -> FormatError + '_ {
    move |e| FormatError::Misuse(format!("encoding {what}: {e}"))
}

/// The `SpcIndirectDataContent` for an image hash (SHA-256).
fn spc_content(image_hash: &[u8]) -> Result<Any, FormatError> {
    let spc = SpcIndirectDataContent {
        data: SpcAttributeTypeAndOptionalValue {
            value_type: OID_SPC_PE_IMAGE_DATA,
            value: Some(Any::from_der(&SPC_PE_IMAGE_DATA).map_err(der_err("SpcPeImageData"))?),
        },
        message_digest: DigestInfo {
            digest_algorithm: sha256_alg(),
            digest: OctetString::new(image_hash).map_err(der_err("DigestInfo"))?,
        },
    };
    Any::encode_from(&spc).map_err(der_err("SpcIndirectDataContent"))
}

/// The signed attributes: contentType = SPC_INDIRECT_DATA, messageDigest = SHA-256 of the
/// SpcIndirectDataContent's content octets (its DER without the outer tag and length).
fn signed_attrs(spc: &Any) -> Result<SetOfVec<Attribute>, FormatError> {
    let md = DigestAlg::Sha256.hash(spc.value());
    let ct = Attribute {
        oid: OID_CONTENT_TYPE,
        values: SetOfVec::try_from(vec![
            Any::encode_from(&OID_SPC_INDIRECT_DATA).map_err(der_err("contentType"))?
        ])
        .map_err(der_err("contentType"))?,
    };
    let mdv = Attribute {
        oid: OID_MESSAGE_DIGEST,
        values: SetOfVec::try_from(vec![Any::encode_from(
            &OctetString::new(md).map_err(der_err("messageDigest"))?,
        )
        .map_err(der_err("messageDigest"))?])
        .map_err(der_err("messageDigest"))?,
    };
    SetOfVec::try_from(vec![ct, mdv]).map_err(der_err("signed attributes"))
}

/// A prepared `.efi` image.
pub struct EfiPlan {
    req: Request,
    pe: Pe,
    digests: Digests,
    /// Copy of the headers (`[0, SizeOfHeaders)`), patched at embed time.
    headers: Vec<u8>,
    /// PE checksum accumulator over `[SizeOfHeaders, padded_len)`.
    body_sum: u64,
    spc: Any,
    attrs: SetOfVec<Attribute>,
    attrs_der: Vec<u8>,
}

impl EfiPlan {
    fn image_hash(&self) -> &[u8] {
        self.digests.get(DigestAlg::Sha256).unwrap_or_default()
    }

    /// The Authenticode PKCS#7 (`ContentInfo` DER) for a signature set.
    pub fn pkcs7(&self, set: &SignatureSet) -> Result<Vec<u8>, FormatError> {
        let sig = set.classical().ok_or_else(|| {
            FormatError::Unsupported(
                "an Authenticode signature needs the classical (RSA) half".into(),
            )
        })?;
        if sig.alg != SigAlg::RsaPkcs1Sha256 {
            return Err(FormatError::Misuse(format!(
                "classical signature is {}, .efi needs rsa-pkcs1-sha256",
                sig.alg
            )));
        }
        let mut certs = Vec::new();
        for (i, c) in set.certificates.iter().enumerate() {
            certs.push(Certificate::from_der(c).map_err(|e| {
                FormatError::Misuse(format!("certificates[{i}] is not a DER certificate: {e}"))
            })?);
        }
        let signer = certs.first().ok_or_else(|| {
            FormatError::Misuse(
                "Authenticode needs the signer certificate in SignatureSet.certificates[0]".into(),
            )
        })?;
        let spki = signer
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(der_err("certificate key"))?;
        if KeyId::of_spki(&spki) != sig.key_id {
            return Err(FormatError::Misuse(
                "certificates[0] does not hold the classical signing key".into(),
            ));
        }
        let si = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: signer.tbs_certificate.issuer.clone(),
                serial_number: signer.tbs_certificate.serial_number.clone(),
            }),
            digest_alg: sha256_alg(),
            signed_attrs: Some(self.attrs.clone()),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: OID_RSA_ENCRYPTION,
                parameters: Some(Null.into()),
            },
            signature: OctetString::new(sig.bytes.clone()).map_err(der_err("signature"))?,
            unsigned_attrs: set
                .timestamp_of(sig)
                .map(countersignature_attrs)
                .transpose()?,
        };
        let sd = SignedData {
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![sha256_alg()])
                .map_err(der_err("digestAlgorithms"))?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: OID_SPC_INDIRECT_DATA,
                econtent: Some(self.spc.clone()),
            },
            certificates: Some(
                SetOfVec::try_from(
                    certs
                        .into_iter()
                        .map(CertificateChoices::Certificate)
                        .collect::<Vec<_>>(),
                )
                .map(CertificateSet)
                .map_err(der_err("certificates"))?,
            ),
            crls: None,
            signer_infos: SetOfVec::try_from(vec![si])
                .map(SignerInfos)
                .map_err(der_err("signerInfos"))?,
        };
        let ci = ContentInfo {
            content_type: OID_SIGNED_DATA,
            content: Any::encode_from(&sd).map_err(der_err("SignedData"))?,
        };
        let out = ci.to_der().map_err(der_err("ContentInfo"))?;
        // EDK2 (WrapPkcs7Data) recognises a ContentInfo only with two-byte long-form lengths
        // at fixed offsets; any other shape is double-wrapped and fails to verify.
        let shape_ok = out.get(0..2) == Some(&[0x30, 0x82][..])
            && out.get(4..6) == Some(&[0x06, 0x09][..])
            && out.get(15..17) == Some(&[0xa0, 0x82][..])
            && out.get(19..21) == Some(&[0x30, 0x82][..]);
        if !shape_ok {
            return Err(FormatError::Unsupported(format!(
                "Authenticode PKCS#7 of {} bytes does not have the 2-byte-length shape EDK2 needs (256..65535 bytes)",
                out.len()
            )));
        }
        Ok(out)
    }
}

/// The unsigned attributes carrying an RFC 3161 timestamp token (a DER `ContentInfo`) as
/// Authenticode's countersignature.
fn countersignature_attrs(token: &[u8]) -> Result<SetOfVec<Attribute>, FormatError> {
    let ci = ContentInfo::from_der(token).map_err(|e| {
        FormatError::Misuse(format!("timestamp token is not a DER ContentInfo: {e}"))
    })?;
    if ci.content_type != OID_SIGNED_DATA {
        return Err(FormatError::Misuse(format!(
            "timestamp token content type {} is not signedData",
            ci.content_type
        )));
    }
    let value = Any::encode_from(&ci).map_err(der_err("timestamp token"))?;
    let attr = Attribute {
        oid: OID_RFC3161_COUNTERSIGN,
        values: SetOfVec::try_from(vec![value]).map_err(der_err("countersignature"))?,
    };
    SetOfVec::try_from(vec![attr]).map_err(der_err("unsigned attributes"))
}

impl Prepared for EfiPlan {
    fn format(&self) -> Format {
        Format::Efi
    }
    fn request(&self) -> &Request {
        &self.req
    }
    fn digest(&self) -> (DigestAlg, Vec<u8>) {
        (DigestAlg::Sha256, self.image_hash().to_vec())
    }
    fn pq_message(&self, alg: SigAlg) -> Result<SignedMessage, FormatError> {
        detached::message(Format::Efi, alg, &self.digests)
    }
    fn classical_message(
        &self,
        alg: SigAlg,
        _pq: Option<&Signature>,
    ) -> Result<SignedMessage, FormatError> {
        if alg != SigAlg::RsaPkcs1Sha256 {
            return Err(FormatError::Misuse(format!(
                "{alg} requested, this plan was made for rsa-pkcs1-sha256"
            )));
        }
        Ok(SignedMessage::Bytes(self.attrs_der.clone()))
    }
    fn embed(&self, set: &SignatureSet) -> Result<Vec<Part>, FormatError> {
        let p7 = self.pkcs7(set)?;
        let cert_len = align8(p7.len() + 8);
        let dw_len = u32::try_from(cert_len)
            .map_err(|_| FormatError::Unsupported("certificate too large".into()))?;
        let mut table = Vec::with_capacity(cert_len);
        table.extend_from_slice(&dw_len.to_le_bytes());
        table.extend_from_slice(&WIN_CERT_REVISION.to_le_bytes());
        table.extend_from_slice(&WIN_CERT_TYPE_PKCS.to_le_bytes());
        table.extend_from_slice(&p7);
        table.resize(cert_len, 0);
        let padded = self.pe.padded_len();
        let total = padded + cert_len;
        if total as u64 > u64::from(u32::MAX) {
            return Err(FormatError::TooLarge {
                limit: u64::from(u32::MAX),
            });
        }
        let secdir = self
            .pe
            .secdir_off
            .ok_or_else(|| FormatError::Misuse("plan without a security directory".into()))?;
        let mut headers = self.headers.clone();
        let patch = |h: &mut Vec<u8>, off: usize, v: u32| -> Result<(), FormatError> {
            h.get_mut(off..off + 4)
                .ok_or_else(|| FormatError::Misuse("header patch outside the headers".into()))?
                .copy_from_slice(&v.to_le_bytes());
            Ok(())
        };
        patch(&mut headers, secdir, padded as u32)?;
        patch(&mut headers, secdir + 4, dw_len)?;
        patch(&mut headers, self.pe.checksum_off, 0)?;
        let mut acc = self.body_sum;
        checksum_add(&mut acc, 0, &headers);
        checksum_add(&mut acc, padded, &table);
        let sum = checksum_finish(acc, total);
        patch(&mut headers, self.pe.checksum_off, sum)?;
        let mut tail = vec![0u8; padded - self.pe.content_len];
        tail.extend_from_slice(&table);
        Ok(vec![
            Part::Bytes(headers),
            Part::Input {
                start: self.pe.size_of_headers as u64,
                len: (self.pe.content_len - self.pe.size_of_headers) as u64,
            },
            Part::Bytes(tail),
        ])
    }
    fn detached(&self, set: &SignatureSet) -> Result<detached::DetachedDoc, FormatError> {
        use base64::Engine as _;
        let mut doc = detached::DetachedDoc::new(self, set);
        if set.classical().is_some() {
            let p7 = self.pkcs7(set)?;
            doc.extra.insert(
                "authenticode_pkcs7".into(),
                base64::engine::general_purpose::STANDARD.encode(p7).into(),
            );
        }
        Ok(doc)
    }
}

/// Prepare a signing plan. The classical algorithm must be `rsa-pkcs1-sha256` (OVMF refuses
/// ECDSA); any post-quantum algorithm is accepted and signs in the detached document.
pub fn prepare(data: &[u8], req: &Request) -> Result<Box<dyn Prepared>, FormatError> {
    let pe = parse(data)?;
    if pe.secdir_off.is_none() {
        return Err(err(
            pe.checksum_off,
            "image has no Certificate Table data directory (NumberOfRvaAndSizes < 5)",
        ));
    }
    match req.classical {
        None | Some(SigAlg::RsaPkcs1Sha256) => {}
        Some(a @ (SigAlg::EcdsaP256Sha256 | SigAlg::EcdsaP384Sha384)) => {
            return Err(FormatError::Unsupported(format!(
                "{a} for .efi: UEFI Secure Boot (OVMF/EDK2) refuses ECDSA Authenticode signatures (\"Access Denied\"); use an RSA key (rsa-pkcs1-sha256, 2048/3072/4096 bits)"
            )))
        }
        Some(a) => {
            return Err(FormatError::Unsupported(format!(
                "{a} for .efi: Authenticode as verified by UEFI uses RSA PKCS#1 v1.5 (rsa-pkcs1-sha256)"
            )))
        }
    }
    // The body's share of the PE checksum, summed on this thread while the digest threads
    // hash.
    let body = data
        .get(pe.size_of_headers..pe.content_len)
        .unwrap_or_default();
    let (digests, body_sum) = pe.digests_and(data, &req.digest_algs(DigestAlg::Sha256), || {
        let mut sum = 0u64;
        checksum_add(&mut sum, pe.size_of_headers, body);
        sum
    })?;
    let headers = data
        .get(..pe.size_of_headers)
        .ok_or_else(|| err(0, "headers outside the file"))?
        .to_vec();
    let image_hash = digests
        .get(DigestAlg::Sha256)
        .ok_or_else(|| FormatError::Misuse("no SHA-256".into()))?;
    let spc = spc_content(image_hash)?;
    let attrs = signed_attrs(&spc)?;
    let attrs_der = attrs.to_der().map_err(der_err("signed attributes"))?;
    Ok(Box::new(EfiPlan {
        req: req.clone(),
        pe,
        digests,
        headers,
        body_sum,
        spc,
        attrs,
        attrs_der,
    }))
}

/// Read the first `WIN_CERTIFICATE` of a signed image, check its Authenticode digest and
/// `messageDigest` against the image, and return the classical signature with its message
/// (the DER `SET OF` signed attributes) and the certificates (signer first).
pub fn extract(data: &[u8]) -> Result<Extracted, FormatError> {
    let pe = parse(data)?;
    let (off, size) = pe.cert.ok_or(FormatError::NotSigned(Format::Efi))?;
    let dw_len = reader(data).at(off).u32_le(IN_WIN_CERT)? as usize;
    let rev = reader(data).at(off + 4).u16_le(IN_WIN_CERT)?;
    let typ = reader(data).at(off + 6).u16_le(IN_WIN_CERT)?;
    if dw_len < 8 || dw_len > size {
        return Err(err(
            off,
            format!("WIN_CERTIFICATE dwLength {dw_len} outside 8..={size} (the table size)"),
        ));
    }
    if rev != WIN_CERT_REVISION || typ != WIN_CERT_TYPE_PKCS {
        return Err(err(
            off + 4,
            format!("WIN_CERTIFICATE revision 0x{rev:04x} type 0x{typ:04x}; expected 0x0200 / 0x0002 (PKCS_SIGNED_DATA)"),
        ));
    }
    let p7_off = off + 8;
    let p7 = data.get(p7_off..off + dw_len).unwrap_or_default();
    let at_der = |e: der::Error| {
        let pos = e.position().map(|p| u32::from(p) as usize).unwrap_or(0);
        err(p7_off + pos, format!("Authenticode PKCS#7: {e}"))
    };
    let mut r = SliceReader::new(p7).map_err(at_der)?;
    let ci = ContentInfo::decode(&mut r).map_err(at_der)?;
    // Whatever follows the ContentInfo inside dwLength is the zero padding to 8 bytes.
    if ci.content_type != OID_SIGNED_DATA {
        return Err(err(
            p7_off,
            format!("PKCS#7 content type {} is not signedData", ci.content_type),
        ));
    }
    let sd: SignedData = ci.content.decode_as().map_err(at_der)?;
    if sd.encap_content_info.econtent_type != OID_SPC_INDIRECT_DATA {
        return Err(err(p7_off, "PKCS#7 content is not SpcIndirectDataContent"));
    }
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| err(p7_off, "PKCS#7 has no content"))?;
    let spc: SpcIndirectDataContent = econtent.decode_as().map_err(at_der)?;
    if spc.message_digest.digest_algorithm.oid != OID_SHA256 {
        return Err(FormatError::Unsupported(format!(
            "Authenticode digest algorithm {} (only SHA-256 is supported)",
            spc.message_digest.digest_algorithm.oid
        )));
    }
    let digests = pe.digests(data, &[DigestAlg::Sha256])?;
    let image_hash = digests.get(DigestAlg::Sha256).unwrap_or_default().to_vec();
    if spc.message_digest.digest.as_bytes() != image_hash.as_slice() {
        return Err(err(
            p7_off,
            format!(
                "Authenticode digest {} does not match the image ({})",
                hex::encode(spc.message_digest.digest.as_bytes()),
                hex::encode(&image_hash)
            ),
        ));
    }
    let si = sd
        .signer_infos
        .0
        .get(0)
        .ok_or_else(|| err(p7_off, "PKCS#7 has no SignerInfo"))?;
    if si.digest_alg.oid != OID_SHA256 {
        return Err(FormatError::Unsupported(format!(
            "SignerInfo digest algorithm {} (only SHA-256 is supported)",
            si.digest_alg.oid
        )));
    }
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| err(p7_off, "SignerInfo has no signed attributes"))?;
    let md = attrs
        .iter()
        .find(|a| a.oid == OID_MESSAGE_DIGEST)
        .and_then(|a| a.values.get(0))
        .and_then(|v| v.decode_as::<OctetString>().ok())
        .ok_or_else(|| err(p7_off, "signed attributes lack messageDigest"))?;
    if md.as_bytes() != DigestAlg::Sha256.hash(econtent.value()).as_slice() {
        return Err(err(
            p7_off,
            "messageDigest does not match the SpcIndirectDataContent",
        ));
    }
    let alg = match si.signature_algorithm.oid {
        OID_RSA_ENCRYPTION | OID_SHA256_WITH_RSA => SigAlg::RsaPkcs1Sha256,
        OID_ECDSA_SHA256 => SigAlg::EcdsaP256Sha256,
        o => {
            return Err(FormatError::Unsupported(format!(
                "Authenticode signature algorithm {o}"
            )))
        }
    };
    let mut certificates = Vec::new();
    let mut key_id = None;
    for c in sd.certificates.iter().flat_map(|s| s.0.iter()) {
        if let CertificateChoices::Certificate(c) = c {
            let der = c.to_der().map_err(der_err("certificate"))?;
            let is_signer = matches!(&si.sid, SignerIdentifier::IssuerAndSerialNumber(ias)
                if ias.issuer == c.tbs_certificate.issuer && ias.serial_number == c.tbs_certificate.serial_number);
            if is_signer && key_id.is_none() {
                let spki = c
                    .tbs_certificate
                    .subject_public_key_info
                    .to_der()
                    .map_err(der_err("certificate key"))?;
                key_id = Some(KeyId::of_spki(&spki));
                certificates.insert(0, der);
            } else {
                certificates.push(der);
            }
        }
    }
    let message = SignedMessage::Bytes(attrs.to_der().map_err(der_err("signed attributes"))?);
    // An RFC 3161 countersignature, if the signer added one (a second one is refused rather
    // than picking either).
    let mut timestamp = None;
    for a in si.unsigned_attrs.iter().flat_map(|s| s.iter()) {
        if a.oid != OID_RFC3161_COUNTERSIGN {
            continue;
        }
        if timestamp.is_some() || a.values.len() != 1 {
            return Err(err(
                p7_off,
                "SignerInfo carries more than one RFC 3161 countersignature",
            ));
        }
        let v = a
            .values
            .get(0)
            .ok_or_else(|| err(p7_off, "empty countersignature"))?;
        timestamp = Some(v.to_der().map_err(der_err("countersignature"))?);
    }
    Ok(Extracted {
        format: Format::Efi,
        digest: (DigestAlg::Sha256, image_hash),
        signatures: vec![crate::FoundSignature {
            alg,
            key_id,
            key_hint: None,
            bytes: si.signature.as_bytes().to_vec(),
            message,
            timestamp,
        }],
        certificates,
        product: None,
        image_version: None,
        security_counter: None,
    })
}

/// Describe: machine, PE32/PE32+, subsystem, sections, signed or not.
pub fn describe(data: &[u8]) -> Result<String, FormatError> {
    let pe = parse(data)?;
    let kind = if pe.pe32plus { "PE32+" } else { "PE32" };
    let sub = match pe.subsystem {
        10 => "EFI application".to_string(),
        11 => "EFI boot-service driver".to_string(),
        12 => "EFI runtime driver".to_string(),
        13 => "EFI ROM".to_string(),
        s => format!("subsystem {s}"),
    };
    let names: Vec<&str> = pe.sections.iter().map(|s| s.name.as_str()).collect();
    let signed = match pe.cert {
        Some((o, s)) => format!("signed (certificate table at {o}, {s} bytes)"),
        None => "unsigned".to_string(),
    };
    Ok(format!(
        "{kind} {} {sub}, {} bytes, {} sections ({}), {signed}",
        pe.machine_name(),
        data.len(),
        pe.sections.len(),
        names.join(" ")
    ))
}
