//! `[tsa_server]`: the built-in RFC 3161 Time-Stamping Authority (`POST /v1/tsa`,
//! `formats/timestamp.md`, "The built-in TSA").
//!
//! The configuration section and its validation, and the **serial number allocator**: serials
//! strictly increase across requests, restarts and crashes. Blocks of [`SERIAL_BLOCK`] serials
//! are reserved durably in `state_dir/tsa-serial` (the first serial not yet reserved, decimal:
//! written to a new file, `fsync`ed, renamed over the old one, directory `fsync`ed) and handed
//! out from memory; the next block is reserved when one is exhausted. A crash skips the rest of
//! the block in use, never reuses a serial. The signing itself is `service/timestamp.rs`.

use fwseal_crypto::DigestAlg;
use serde::Deserialize;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

/// The `[tsa_server]` section. Absent: the built-in TSA is off and its endpoints are `404`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TsaServerConfig {
    /// The TSA policy (dotted OID) put in every token; a request naming another is rejected.
    pub policy_oid: String,
    /// Accuracy claimed in every token, milliseconds (default 1000; 0: no accuracy field).
    #[serde(default = "default_accuracy_ms")]
    pub accuracy_ms: u64,
    /// Message imprint hash algorithms accepted (default sha256, sha384, sha512).
    #[serde(default = "default_hash_algs")]
    pub hash_algs: Vec<DigestAlg>,
    /// `true`: requests without an API token are served too (what `osslsigncode -ts URL` and
    /// other stock clients need); default `false`: any authenticated client.
    #[serde(default)]
    pub anonymous: bool,
    /// Validity of a TSA certificate made by `fwseald keys create|rotate -p fwseal-tsa`, days
    /// (default 3650).
    #[serde(default = "default_certificate_days")]
    pub certificate_days: u32,
    /// Subject CN of that certificate (default "fwseal TSA " + the appliance identity).
    #[serde(default)]
    pub subject_cn: Option<String>,
}

fn default_accuracy_ms() -> u64 {
    1000
}
fn default_hash_algs() -> Vec<DigestAlg> {
    vec![DigestAlg::Sha256, DigestAlg::Sha384, DigestAlg::Sha512]
}
fn default_certificate_days() -> u32 {
    3650
}

/// Largest `accuracy_ms` (one hour).
pub const MAX_ACCURACY_MS: u64 = 3_600_000;
/// Longest `certificate_days` (100 years).
pub const MAX_CERTIFICATE_DAYS: u32 = 36_500;

impl TsaServerConfig {
    /// Semantic checks (at config load; the daemon refuses to start on an error).
    pub fn validate(&self) -> Result<(), String> {
        if const_oid::ObjectIdentifier::from_str(&self.policy_oid).is_err() {
            return Err(format!(
                "[tsa_server] policy_oid {:?} is not a dotted OID (e.g. \"1.3.6.1.4.1.99999.1\")",
                self.policy_oid
            ));
        }
        if self.accuracy_ms > MAX_ACCURACY_MS {
            return Err(format!(
                "[tsa_server] accuracy_ms must be 0..={MAX_ACCURACY_MS}, not {}",
                self.accuracy_ms
            ));
        }
        if self.hash_algs.is_empty() {
            return Err("[tsa_server] hash_algs is empty: no request could be granted".into());
        }
        for (i, a) in self.hash_algs.iter().enumerate() {
            if self.hash_algs[..i].contains(a) {
                return Err(format!("[tsa_server] hash_algs lists {} twice", a.name()));
            }
        }
        if self.certificate_days == 0 || self.certificate_days > MAX_CERTIFICATE_DAYS {
            return Err(format!(
                "[tsa_server] certificate_days must be 1..={MAX_CERTIFICATE_DAYS}, not {}",
                self.certificate_days
            ));
        }
        if let Some(cn) = &self.subject_cn {
            if cn.trim().is_empty() || cn.chars().count() > 64 || cn.chars().any(char::is_control) {
                return Err(format!(
                    "[tsa_server] subject_cn {cn:?} must be 1-64 characters without control characters"
                ));
            }
        }
        Ok(())
    }

    /// The certificate subject CN for an appliance with `identity`.
    pub fn subject_cn(&self, identity: &str) -> String {
        self.subject_cn
            .clone()
            .unwrap_or_else(|| format!("fwseal TSA {identity}"))
    }

    /// What `fwseal_tsa::respond` needs.
    pub fn responder(&self) -> fwseal_tsa::TsaConfig {
        fwseal_tsa::TsaConfig {
            policy_oid: self.policy_oid.clone(),
            accuracy_micros: self.accuracy_ms * 1000,
            hash_algs: self.hash_algs.clone(),
            include_chain: false,
        }
    }
}

/// Serials reserved per durable write.
pub const SERIAL_BLOCK: u128 = 1024;

/// The serial file under the state directory.
pub const SERIAL_FILE: &str = "tsa-serial";

