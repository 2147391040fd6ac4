//! The key registry: which key versions each product has, which one signs, their pinned key
//! ids and certificates. Lives in `state_dir/keys.json` (written atomically); the private keys
//! themselves live only in the HSM under the labels `fwseal-hsm` defines.

use anyhow::{Context, Result};
use fwseal_crypto::SigAlg;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The reserved product name of the appliance's own provenance / checkpoint keys (one name,
/// shared with the wire types and the server).
pub use fwseal_api::APPLIANCE;

/// The reserved product name of the built-in TSA's key and certificate.
pub use fwseal_api::TSA_PRODUCT as TSA;

/// One half of a key version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyEntry {
    /// Algorithm the key was created for (RSA keys sign PSS or PKCS#1 as the format needs).
    pub alg: SigAlg,
    /// Pinned key id (hex SHA-256 of the SPKI DER).
    pub key_id: String,
    /// SPKI PEM (public, for export and verification).
    pub spki_pem: String,
    /// Post-quantum keys: `native` (key pair in a PKCS#11 3.2 token) or `wrapped-seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pq_mode: Option<String>,
}

/// One key version of a product.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Version {
    /// Classical half.
    pub classical: Option<KeyEntry>,
    /// Post-quantum half.
    pub pq: Option<KeyEntry>,
    /// Certificate of the classical key (PEM): self-signed code signing for RSA/.efi products,
    /// the TSA certificate for `fwseal-tsa`.
    pub certificate_pem: Option<String>,
    /// Retired versions never sign; they stay exported for verification.
    pub retired: bool,
    /// RFC 3339 creation time.
    pub created: String,
}

/// All versions of one product.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProductKeys {
    /// Version number → keys.
    pub versions: BTreeMap<u32, Version>,
}

impl ProductKeys {
    /// The newest version that is not retired: the one that signs.
    pub fn current(&self) -> Option<(u32, &Version)> {
        self.versions
            .iter()
            .rev()
            .find(|(_, v)| !v.retired)
            .map(|(n, v)| (*n, v))
    }

    /// The next version number.
    pub fn next_version(&self) -> u32 {
        self.versions.keys().next_back().map(|v| v + 1).unwrap_or(1)
    }
}

/// The whole registry.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Registry {
    /// Product → versions.
    pub products: BTreeMap<String, ProductKeys>,
}

impl Registry {
    /// `state_dir/keys.json`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("keys.json")
    }

    /// Load (an absent file is an empty registry).
    pub fn load(state_dir: &Path) -> Result<Self> {
        let p = Self::path(state_dir);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| format!("parse {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
            Err(e) => Err(e).with_context(|| format!("read {}", p.display())),
        }
    }

    /// Save atomically (temp file, fsync, rename).
    pub fn save(&self, state_dir: &Path) -> Result<()> {
        let p = Self::path(state_dir);
        let mut tmp = tempfile::NamedTempFile::new_in(state_dir)?;
        serde_json::to_writer_pretty(&mut tmp, self)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&p)
            .map_err(|e| e.error)
            .with_context(|| format!("write {}", p.display()))?;
        Ok(())
    }
}
