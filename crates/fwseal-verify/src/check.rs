//! Signature verification, one algorithm at a time. Each verification decodes its key and
//! signature on the stack inside its own (non-inlined) function, so the large ML-DSA / SLH-DSA
//! working state lives only while that one signature is checked.

use crate::keys::Key;
use crate::Alg;

/// What a signature signs.
#[derive(Clone, Copy)]
pub(crate) enum Message<'a> {
    /// The message itself: ECDSA hashes it with the curve's hash (SHA-256 / SHA-384), ML-DSA and
    /// SLH-DSA sign it directly (pure mode, empty context).
    Bytes(&'a [u8]),
    /// An already computed hash, signed as an ECDSA prehash (MCUboot's image hash).
    Prehash(&'a [u8]),
}

/// Whether `sig` is a valid `key.alg` signature by `key` over `msg`.
pub(crate) fn verify(key: &Key<'_>, msg: Message<'_>, sig: &[u8]) -> bool {
    match key.alg {
        Alg::EcdsaP256 => ecdsa_p256(key.raw, msg, sig),
        Alg::EcdsaP384 => ecdsa_p384(key.raw, msg, sig),
        Alg::MlDsa44 => mldsa::<ml_dsa::MlDsa44>(key.raw, msg, sig),
        Alg::MlDsa65 => mldsa::<ml_dsa::MlDsa65>(key.raw, msg, sig),
        Alg::MlDsa87 => mldsa::<ml_dsa::MlDsa87>(key.raw, msg, sig),
        #[cfg(feature = "slh-dsa")]
        Alg::SlhDsaSha2_128s => slhdsa::<slh_dsa::Sha2_128s>(key.raw, msg, sig),
        #[cfg(feature = "slh-dsa")]
        Alg::SlhDsaSha2_128f => slhdsa::<slh_dsa::Sha2_128f>(key.raw, msg, sig),
        #[cfg(feature = "slh-dsa")]
        Alg::SlhDsaSha2_192s => slhdsa::<slh_dsa::Sha2_192s>(key.raw, msg, sig),
        #[cfg(feature = "slh-dsa")]
        Alg::SlhDsaSha2_256s => slhdsa::<slh_dsa::Sha2_256s>(key.raw, msg, sig),
        #[cfg(not(feature = "slh-dsa"))]
        _ => false,
    }
}

// ECDSA: strict DER `Ecdsa-Sig-Value` (the `ecdsa` crate's DER decoder: definite short-form
// lengths, minimal positive INTEGERs, nothing after the SEQUENCE; 1 ≤ r, s < n). High-S is
// accepted (the `ecdsa` crate does not normalise S on verification).
#[inline(never)]
fn ecdsa_p256(point: &[u8], msg: Message<'_>, sig: &[u8]) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    use sha2::Digest as _;
    let (Ok(vk), Ok(s)) = (
        p256::ecdsa::VerifyingKey::from_sec1_bytes(point),
        p256::ecdsa::Signature::from_der(sig),
    ) else {
        return false;
    };
    match msg {
        Message::Bytes(m) => vk.verify_prehash(&sha2::Sha256::digest(m), &s).is_ok(),
        Message::Prehash(h) => vk.verify_prehash(h, &s).is_ok(),
    }
}

#[inline(never)]
fn ecdsa_p384(point: &[u8], msg: Message<'_>, sig: &[u8]) -> bool {
    use p384::ecdsa::signature::hazmat::PrehashVerifier as _;
    use sha2::Digest as _;
    let (Ok(vk), Ok(s)) = (
        p384::ecdsa::VerifyingKey::from_sec1_bytes(point),
        p384::ecdsa::Signature::from_der(sig),
    ) else {
        return false;
    };
    match msg {
        Message::Bytes(m) => vk.verify_prehash(&sha2::Sha384::digest(m), &s).is_ok(),
        Message::Prehash(h) => vk.verify_prehash(h, &s).is_ok(),
    }
}

#[inline(never)]
fn mldsa<P: ml_dsa::MlDsaParams>(raw: &[u8], msg: Message<'_>, sig: &[u8]) -> bool {
    let Message::Bytes(m) = msg else {
        return false;
    };
    let (Ok(enc_key), Ok(enc_sig)) = (
        <&ml_dsa::EncodedVerifyingKey<P>>::try_from(raw),
        <&ml_dsa::EncodedSignature<P>>::try_from(sig),
    ) else {
        return false;
    };
    let Some(s) = ml_dsa::Signature::<P>::decode(enc_sig) else {
        return false;
    };
    ml_dsa::VerifyingKey::<P>::decode(enc_key).verify_with_context(m, &[], &s)
}

#[cfg(feature = "slh-dsa")]
#[inline(never)]
fn slhdsa<P: slh_dsa::ParameterSet + slh_dsa::VerifyingKeyLen>(
    raw: &[u8],
    msg: Message<'_>,
    sig: &[u8],
) -> bool {
    let Message::Bytes(m) = msg else {
        return false;
    };
    let (Ok(vk), Ok(s)) = (
        slh_dsa::VerifyingKey::<P>::try_from(raw),
        slh_dsa::Signature::<P>::try_from(sig),
    ) else {
        return false;
    };
    vk.try_verify_with_context(m, &[], &s).is_ok()
}
