//! Typed errors. Startup problems name exactly which of module / token / PIN is wrong.

use std::path::PathBuf;

/// Everything that can go wrong in `fwseal-hsm`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// Every allowed session of the token stayed in use for the whole wait.
    #[error("HSM token {label:?} busy: all {sessions} sessions in use for {}", humantime_secs(*waited))]
    Busy {
        /// Token label.
        label: String,
        /// `max_sessions`.
        sessions: usize,
        /// How long the caller waited.
        waited: std::time::Duration,
    },
    /// The PKCS#11 module file does not exist.
    #[error("PKCS#11 module not found: {}", path.display())]
    ModuleMissing {
        /// The configured path.
        path: PathBuf,
    },
    /// The module exists but could not be loaded or initialised.
    #[error("PKCS#11 module {} could not be loaded: {detail}", path.display())]
    ModuleLoad {
        /// The configured path.
        path: PathBuf,
        /// What the loader or C_Initialize said.
        detail: String,
    },
    /// No slot holds an initialised token with this label.
    #[error("no token labelled {label:?} in module {} (tokens present: {available:?})", module.display())]
    TokenMissing {
        /// The label searched for.
        label: String,
        /// The module searched.
        module: PathBuf,
        /// Labels of the initialised tokens that are present.
        available: Vec<String>,
    },
    /// The token rejected the user PIN.
    #[error("wrong PIN for token {label:?}")]
    WrongPin {
        /// Token label.
        label: String,
    },
    /// The token's user PIN is locked (too many wrong attempts).
    #[error("the user PIN of token {label:?} is locked")]
    PinLocked {
        /// Token label.
        label: String,
    },
    /// The PIN could not be obtained from its source (the PIN itself is never shown).
    #[error("cannot read the PIN from {source_desc}: {detail}")]
    PinUnavailable {
        /// "environment variable X" / "file Y".
        source_desc: String,
        /// Why.
        detail: String,
    },
    /// Configuration is inconsistent (e.g. SoftHSM2 already initialised with another config).
    #[error("configuration: {0}")]
    Config(String),
    /// A product id that cannot be used in a key label.
    #[error("invalid product id {0:?}: use 1-64 characters from [a-z0-9._-], starting with a letter or digit")]
    BadProduct(String),
    /// No key with this label exists on the token.
    #[error("key {label:?} not found on the token")]
    KeyNotFound {
        /// CKA_LABEL searched for.
        label: String,
    },
    /// More than one object carries a label that must be unique.
    #[error("{count} objects carry the label {label:?}; refusing to guess")]
    KeyAmbiguous {
        /// CKA_LABEL.
        label: String,
        /// How many were found.
        count: usize,
    },
    /// Key creation would overwrite an existing key.
    #[error("key {label:?} already exists")]
    KeyExists {
        /// CKA_LABEL.
        label: String,
    },
    /// The key on the token does not fit the requested algorithm.
    #[error("key {label:?} cannot sign {alg}: {detail}")]
    WrongKeyType {
        /// CKA_LABEL.
        label: String,
        /// Requested algorithm.
        alg: fwseal_crypto::SigAlg,
        /// What is there instead.
        detail: String,
    },
    /// The public key derived from an unwrapped seed, or the key found on the token, is not the
    /// pinned one. Nothing was signed.
    #[error("key {label:?}: public key does not match the pinned one ({detail})")]
    PinnedKeyMismatch {
        /// CKA_LABEL.
        label: String,
        /// Expected/actual key ids or the provider's message.
        detail: String,
    },
    /// The token lacks a mechanism or feature.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A PKCS#11 call failed.
    #[error("PKCS#11 {op} failed: {source}")]
    Pkcs11 {
        /// What fwseal was doing.
        op: &'static str,
        /// The cryptoki error (carries the CKR_ code).
        #[source]
        source: cryptoki::error::Error,
    },
    /// Encoding or verification of key material failed.
    #[error(transparent)]
    Crypto(#[from] fwseal_crypto::CryptoError),
    /// Filesystem error (state directory, PIN file, config).
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl HsmError {
    pub(crate) fn p11(op: &'static str) -> impl FnOnce(cryptoki::error::Error) -> HsmError {
        move |source| HsmError::Pkcs11 { op, source }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> HsmError {
        let path = path.into();
        move |source| HsmError::Io { path, source }
    }

    /// The PKCS#11 return code, if this is a PKCS#11 error.
    pub fn rv(&self) -> Option<cryptoki::error::RvError> {
        match self {
            HsmError::Pkcs11 {
                source: cryptoki::error::Error::Pkcs11(rv, _),
                ..
            } => Some(*rv),
            _ => None,
        }
    }

    /// Whether retrying on a fresh session may help (the session or login state was lost).
    pub(crate) fn is_session_error(&self) -> bool {
        use cryptoki::error::RvError as R;
        matches!(
            self.rv(),
            Some(
                R::SessionHandleInvalid
                    | R::SessionClosed
                    | R::UserNotLoggedIn
                    | R::DeviceError
                    | R::DeviceRemoved
                    | R::TokenNotPresent
            )
        )
    }
}

impl HsmError {
    /// Whether an object handle went stale (re-resolve by label and retry).
    pub(crate) fn is_stale_handle(&self) -> bool {
        use cryptoki::error::RvError as R;
        matches!(
            self.rv(),
            Some(
                R::ObjectHandleInvalid
                    | R::KeyHandleInvalid
                    | R::UnwrappingKeyHandleInvalid
                    | R::WrappingKeyHandleInvalid
                    | R::UserNotLoggedIn
            )
        )
    }
}

impl From<HsmError> for fwseal_crypto::CryptoError {
    fn from(e: HsmError) -> Self {
        match e {
            HsmError::Crypto(c) => c,
            other => fwseal_crypto::CryptoError::Signing(other.to_string()),
        }
    }
}

fn humantime_secs(d: std::time::Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
