//! SubjectPublicKeyInfo from a token's public key object (CKA_EC_POINT, CKA_MODULUS +
//! CKA_PUBLIC_EXPONENT), so `fwseal_crypto::PublicKey` can verify HSM signatures.

use crate::keys::ClassicalKind;
use crate::HsmError;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;
use der::{Decode, Encode};
use fwseal_crypto::{CryptoError, PublicKey, SigAlg};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::{AssociatedOid, EncodePublicKey};

/// DER-encoded namedCurve OID for CKA_EC_PARAMS.
pub(crate) fn ec_params(kind: ClassicalKind) -> Result<Vec<u8>, HsmError> {
    let oid = match kind {
        ClassicalKind::P256 => p256::NistP256::OID,
        ClassicalKind::P384 => p384::NistP384::OID,
        ClassicalKind::Rsa(_) => return Err(HsmError::Unsupported("RSA has no EC params".into())),
    };
    oid.to_der()
        .map_err(|e| HsmError::Crypto(CryptoError::Encoding(e.to_string())))
}

/// CKA_EC_POINT is a DER OCTET STRING holding the SEC1 point (PKCS#11 2.40+); some tokens
/// return the bare point. Accept both.
fn sec1_point(ec_point: &[u8]) -> Vec<u8> {
    match der::asn1::OctetString::from_der(ec_point) {
        Ok(o) => o.as_bytes().to_vec(),
        Err(_) => ec_point.to_vec(),
    }
}

fn bad(e: impl std::fmt::Display) -> HsmError {
    HsmError::Crypto(CryptoError::BadKey(format!("token public key: {e}")))
}

/// The public key of `handle` (a CKO_PUBLIC_KEY or CKO_PRIVATE_KEY carrying the public
/// attributes) for `alg`.
pub(crate) fn public_key(
    s: &Session,
    handle: ObjectHandle,
    alg: SigAlg,
) -> Result<PublicKey, HsmError> {
    let spki = match alg {
        SigAlg::EcdsaP256Sha256 | SigAlg::EcdsaP384Sha384 => {
            let attrs = s
                .get_attributes(handle, &[AttributeType::EcPoint])
                .map_err(HsmError::p11("C_GetAttributeValue(EC_POINT)"))?;
            let Some(Attribute::EcPoint(p)) = attrs.into_iter().next() else {
                return Err(bad("no CKA_EC_POINT"));
            };
            let point = sec1_point(&p);
            if alg == SigAlg::EcdsaP256Sha256 {
                let k = p256::PublicKey::from_sec1_bytes(&point).map_err(bad)?;
                // Normalise to the uncompressed encoding.
                let k = p256::PublicKey::from_sec1_bytes(k.to_encoded_point(false).as_bytes())
                    .map_err(bad)?;
                k.to_public_key_der().map_err(bad)?.into_vec()
            } else {
                let k = p384::PublicKey::from_sec1_bytes(&point).map_err(bad)?;
                k.to_public_key_der().map_err(bad)?.into_vec()
            }
        }
        SigAlg::RsaPssSha256 | SigAlg::RsaPkcs1Sha256 => {
            let attrs = s
                .get_attributes(
                    handle,
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                )
                .map_err(HsmError::p11("C_GetAttributeValue(MODULUS)"))?;
            let (mut n, mut e) = (None, None);
            for a in attrs {
                match a {
                    Attribute::Modulus(v) => n = Some(v),
                    Attribute::PublicExponent(v) => e = Some(v),
                    _ => {}
                }
            }
            let (Some(n), Some(e)) = (n, e) else {
                return Err(bad("no CKA_MODULUS / CKA_PUBLIC_EXPONENT"));
            };
            let k = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&n),
                rsa::BigUint::from_bytes_be(&e),
            )
            .map_err(bad)?;
            k.to_public_key_der().map_err(bad)?.into_vec()
        }
        other => {
            return Err(HsmError::Unsupported(format!(
                "{other} has no token public key object in wrapped-seed mode"
            )))
        }
    };
    Ok(PublicKey::from_spki_der(alg, &spki)?)
}
