//! The HSM-backed [`KeyService`]: the one place the daemon resolves a product's signers.
//! Keys are opened with their pinned key ids from the registry, so a token whose objects were
//! swapped is refused rather than used.

use crate::registry::{KeyEntry, Registry, Version, APPLIANCE, TSA};
use anyhow::{anyhow, bail, Context, Result};
use fwseal_crypto::{Family, KeyId, SigAlg, Signer};
use fwseal_hsm::{keys, ClassicalKind, HsmSigner, PqMode, ProductId, Token};
use fwseal_server::keys::{ApplianceSigners, KeyError, KeyService, ProductSigners};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Signers over one token, cached per (product, version, algorithm).
pub struct HsmKeys {
    token: Token,
    state_dir: PathBuf,
    cache: Mutex<HashMap<(String, u32, SigAlg), Arc<HsmSigner>>>,
}

fn unavailable(e: impl std::fmt::Display) -> KeyError {
    KeyError::Unavailable(e.to_string())
}

impl HsmKeys {
    /// Over an open token; the registry is read from `state_dir` on each resolution so that
    /// `fwseald keys rotate` takes effect without a restart.
    pub fn new(token: Token, state_dir: PathBuf) -> Self {
        HsmKeys {
            token,
            state_dir,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn signer(
        &self,
        product: &str,
        version: u32,
        alg: SigAlg,
        pinned: &str,
    ) -> Result<Arc<HsmSigner>, KeyError> {
        let key = (product.to_string(), version, alg);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = cache.get(&key) {
            return Ok(s.clone());
        }
        let pid = ProductId::new(product).map_err(unavailable)?;
        let pin = KeyId::from_hex(pinned)
            .ok_or_else(|| unavailable(format!("registry key id {pinned:?} is not hex")))?;
        let s = Arc::new(
            HsmSigner::open_pinned(&self.token, &pid, version, alg, pin).map_err(unavailable)?,
        );
        cache.insert(key, s.clone());
        Ok(s)
    }

    fn current(&self, product: &str) -> Result<(u32, Version), KeyError> {
        let reg = Registry::load(&self.state_dir).map_err(unavailable)?;
        let pk = reg.products.get(product).ok_or_else(|| KeyError::Missing {
            product: product.into(),
            alg: SigAlg::EcdsaP256Sha256,
        })?;
        let (n, v) = pk.current().ok_or_else(|| KeyError::Missing {
            product: product.into(),
            alg: SigAlg::EcdsaP256Sha256,
        })?;
        Ok((n, v.clone()))
    }
}

fn same_key_type(want: SigAlg, have: SigAlg) -> bool {
    let rsa = |a: SigAlg| matches!(a, SigAlg::RsaPkcs1Sha256 | SigAlg::RsaPssSha256);
    want == have || (rsa(want) && rsa(have))
}

impl KeyService for HsmKeys {
    fn product_signers(
        &self,
        product: &str,
        classical: Option<SigAlg>,
        pq: Option<SigAlg>,
    ) -> Result<ProductSigners, KeyError> {
        if product == APPLIANCE || product == TSA {
            // Structurally impossible to reach the appliance's or the TSA's keys through a
            // product request.
            return Err(KeyError::Missing {
                product: product.into(),
                alg: classical.or(pq).unwrap_or(SigAlg::EcdsaP256Sha256),
            });
        }
        let (version, v) = self.current(product)?;
        let mut out = ProductSigners {
            classical: None,
            pq: None,
            certificate: None,
        };
        if let Some(alg) = classical {
            let e = v
                .classical
                .as_ref()
                .filter(|e| same_key_type(alg, e.alg))
                .ok_or(KeyError::Missing {
                    product: product.into(),
                    alg,
                })?;
            out.classical = Some(self.signer(product, version, alg, &e.key_id)? as Arc<dyn Signer>);
            out.certificate = v
                .certificate_pem
                .as_deref()
                .and_then(|p| fwseal_crypto::verify::spki_pem_decode(p).ok())
                .map(|(_, der)| der);
        }
        if let Some(alg) = pq {
            let e =
                v.pq.as_ref()
                    .filter(|e| e.alg == alg)
                    .ok_or(KeyError::Missing {
                        product: product.into(),
                        alg,
                    })?;
            out.pq = Some(self.signer(product, version, alg, &e.key_id)? as Arc<dyn Signer>);
        }
        Ok(out)
    }

    fn current_version(&self, product: &str) -> Result<Option<u32>, KeyError> {
        match self.current(product) {
            Ok((n, _)) => Ok(Some(n)),
            Err(KeyError::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn appliance_signers(&self) -> Result<ApplianceSigners, KeyError> {
        let (version, v) = self.current(APPLIANCE)?;
        let c = v.classical.as_ref().ok_or(KeyError::Missing {
            product: APPLIANCE.into(),
            alg: SigAlg::EcdsaP256Sha256,
        })?;
        let q = v.pq.as_ref().ok_or(KeyError::Missing {
            product: APPLIANCE.into(),
            alg: SigAlg::MlDsa65,
        })?;
        Ok(ApplianceSigners {
            classical: self.signer(APPLIANCE, version, c.alg, &c.key_id)?,
            pq: self.signer(APPLIANCE, version, q.alg, &q.key_id)?,
        })
    }

    fn tsa_signer(&self) -> Result<(Arc<dyn Signer>, Vec<u8>), KeyError> {
        let missing = || KeyError::Missing {
            product: TSA.into(),
            alg: SigAlg::EcdsaP256Sha256,
        };
        let (version, v) = self.current(TSA)?;
        let c = v.classical.as_ref().ok_or_else(missing)?;
        let cert = v
            .certificate_pem
            .as_deref()
            .and_then(|p| fwseal_crypto::verify::spki_pem_decode(p).ok())
            .map(|(_, der)| der)
            .ok_or_else(missing)?;
        Ok((self.signer(TSA, version, c.alg, &c.key_id)?, cert))
    }

    fn health(&self) -> Result<(), KeyError> {
        let h = self.token.health();
        if h.ok() {
            Ok(())
        } else {
            Err(KeyError::Unavailable(h.detail.unwrap_or_else(|| {
                "token not present or not logged in".into()
            })))
        }
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Create key version `next` for `product` in the token and record it. RSA keys are 3072 bits
/// unless `rsa_bits` says otherwise; RSA products also get a self-signed code-signing
/// certificate (for `sbverify --cert` and `virt-fw-vars --add-db`).
pub fn create_version(
    token: &Token,
    state_dir: &std::path::Path,
    product: &str,
    classical: Option<SigAlg>,
    pq: Option<SigAlg>,
    rsa_bits: u32,
    pq_keys: fwseal_server::config::PqKeys,
) -> Result<u32> {
    let mut reg = Registry::load(state_dir)?;
    let pk = reg.products.entry(product.to_string()).or_default();
    let version = pk.next_version();
    let pid = ProductId::new(product).map_err(|e| anyhow!("{e}"))?;
    let mut v = Version {
        created: now(),
        ..Version::default()
    };
    if let Some(alg) = classical {
        if alg.family() != Family::Classical {
            bail!("{alg} is not a classical algorithm");
        }
        let kind = ClassicalKind::for_alg(alg, rsa_bits).map_err(|e| anyhow!("{e}"))?;
        let pubk =
            keys::create_classical(token, &pid, version, alg, kind).map_err(|e| anyhow!("{e}"))?;
        if matches!(kind, ClassicalKind::Rsa(_)) {
            let signer = HsmSigner::open(token, &pid, version, SigAlg::RsaPkcs1Sha256)
                .map_err(|e| anyhow!("{e}"))?;
            let cert = fwseal_crypto::cert::self_signed(
                &signer,
                &fwseal_crypto::cert::CertParams::code_signing(&format!(
                    "fwseal {product} v{version}"
                )),
            )?;
            v.certificate_pem = Some(fwseal_crypto::verify::pem_encode("CERTIFICATE", &cert));
        }
        v.classical = Some(KeyEntry {
            alg,
            key_id: pubk.key_id().to_hex(),
            spki_pem: pubk.spki_pem(),
            pq_mode: None,
        });
    }
    if let Some(alg) = pq {
        if alg.family() != Family::PostQuantum {
            bail!("{alg} is not a post-quantum algorithm");
        }
        use fwseal_server::config::PqKeys;
        let mode = match pq_keys {
            PqKeys::Auto => PqMode::best_for(token, alg),
            PqKeys::Native => PqMode::Native,
            PqKeys::WrappedSeed => PqMode::WrappedSeed,
        };
        let pubk = keys::create_pq(
            token,
            &pid,
            version,
            alg,
            mode,
            fwseal_crypto::provider::default_provider(),
        )
        .map_err(|e| anyhow!("{e}"))?;
        v.pq = Some(KeyEntry {
            alg,
            key_id: pubk.key_id().to_hex(),
            spki_pem: pubk.spki_pem(),
            pq_mode: Some(mode.name().to_string()),
        });
    }
    pk.versions.insert(version, v);
    reg.save(state_dir).context("save key registry")?;
    Ok(version)
}

/// Create key version `next` of the built-in TSA (reserved product `fwseal-tsa`): an ECDSA
/// P-256 key in the token (non-extractable, like every classical key) and its certificate
/// (`fwseal_tsa::tsa_certificate`: self-signed, critical EKU id-kp-timeStamping, valid from now
/// for `days`), recorded together in one registry write.
pub fn create_tsa_version(
    token: &Token,
    state_dir: &std::path::Path,
    subject_cn: &str,
    days: u32,
) -> Result<u32> {
    let mut reg = Registry::load(state_dir)?;
    let pk = reg.products.entry(TSA.to_string()).or_default();
    let version = pk.next_version();
    let pid = ProductId::new(TSA).map_err(|e| anyhow!("{e}"))?;
    let alg = SigAlg::EcdsaP256Sha256;
    let kind = ClassicalKind::for_alg(alg, 0).map_err(|e| anyhow!("{e}"))?;
    let pubk =
        keys::create_classical(token, &pid, version, alg, kind).map_err(|e| anyhow!("{e}"))?;
    let signer = HsmSigner::open_pinned(token, &pid, version, alg, pubk.key_id())
        .map_err(|e| anyhow!("{e}"))?;
    let cert = fwseal_tsa::tsa_certificate(
        subject_cn,
        &signer,
        None,
        std::time::SystemTime::now(),
        days,
    )
    .map_err(|e| anyhow!("TSA certificate: {e}"))?;
    pk.versions.insert(
        version,
        Version {
            created: now(),
            classical: Some(KeyEntry {
                alg,
                key_id: pubk.key_id().to_hex(),
                spki_pem: pubk.spki_pem(),
                pq_mode: None,
            }),
            pq: None,
            certificate_pem: Some(fwseal_crypto::verify::pem_encode("CERTIFICATE", &cert)),
            retired: false,
        },
    );
    reg.save(state_dir).context("save key registry")?;
    Ok(version)
}

/// Mark a version retired (it no longer signs; its public keys stay exported).
pub fn retire(state_dir: &std::path::Path, product: &str, version: u32) -> Result<()> {
    let mut reg = Registry::load(state_dir)?;
    let v = reg
        .products
        .get_mut(product)
        .and_then(|p| p.versions.get_mut(&version))
        .ok_or_else(|| anyhow!("product {product} has no key version {version}"))?;
    v.retired = true;
    reg.save(state_dir)
}
