//! Post-quantum primitives (RustCrypto `ml-dsa` and `slh-dsa`), pure mode, empty context.
//!
//! Private keys are handled as *seeds*: ML-DSA's 32-byte ξ (FIPS 204 `KeyGen_internal`), and
//! SLH-DSA's `SK.seed ‖ SK.prf ‖ PK.seed` (3·n bytes, FIPS 205 `slh_keygen_internal`). A seed is
//! the smallest thing that has to be stored (wrapped) and is zeroized by the caller.

use crate::alg::SigAlg;
use crate::CryptoError;
use ml_dsa::signature::{Keypair as _, Signer as _};

/// Length of the private seed for `alg`.
pub fn seed_len(alg: SigAlg) -> Option<usize> {
    match alg {
        SigAlg::MlDsa44 | SigAlg::MlDsa65 | SigAlg::MlDsa87 => Some(32),
        SigAlg::SlhDsaSha2_128s | SigAlg::SlhDsaSha2_128f => Some(48),
        SigAlg::SlhDsaSha2_192s => Some(72),
        SigAlg::SlhDsaSha2_256s => Some(96),
        _ => None,
    }
}

fn bad_seed(alg: SigAlg) -> CryptoError {
    CryptoError::Misuse(format!("wrong seed length for {alg}"))
}

macro_rules! ml_dsa_ops {
    ($p:ty, $seed:expr, $msg:expr) => {{
        let seed: &ml_dsa::Seed = $seed.try_into().map_err(|_| bad_seed(SigAlg::MlDsa44))?;
        ml_dsa::SigningKey::<$p>::from_seed(seed)
    }};
}

macro_rules! slh_sk {
    ($p:ty, $alg:expr, $seed:expr) => {{
        let n = $seed.len() / 3;
        if $seed.len() != seed_len($alg).unwrap_or(0) {
            return Err(bad_seed($alg));
        }
        slh_dsa::SigningKey::<$p>::slh_keygen_internal(
            &$seed[..n],
            &$seed[n..2 * n],
            &$seed[2 * n..],
        )
    }};
}

/// Raw public key (FIPS encoding) derived from a seed.
pub fn public_from_seed(alg: SigAlg, seed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    Ok(match alg {
        SigAlg::MlDsa44 => ml_dsa_ops!(ml_dsa::MlDsa44, seed, ())
            .verifying_key()
            .encode()
            .to_vec(),
        SigAlg::MlDsa65 => ml_dsa_ops!(ml_dsa::MlDsa65, seed, ())
            .verifying_key()
            .encode()
            .to_vec(),
        SigAlg::MlDsa87 => ml_dsa_ops!(ml_dsa::MlDsa87, seed, ())
            .verifying_key()
            .encode()
            .to_vec(),
        SigAlg::SlhDsaSha2_128s => slh_sk!(slh_dsa::Sha2_128s, alg, seed)
            .verifying_key()
            .to_vec(),
        SigAlg::SlhDsaSha2_128f => slh_sk!(slh_dsa::Sha2_128f, alg, seed)
            .verifying_key()
            .to_vec(),
        SigAlg::SlhDsaSha2_192s => slh_sk!(slh_dsa::Sha2_192s, alg, seed)
            .verifying_key()
            .to_vec(),
        SigAlg::SlhDsaSha2_256s => slh_sk!(slh_dsa::Sha2_256s, alg, seed)
            .verifying_key()
            .to_vec(),
        _ => return Err(CryptoError::Misuse(format!("{alg} is not post-quantum"))),
    })
}

