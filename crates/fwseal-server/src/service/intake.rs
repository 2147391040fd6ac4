//! Intake: an upload on disk → detected format → signing plan. The plan holds the
//! format-aware digest; signing needs nothing else.

use super::{ServiceError, SigningService};
use crate::config::ProductConfig;
use fwseal_api::SignQuery;
use fwseal_formats::files as pipeline;
use fwseal_formats::{Format, ImageVersion, Mode, Prepared, Request};
use std::path::{Path, PathBuf};

/// An upload spooled to a file, with its length and SHA-256 (computed while spooling).
pub struct Upload {
    /// The spool file; removed when dropped.
    pub path: tempfile::TempPath,
    /// Bytes.
    pub len: u64,
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
}

/// The request parameters of a sign, checked against the product.
#[derive(Clone, Copy, Debug)]
pub struct SignParams {
    /// Image version to record, if any.
    pub version: Option<ImageVersion>,
    /// The format, when the client named it (otherwise detected).
    pub format: Option<Format>,
    /// Embedded or detached.
    pub mode: Mode,
}

impl SignParams {
    /// Parse the query's `version`, `format` and `mode` (default: the product's).
    pub fn parse(pcfg: &ProductConfig, q: &SignQuery) -> Result<Self, ServiceError> {
        if let Some(name) = q.name.as_deref() {
            check_name(name)?;
        }
        Ok(SignParams {
            version: parse_version(q.version.as_deref())?,
            format: match q.format.as_deref() {
                Some(f) => Some(
                    Format::from_name(f)
                        .ok_or_else(|| ServiceError::BadRequest(format!("unknown format {f:?}")))?,
                ),
                None => None,
            },
            mode: q.mode.unwrap_or(pcfg.default_mode),
        })
    }
}

/// Most bytes of an input name (the `name` query parameter, a batch part's filename): it is
/// stored as the artifact's name and shown in listings.
pub(crate) const MAX_NAME_BYTES: usize = 255;

/// An input name the appliance stores: at most [`MAX_NAME_BYTES`] bytes, no control characters
/// and no bidirectional-text controls (which make a listing show another name than stored).
pub(crate) fn check_name(name: &str) -> Result<(), ServiceError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(ServiceError::BadRequest(format!(
            "name: {} bytes; at most {MAX_NAME_BYTES}",
            name.len()
        )));
    }
    let bidi = |c: char| matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if let Some((at, c)) = name
        .char_indices()
        .find(|&(_, c)| c.is_control() || bidi(c))
    {
        return Err(ServiceError::BadRequest(format!(
            "name: character U+{:04X} at byte {at} (control and bidirectional-text characters are not allowed)",
            u32::from(c)
        )));
    }
    Ok(())
}

/// Parse an optional `major.minor.revision+build` version.
pub(crate) fn parse_version(v: Option<&str>) -> Result<Option<ImageVersion>, ServiceError> {
    v.map(|v| {
        v.parse::<ImageVersion>()
            .map_err(|e| ServiceError::BadRequest(format!("version: {e}")))
    })
    .transpose()
}

/// What the intake produced: the input on disk, its hash, and the signing plan.
pub struct Intake {
    /// Keeps a spooled upload alive until signed; `None` when `path` is a stored blob.
    pub(crate) spool: Option<tempfile::TempPath>,
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
    pub(crate) input_sha: [u8; 32],
    pub(crate) name: String,
    pub(crate) format: Format,
    pub(crate) mode: Mode,
    pub(crate) version: Option<ImageVersion>,
    pub(crate) plan: Box<dyn Prepared>,
}

impl Intake {
    /// The format-aware digest the device checks.
    pub fn digest(&self) -> (fwseal_crypto::DigestAlg, Vec<u8>) {
        self.plan.digest()
    }
}

/// The algorithms `pcfg` signs `format` with: the product's, as the format uses them (an RSA
/// key signs PSS for MCUboot and PKCS#1 v1.5 for Authenticode).
pub(crate) fn algorithms(
    pcfg: &ProductConfig,
    format: Format,
) -> (Option<fwseal_crypto::SigAlg>, Option<fwseal_crypto::SigAlg>) {
    (
        pcfg.classical_alg().map(|c| format.classical_alg(c)),
        pcfg.pq_alg(),
    )
}

/// The product must accept `format`.
pub(crate) fn check_format(pcfg: &ProductConfig, format: Format) -> Result<(), ServiceError> {
    if pcfg.allows(format) {
        Ok(())
    } else {
        Err(ServiceError::Unsupported(format!(
            "product {} does not accept {format} images",
            pcfg.name
        )))
    }
}

impl SigningService {
    /// A new spool file for an upload (the caller streams the body into it).
    pub fn spool_file(&self) -> Result<(std::fs::File, tempfile::TempPath), ServiceError> {
        let tmp = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(&self.spool)
            .map_err(|e| ServiceError::Internal(format!("spool: {e}")))?;
        Ok(tmp.into_parts())
    }

    /// Detect the format (unless given), check the product accepts it, and prepare the signing
    /// plan by streaming the file through the format engine.
    pub(crate) fn prepare(
        &self,
        pcfg: &ProductConfig,
        input: Input<'_>,
        params: SignParams,
    ) -> Result<(Format, Box<dyn Prepared>), ServiceError> {
        let ext = Path::new(input.name).extension().and_then(|e| e.to_str());
        let format = match params.format {
            Some(f) => f,
            None => pipeline::detect_file(input.path, input.len, ext)?,
        };
        check_format(pcfg, format)?;
        let (classical, pq) = algorithms(pcfg, format);
        let req = Request {
            classical,
            pq,
            mode: params.mode,
            options: pcfg.sign_options(params.version),
        };
        let limit = self.config().max_random_access_bytes;
        let plan = pipeline::prepare_file(format, input.path, &req, limit)?;
        // A format with its own version field (MCUboot's header) is not rewritten: a different
        // requested version would be recorded for an image that states another.
        if let (Some(asked), Some(own)) = (params.version, plan.image_version()) {
            if asked != own {
                return Err(ServiceError::BadRequest(format!(
                    "version {asked} differs from the version the {format} image states ({own}); \
                     fwseal does not rewrite it: set it when building the image, or omit version"
                )));
            }
        }
        Ok((format, plan))
    }
}

/// An input file to prepare.
pub(crate) struct Input<'a> {
    pub(crate) path: &'a Path,
    pub(crate) len: u64,
    pub(crate) name: &'a str,
}
