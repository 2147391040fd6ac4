//! PINs: read from an environment variable or a file, never from the command line, never
//! printed. [`Pin`] zeroizes its memory on drop and prints as `***`.

use crate::HsmError;
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// A token PIN. `Debug` prints `Pin(***)`; the bytes are zeroized on drop.
#[derive(Clone)]
pub struct Pin(SecretString);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(***)")
    }
}

impl Pin {
    /// Wrap a PIN held by the caller (tests, programmatic setups). Prefer [`PinSource`].
    pub fn new(pin: impl Into<String>) -> Self {
        Pin(SecretString::from(pin.into()))
    }

    pub(crate) fn auth(&self) -> cryptoki::types::AuthPin {
        cryptoki::types::AuthPin::new(self.0.expose_secret().into())
    }

    /// A fresh random PIN (32 hex digits) from the OS RNG.
    pub fn random() -> Self {
        use rand_core::RngCore;
        let mut b = Zeroizing::new([0u8; 16]);
        rand_core::OsRng.fill_bytes(b.as_mut());
        Pin::new(hex::encode(b.as_ref()))
    }

    /// Write the PIN to `path` with mode 0600 (creating it; fails if it exists).
    pub fn write_new_file(&self, path: &Path) -> Result<(), HsmError> {
        use std::io::Write;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(path).map_err(HsmError::io(path))?;
        f.write_all(self.0.expose_secret().as_bytes())
            .and_then(|_| f.write_all(b"\n"))
            .map_err(HsmError::io(path))
    }
}

/// Where the user (or SO) PIN comes from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum PinSource {
    /// An environment variable holding the PIN (e.g. `FWSEAL_HSM_PIN`).
    Env(String),
    /// A file whose content (surrounding whitespace trimmed) is the PIN, e.g. a systemd
    /// credential (`$CREDENTIALS_DIRECTORY/hsm-pin`).
    File(PathBuf),
    /// A PIN supplied programmatically (tests).
    Value(Pin),
}

impl PinSource {
    /// Human description without the secret, for error messages.
    pub fn describe(&self) -> String {
        match self {
            PinSource::Env(v) => format!("environment variable {v}"),
            PinSource::File(p) => format!("file {}", p.display()),
            PinSource::Value(_) => "a supplied value".into(),
        }
    }

    /// Read the PIN.
    pub fn read(&self) -> Result<Pin, HsmError> {
        let unavailable = |detail: String| HsmError::PinUnavailable {
            source_desc: self.describe(),
            detail,
        };
        let raw: Zeroizing<String> = match self {
            PinSource::Value(p) => return Ok(p.clone()),
            PinSource::Env(var) => {
                Zeroizing::new(std::env::var(var).map_err(|e| unavailable(e.to_string()))?)
            }
            PinSource::File(path) => Zeroizing::new(
                std::fs::read_to_string(path).map_err(|e| unavailable(e.to_string()))?,
            ),
        };
        let t = raw.trim();
        if t.is_empty() {
            return Err(unavailable("the PIN is empty".into()));
        }
        Ok(Pin::new(t.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_pin() {
        let p = Pin::new("123456-secret");
        assert_eq!(format!("{p:?}"), "Pin(***)");
        let s = PinSource::Value(p);
        assert!(!format!("{s:?}").contains("secret"));
    }

    #[test]
    fn file_source_trims_and_rejects_empty() {
        let d = tempfile::tempdir().expect("tmp");
        let f = d.path().join("pin");
        std::fs::write(&f, "  4321\n").expect("write");
        let p = PinSource::File(f.clone()).read().expect("pin");
        assert_eq!(p.0.expose_secret(), "4321");
        std::fs::write(&f, "\n").expect("write");
        assert!(matches!(
            PinSource::File(f).read(),
            Err(HsmError::PinUnavailable { .. })
        ));
        let missing = PinSource::Env("FWSEAL_TEST_SURELY_UNSET_PIN_VAR".into()).read();
        match missing {
            Err(e @ HsmError::PinUnavailable { .. }) => {
                assert!(e.to_string().contains("FWSEAL_TEST_SURELY_UNSET_PIN_VAR"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