/// Sign `msg` (pure mode, empty context). ML-DSA uses the deterministic variant; SLH-DSA the
/// deterministic variant too (`opt_rand = PK.seed`), so equal inputs give equal signatures.
pub fn sign(alg: SigAlg, seed: &[u8], msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let err = |_| CryptoError::Signing(format!("{alg} signing failed"));
    Ok(match alg {
        SigAlg::MlDsa44 => ml_dsa_ops!(ml_dsa::MlDsa44, seed, ())
            .try_sign(msg)
            .map_err(err)?
            .encode()
            .to_vec(),
        SigAlg::MlDsa65 => ml_dsa_ops!(ml_dsa::MlDsa65, seed, ())
            .try_sign(msg)
            .map_err(err)?
            .encode()
            .to_vec(),
        SigAlg::MlDsa87 => ml_dsa_ops!(ml_dsa::MlDsa87, seed, ())
            .try_sign(msg)
            .map_err(err)?
            .encode()
            .to_vec(),
        SigAlg::SlhDsaSha2_128s => slh_sk!(slh_dsa::Sha2_128s, alg, seed)
            .try_sign_with_context(msg, &[], None)
            .map_err(err)?
            .to_vec(),
        SigAlg::SlhDsaSha2_128f => slh_sk!(slh_dsa::Sha2_128f, alg, seed)
            .try_sign_with_context(msg, &[], None)
            .map_err(err)?
            .to_vec(),
        SigAlg::SlhDsaSha2_192s => slh_sk!(slh_dsa::Sha2_192s, alg, seed)
            .try_sign_with_context(msg, &[], None)
            .map_err(err)?
            .to_vec(),
        SigAlg::SlhDsaSha2_256s => slh_sk!(slh_dsa::Sha2_256s, alg, seed)
            .try_sign_with_context(msg, &[], None)
            .map_err(err)?
            .to_vec(),
        _ => return Err(CryptoError::Misuse(format!("{alg} is not post-quantum"))),
    })
}

macro_rules! ml_dsa_verify {
    ($p:ty, $alg:expr, $pk:expr, $m:expr, $sig:expr) => {{
        let enc = ml_dsa::EncodedVerifyingKey::<$p>::try_from($pk)
            .map_err(|_| CryptoError::BadKey(format!("{} public key has wrong length", $alg)))?;
        let vk = ml_dsa::VerifyingKey::<$p>::decode(&enc);
        let s = ml_dsa::Signature::<$p>::try_from($sig)
            .map_err(|_| CryptoError::BadSignature(format!("{} signature is malformed", $alg)))?;
        if vk.verify_with_context($m, &[], &s) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature(format!(
                "{} signature does not verify",
                $alg
            )))
        }
    }};
}

macro_rules! slh_verify {
    ($p:ty, $alg:expr, $pk:expr, $m:expr, $sig:expr) => {{
        let vk = slh_dsa::VerifyingKey::<$p>::try_from($pk)
            .map_err(|_| CryptoError::BadKey(format!("{} public key is malformed", $alg)))?;
        let s = slh_dsa::Signature::<$p>::try_from($sig)
            .map_err(|_| CryptoError::BadSignature(format!("{} signature is malformed", $alg)))?;
        vk.try_verify_with_context($m, &[], &s)
            .map_err(|_| CryptoError::BadSignature(format!("{} signature does not verify", $alg)))
    }};
}

/// Verify a pure-mode, empty-context signature.
pub fn verify(alg: SigAlg, pk: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    match alg {
        SigAlg::MlDsa44 => ml_dsa_verify!(ml_dsa::MlDsa44, alg, pk, msg, sig),
        SigAlg::MlDsa65 => ml_dsa_verify!(ml_dsa::MlDsa65, alg, pk, msg, sig),
        SigAlg::MlDsa87 => ml_dsa_verify!(ml_dsa::MlDsa87, alg, pk, msg, sig),
        SigAlg::SlhDsaSha2_128s => slh_verify!(slh_dsa::Sha2_128s, alg, pk, msg, sig),
        SigAlg::SlhDsaSha2_128f => slh_verify!(slh_dsa::Sha2_128f, alg, pk, msg, sig),
        SigAlg::SlhDsaSha2_192s => slh_verify!(slh_dsa::Sha2_192s, alg, pk, msg, sig),
        SigAlg::SlhDsaSha2_256s => slh_verify!(slh_dsa::Sha2_256s, alg, pk, msg, sig),
        _ => Err(CryptoError::Misuse(format!("{alg} is not post-quantum"))),
    }
}

