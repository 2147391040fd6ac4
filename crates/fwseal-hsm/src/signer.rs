//! [`HsmSigner`]: a `fwseal_crypto::Signer` backed by a token key of one product and version.

use crate::keys::{resolve, unwrap_seed, ProductId, Role};
use crate::{HsmError, Token};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use fwseal_crypto::provider::PqProvider;
use fwseal_crypto::{CryptoError, Family, KeyId, PublicKey, SigAlg, SignedMessage, Signer};
use std::sync::RwLock;

enum Backing {
    /// Private key object in the token (classical).
    Token,
    /// Post-quantum private key object in a PKCS#11 3.2 token.
    NativePq,
    /// Post-quantum seed wrapped under the product KEK.
    WrappedSeed {
        blob: Vec<u8>,
        pinned_raw: Vec<u8>,
        provider: &'static dyn PqProvider,
    },
}

/// A signer for one (product, version, algorithm). `Send + Sync`; sessions come from the
/// token's pool per call. Object handles are resolved once, at [`HsmSigner::open`], through
/// [`crate::keys::resolve`] — the signer can only ever use the keys of the product it was opened
/// for.
pub struct HsmSigner {
    token: Token,
    product: ProductId,
    version: u32,
    alg: SigAlg,
    label: String,
    public: PublicKey,
    backing: Backing,
    /// The private key (classical) or the product KEK (wrapped seed). Object handles can go
    /// stale (SoftHSM invalidates private-object handles on logout); they are then re-resolved
    /// through [`resolve`] for the same product and version.
    handle: RwLock<ObjectHandle>,
}

impl std::fmt::Debug for HsmSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HsmSigner({}, {}, {})",
            self.label,
            self.alg,
            self.public.key_id()
        )
    }
}

impl HsmSigner {
    /// Open the signer for `alg` of `product` key version `version`, with the default PQ provider.
    pub fn open(
        token: &Token,
        product: &ProductId,
        version: u32,
        alg: SigAlg,
    ) -> Result<Self, HsmError> {
        Self::open_with(
            token,
            product,
            version,
            alg,
            fwseal_crypto::provider::default_provider(),
        )
    }

    /// Like [`HsmSigner::open`], and fail unless the key id is `pinned` (the key id the product
    /// configuration publishes). Use this in the daemon: it catches a token whose objects were
    /// replaced, including the in-token pinned PQ public key.
    pub fn open_pinned(
        token: &Token,
        product: &ProductId,
        version: u32,
        alg: SigAlg,
        pinned: KeyId,
    ) -> Result<Self, HsmError> {
        let s = Self::open(token, product, version, alg)?;
        if s.public.key_id() != pinned {
            return Err(HsmError::PinnedKeyMismatch {
                label: s.label.clone(),
                detail: format!("expected {pinned}, token has {}", s.public.key_id()),
            });
        }
        Ok(s)
    }