/// Why a serial could not be had (the request then fails: no token without a durable serial).
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// Reading or writing the serial file failed.
    #[error("TSA serial file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The serial file holds something other than a decimal number ≥ 1.
    #[error("TSA serial file {path} is corrupt ({found:?}); refusing to guess a serial")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What it holds (cut to 64 bytes).
        found: String,
    },
    /// 2^128 serials were handed out.
    #[error("TSA serials exhausted")]
    Exhausted,
}

/// The allocator: serials `[next, limit)` are reserved on disk and not yet handed out.
#[derive(Debug)]
pub struct SerialBlocks {
    path: PathBuf,
    next: u128,
    limit: u128,
}

impl SerialBlocks {
    /// Open the allocator of `state_dir` (reads the high-water mark; writes nothing yet).
    pub fn open(state_dir: &Path) -> Result<Self, SerialError> {
        let path = state_dir.join(SERIAL_FILE);
        let io = |source| SerialError::Io {
            path: path.clone(),
            source,
        };
        let mark = match std::fs::read(&path) {
            Ok(b) => {
                let text = String::from_utf8_lossy(&b);
                match text.trim().parse::<u128>() {
                    Ok(n) if n >= 1 => n,
                    _ => {
                        return Err(SerialError::Corrupt {
                            path: path.clone(),
                            found: text.chars().take(64).collect(),
                        })
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => return Err(io(e)),
        };
        Ok(SerialBlocks {
            path,
            next: mark,
            limit: mark,
        })
    }

    /// The next serial; reserves a new block (one durable write) when the current one is used
    /// up.
    pub fn allocate(&mut self) -> Result<u128, SerialError> {
        if self.next >= self.limit {
            let limit = self
                .next
                .checked_add(SERIAL_BLOCK)
                .ok_or(SerialError::Exhausted)?;
            write_durable(&self.path, format!("{limit}\n").as_bytes()).map_err(|source| {
                SerialError::Io {
                    path: self.path.clone(),
                    source,
                }
            })?;
            self.limit = limit;
        }
        let s = self.next;
        self.next += 1;
        Ok(s)
    }
}

/// Replace `path` with `bytes` durably: a new file in the same directory, `fsync`, rename over
/// `path`, `fsync` the directory.
fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn serials_increase_across_reopen_and_skip_after_a_crash() {
        let d = tempfile::tempdir().unwrap();
        let mut a = SerialBlocks::open(d.path()).unwrap();
        let first: Vec<u128> = (0..3).map(|_| a.allocate().unwrap()).collect();
        assert_eq!(first, [1, 2, 3]);
        assert_eq!(
            std::fs::read_to_string(d.path().join(SERIAL_FILE)).unwrap(),
            format!("{}\n", 1 + SERIAL_BLOCK)
        );
        // A "crash": the allocator is dropped with most of its block unused.
        drop(a);
        let mut b = SerialBlocks::open(d.path()).unwrap();
        let s = b.allocate().unwrap();
        assert_eq!(s, 1 + SERIAL_BLOCK);
        let mut last = s;
        for _ in 0..(SERIAL_BLOCK + 5) {
            let n = b.allocate().unwrap();
            assert!(n > last);
            last = n;
        }
        assert_eq!(
            std::fs::read_to_string(d.path().join(SERIAL_FILE)).unwrap(),
            format!("{}\n", 1 + 3 * SERIAL_BLOCK)
        );
    }

    #[test]
    fn a_corrupt_serial_file_is_refused() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(SERIAL_FILE), "banana").unwrap();
        assert!(matches!(
            SerialBlocks::open(d.path()),
            Err(SerialError::Corrupt { .. })
        ));
        std::fs::write(d.path().join(SERIAL_FILE), "0\n").unwrap();
        assert!(SerialBlocks::open(d.path()).is_err());
    }

    #[test]
    fn config_validation() {
        let ok = TsaServerConfig {
            policy_oid: "1.3.6.1.4.1.99999.1".into(),
            accuracy_ms: 1000,
            hash_algs: default_hash_algs(),
            anonymous: false,
            certificate_days: 3650,
            subject_cn: None,
        };
        ok.validate().unwrap();
        assert_eq!(ok.subject_cn("x"), "fwseal TSA x");
        assert_eq!(ok.responder().accuracy_micros, 1_000_000);
        for bad in [
            TsaServerConfig {
                policy_oid: "not an oid".into(),
                ..ok.clone()
            },
            TsaServerConfig {
                hash_algs: vec![],
                ..ok.clone()
            },
            TsaServerConfig {
                hash_algs: vec![DigestAlg::Sha256, DigestAlg::Sha256],
                ..ok.clone()
            },
            TsaServerConfig {
                certificate_days: 0,
                ..ok.clone()
            },
            TsaServerConfig {
                accuracy_ms: MAX_ACCURACY_MS + 1,
                ..ok.clone()
            },
            TsaServerConfig {
                subject_cn: Some(" ".into()),
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