/// Check that `pk` is a well-formed public key for `alg`.
pub fn check_public_key(alg: SigAlg, pk: &[u8]) -> Result<(), CryptoError> {
    let want = match alg {
        SigAlg::MlDsa44 => 1312,
        SigAlg::MlDsa65 => 1952,
        SigAlg::MlDsa87 => 2592,
        SigAlg::SlhDsaSha2_128s | SigAlg::SlhDsaSha2_128f => 32,
        SigAlg::SlhDsaSha2_192s => 48,
        SigAlg::SlhDsaSha2_256s => 64,
        _ => return Err(CryptoError::Misuse(format!("{alg} is not post-quantum"))),
    };
    if pk.len() != want {
        return Err(CryptoError::BadKey(format!(
            "{alg} public key must be {want} bytes, got {}",
            pk.len()
        )));
    }
    Ok(())
}

macro_rules! ml_dsa_ctx {
    ($p:ty, $seed:expr, $m:expr, $ctx:expr) => {{
        let seed: &ml_dsa::Seed = $seed.try_into().map_err(|_| bad_seed(SigAlg::MlDsa44))?;
        ml_dsa::SigningKey::<$p>::from_seed(seed)
            .expanded_key()
            .sign_deterministic($m, $ctx)
            .map_err(|_| CryptoError::Signing("ML-DSA signing failed".into()))?
            .encode()
            .to_vec()
    }};
}

/// ML-DSA deterministic signing with an explicit context string. fwseal itself always signs
/// with the empty context ([`sign`]); this exists for FIPS 204 known-answer tests.
pub fn ml_dsa_sign_with_context(
    alg: SigAlg,
    seed: &[u8],
    msg: &[u8],
    ctx: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    Ok(match alg {
        SigAlg::MlDsa44 => ml_dsa_ctx!(ml_dsa::MlDsa44, seed, msg, ctx),
        SigAlg::MlDsa65 => ml_dsa_ctx!(ml_dsa::MlDsa65, seed, msg, ctx),
        SigAlg::MlDsa87 => ml_dsa_ctx!(ml_dsa::MlDsa87, seed, msg, ctx),
        _ => return Err(CryptoError::Misuse(format!("{alg} is not ML-DSA"))),
    })
}

macro_rules! ml_dsa_verify_ctx {
    ($p:ty, $alg:expr, $pk:expr, $m:expr, $ctx:expr, $sig:expr) => {{
        let enc = ml_dsa::EncodedVerifyingKey::<$p>::try_from($pk)
            .map_err(|_| CryptoError::BadKey(format!("{} public key has wrong length", $alg)))?;
        let vk = ml_dsa::VerifyingKey::<$p>::decode(&enc);
        let s = ml_dsa::Signature::<$p>::try_from($sig)
            .map_err(|_| CryptoError::BadSignature(format!("{} signature is malformed", $alg)))?;
        if vk.verify_with_context($m, $ctx, &s) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature(format!(
                "{} signature does not verify",
                $alg
            )))
        }
    }};
}

/// ML-DSA verification with an explicit context string (known-answer tests; fwseal messages
/// always use the empty context, see [`verify`]).
pub fn ml_dsa_verify_with_context(
    alg: SigAlg,
    pk: &[u8],
    msg: &[u8],
    ctx: &[u8],
    sig: &[u8],
) -> Result<(), CryptoError> {
    match alg {
        SigAlg::MlDsa44 => ml_dsa_verify_ctx!(ml_dsa::MlDsa44, alg, pk, msg, ctx, sig),
        SigAlg::MlDsa65 => ml_dsa_verify_ctx!(ml_dsa::MlDsa65, alg, pk, msg, ctx, sig),
        SigAlg::MlDsa87 => ml_dsa_verify_ctx!(ml_dsa::MlDsa87, alg, pk, msg, ctx, sig),
        _ => Err(CryptoError::Misuse(format!("{alg} is not ML-DSA"))),
    }
}