    /// Open with an explicit post-quantum provider.
    pub fn open_with(
        token: &Token,
        product: &ProductId,
        version: u32,
        alg: SigAlg,
        provider: &'static dyn PqProvider,
    ) -> Result<Self, HsmError> {
        let (label, public, backing, handle) = match alg.family() {
            Family::Classical => token.with_session(|s| {
                let label = crate::keys::label(product, version, Role::Classical);
                let private = resolve(s, product, version, Role::Classical, true)?;
                let public_h = resolve(s, product, version, Role::Classical, false)?;
                let kt = s
                    .get_attributes(private, &[AttributeType::KeyType])
                    .map_err(HsmError::p11("C_GetAttributeValue(KEY_TYPE)"))?;
                let want = match alg {
                    SigAlg::EcdsaP256Sha256 | SigAlg::EcdsaP384Sha384 => KeyType::EC,
                    _ => KeyType::RSA,
                };
                if !matches!(kt.first(), Some(Attribute::KeyType(k)) if *k == want) {
                    return Err(HsmError::WrongKeyType {
                        label,
                        alg,
                        detail: format!("key type {kt:?}"),
                    });
                }
                // For EC this also checks the curve: P-256 points do not parse as P-384.
                let public = crate::pubkey::public_key(s, public_h, alg).map_err(|e| {
                    HsmError::WrongKeyType {
                        label: label.clone(),
                        alg,
                        detail: e.to_string(),
                    }
                })?;
                Ok((label, public, Backing::Token, private))
            })?,
            Family::PostQuantum => token.with_session(|s| {
                // A native key pair, if the token holds one for this version.
                match resolve(s, product, version, Role::PqNative, true) {
                    Ok(private) => {
                        let label = crate::keys::label(product, version, Role::PqNative);
                        let pubh = resolve(s, product, version, Role::PqNative, false)?;
                        let (_, key_type, params) = crate::keys::native_params(alg)
                            .ok_or_else(|| HsmError::Unsupported(format!("{alg}")))?;
                        let got = s
                            .get_attributes(
                                pubh,
                                &[AttributeType::KeyType, AttributeType::ParameterSet],
                            )
                            .map_err(HsmError::p11("C_GetAttributeValue(pq type)"))?;
                        let ok_type = got
                            .iter()
                            .any(|a| matches!(a, Attribute::KeyType(k) if *k == key_type));
                        let ok_params = got
                            .iter()
                            .any(|a| matches!(a, Attribute::ParameterSet(p) if **p == *params));
                        if !ok_type || !ok_params {
                            return Err(HsmError::WrongKeyType {
                                label,
                                alg,
                                detail: format!("{got:?}"),
                            });
                        }
                        let public = crate::keys::native_public(s, pubh, alg)?;
                        return Ok((label, public, Backing::NativePq, private));
                    }
                    Err(HsmError::KeyNotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
                let label = crate::keys::label(product, version, Role::PqSeed);
                let seed_h = resolve(s, product, version, Role::PqSeed, false)?;
                let pub_h = resolve(s, product, version, Role::PqPub, false)?;
                let kek = resolve(s, product, version, Role::PqKek, true)?;
                let (blob, app) = read_data(s, seed_h)?;
                let (spki, _) = read_data(s, pub_h)?;
                let want_app = format!("fwseal:{}", alg.name());
                if app != want_app.as_bytes() {
                    return Err(HsmError::WrongKeyType {
                        label,
                        alg,
                        detail: format!(
                            "seed is for {:?}",
                            String::from_utf8_lossy(&app).trim_start_matches("fwseal:")
                        ),
                    });
                }
                let public = PublicKey::from_spki_der(alg, &spki)?;
                let pinned_raw = public.raw()?;
                Ok((
                    label,
                    public,
                    Backing::WrappedSeed {
                        blob,
                        pinned_raw,
                        provider,
                    },
                    kek,
                ))
            })?,
        };
        Ok(HsmSigner {
            token: token.clone(),
            product: product.clone(),
            version,
            alg,
            label,
            public,
            backing,
            handle: RwLock::new(handle),
        })
    }

    /// The product this signer belongs to.
    pub fn product(&self) -> &ProductId {
        &self.product
    }

    /// The key version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// CKA_LABEL of the key (the seed object for PQ keys).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether this key's private material ever enters process memory (wrapped-seed PQ keys).
    pub fn in_process_private_material(&self) -> bool {
        matches!(self.backing, Backing::WrappedSeed { .. })
    }

    fn handle(&self) -> ObjectHandle {
        *self.handle.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Log in again if needed and re-resolve the object handle for this product and version.
    fn refresh(&self) -> Result<(), HsmError> {
        self.token.ensure_logged_in()?;
        let h = self.token.with_session(|s| match self.backing {
            Backing::Token => resolve(s, &self.product, self.version, Role::Classical, true),
            Backing::NativePq => resolve(s, &self.product, self.version, Role::PqNative, true),
            Backing::WrappedSeed { .. } => {
                resolve(s, &self.product, self.version, Role::PqKek, true)
            }
        })?;
        *self.handle.write().unwrap_or_else(|p| p.into_inner()) = h;
        Ok(())
    }

    fn sign_inner(&self, msg: &SignedMessage) -> Result<Vec<u8>, HsmError> {
        match self.sign_once(msg, false) {
            Err(e) if e.is_stale_handle() => {
                self.refresh()?;
                // The object was found again by label: check its output against the pinned
                // public key before releasing anything (PQ: sign_from_seed already does).
                self.sign_once(msg, true)
            }
            r => r,
        }
    }

    fn sign_once(&self, msg: &SignedMessage, verify: bool) -> Result<Vec<u8>, HsmError> {
        let handle = self.handle();
        match &self.backing {
            Backing::Token => {
                let private = &handle;
                let h = msg.classical_hash(self.alg)?;
                let (mech, data) = match self.alg {
                    SigAlg::EcdsaP256Sha256 | SigAlg::EcdsaP384Sha384 => {
                        (Mechanism::Ecdsa, h.clone())
                    }
                    SigAlg::RsaPssSha256 => (
                        Mechanism::RsaPkcsPss(PkcsPssParams {
                            hash_alg: MechanismType::SHA256,
                            mgf: PkcsMgfType::MGF1_SHA256,
                            s_len: 32u64.into(),
                        }),
                        h.clone(),
                    ),
                    SigAlg::RsaPkcs1Sha256 => {
                        // EMSA-PKCS1-v1_5: the token pads DigestInfo(SHA-256, h).
                        let mut d = rsa::Pkcs1v15Sign::new::<sha2::Sha256>().prefix.to_vec();
                        d.extend_from_slice(&h);
                        (Mechanism::RsaPkcs, d)
                    }
                    other => {
                        return Err(HsmError::Unsupported(format!(
                            "{other} is not a token algorithm"
                        )))
                    }
                };
                let raw = self.token.with_session(|s| {
                    s.sign(&mech, *private, &data)
                        .map_err(HsmError::p11("C_Sign"))
                })?;
                let sig = match self.alg {
                    SigAlg::EcdsaP256Sha256 => p256::ecdsa::Signature::from_slice(&raw)
                        .map_err(|e| CryptoError::Signing(format!("token r||s: {e}")))?
                        .to_der()
                        .as_bytes()
                        .to_vec(),
                    SigAlg::EcdsaP384Sha384 => p384::ecdsa::Signature::from_slice(&raw)
                        .map_err(|e| CryptoError::Signing(format!("token r||s: {e}")))?
                        .to_der()
                        .as_bytes()
                        .to_vec(),
                    _ if !verify => {
                        // RSA: verify before release (a faulty CRT computation leaks the key;
                        // verification is cheap next to RSA signing).
                        self.public.verify_bytes(msg, &raw).map_err(|e| {
                            CryptoError::Signing(format!("token produced a bad RSA signature: {e}"))
                        })?;
                        raw
                    }
                    _ => raw,
                };
                if verify {
                    self.public.verify_bytes(msg, &sig).map_err(|e| {
                        CryptoError::Signing(format!("re-resolved key does not match: {e}"))
                    })?;
                }
                Ok(sig)
            }
            Backing::NativePq => {
                let SignedMessage::Bytes(m) = msg else {
                    return Err(CryptoError::Misuse(format!(
                        "{} signs message bytes, not a prehash",
                        self.alg
                    ))
                    .into());
                };
                // Pure mode, empty context (FIPS 204/205 external interface), hedged when the
                // token can: the same signatures every other implementation checks.
                let ctx = cryptoki::mechanism::dsa::SignAdditionalContext::new(
                    cryptoki::mechanism::dsa::HedgeType::Preferred,
                    None,
                );
                let mech = if self.alg.name().starts_with("ml-dsa") {
                    Mechanism::MlDsa(ctx)
                } else {
                    Mechanism::SlhDsa(ctx)
                };
                let sig = self.token.with_session(|s| {
                    s.sign(&mech, handle, m)
                        .map_err(HsmError::p11("C_Sign(pq)"))
                })?;
                // Checked against the pinned public key before release, as for RSA.
                self.public.verify_bytes(msg, &sig).map_err(|e| {
                    CryptoError::Signing(format!(
                        "token produced a bad {} signature: {e}",
                        self.alg
                    ))
                })?;
                Ok(sig)
            }
            Backing::WrappedSeed {
                blob,
                pinned_raw,
                provider,
            } => {
                let SignedMessage::Bytes(m) = msg else {
                    return Err(CryptoError::Misuse(format!(
                        "{} signs message bytes, not a prehash",
                        self.alg
                    ))
                    .into());
                };
                let seed = self.token.with_session(|s| unwrap_seed(s, handle, blob))?;
                // `seed` is Zeroizing: wiped when it goes out of scope at the end of this arm,
                // whether signing succeeded or not.
                provider
                    .sign_from_seed(self.alg, &seed, m, pinned_raw)
                    .map_err(|e| match e {
                        CryptoError::BadKey(d) => HsmError::PinnedKeyMismatch {
                            label: self.label.clone(),
                            detail: d,
                        },
                        other => other.into(),
                    })
            }
        }
    }
}

fn read_data(
    s: &cryptoki::session::Session,
    h: ObjectHandle,
) -> Result<(Vec<u8>, Vec<u8>), HsmError> {
    let attrs = s
        .get_attributes(h, &[AttributeType::Value, AttributeType::Application])
        .map_err(HsmError::p11("C_GetAttributeValue(data)"))?;
    let (mut v, mut a) = (Vec::new(), Vec::new());
    for x in attrs {
        match x {
            Attribute::Value(b) => v = b,
            Attribute::Application(b) => a = b,
            _ => {}
        }
    }
    Ok((v, a))
}

impl Signer for HsmSigner {
    fn alg(&self) -> SigAlg {
        self.alg
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign_raw(&self, msg: &SignedMessage) -> Result<Vec<u8>, CryptoError> {
        self.sign_inner(msg).map_err(CryptoError::from)
    }
}
