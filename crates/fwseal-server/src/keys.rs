//! The signing backend as the server sees it: per-product signers and the appliance's own
//! provenance keys. `fwseal-hsm` implements it over PKCS#11; nothing else in the server knows
//! about tokens.

use fwseal_crypto::{SigAlg, Signer};
use std::sync::Arc;

/// Why keys could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The product has no key for the algorithm (not provisioned, or retired).
    #[error("no {alg} key provisioned for product {product}")]
    Missing {
        /// Product.
        product: String,
        /// Algorithm.
        alg: SigAlg,
    },
    /// The HSM is unreachable or failed.
    #[error("HSM unavailable: {0}")]
    Unavailable(String),
}

/// The signers of one product for one request.
pub struct ProductSigners {
    /// Classical half.
    pub classical: Option<Arc<dyn Signer>>,
    /// Post-quantum half.
    pub pq: Option<Arc<dyn Signer>>,
    /// DER certificate of the classical key (Authenticode needs it).
    pub certificate: Option<Vec<u8>>,
}

/// The appliance's provenance keys (ECDSA P-256 + ML-DSA-65), never a product key.
pub struct ApplianceSigners {
    /// ECDSA P-256.
    pub classical: Arc<dyn Signer>,
    /// ML-DSA-65.
    pub pq: Arc<dyn Signer>,
}

/// Key resolution. Keys are resolved in exactly one place — this trait's implementation —
/// keyed by product, so a request for product A cannot reach product B's keys.
pub trait KeyService: Send + Sync {
    /// The current signers of `product` for the given algorithms.
    fn product_signers(
        &self,
        product: &str,
        classical: Option<SigAlg>,
        pq: Option<SigAlg>,
    ) -> Result<ProductSigners, KeyError>;
    /// The appliance's provenance / checkpoint keys.
    fn appliance_signers(&self) -> Result<ApplianceSigners, KeyError>;
    /// Cheap health check: token present and logged in.
    fn health(&self) -> Result<(), KeyError>;
    /// The key version `product` currently signs with, if the backend versions keys. Used by
    /// approval policies restricted to `key_versions`.
    fn current_version(&self, product: &str) -> Result<Option<u32>, KeyError> {
        let _ = product;
        Ok(None)
    }
    /// The built-in TSA's signer (reserved product [`fwseal_api::TSA_PRODUCT`], current key
    /// version) and its certificate (DER). A backend without one answers `Missing`.
    fn tsa_signer(&self) -> Result<(Arc<dyn Signer>, Vec<u8>), KeyError> {
        Err(KeyError::Missing {
            product: fwseal_api::TSA_PRODUCT.into(),
            alg: SigAlg::EcdsaP256Sha256,
        })
    }
}
