//! MCUboot images. (Being implemented.)
use crate::{Extracted, Format, FormatError, Prepared, Request, StreamPreparer};

/// Whether `data` starts with the MCUboot header magic.
pub fn looks_like(data: &[u8]) -> bool {
    data.len() >= 4 && data[..4] == 0x96f3_b83du32.to_le_bytes()
}

/// Streaming preparation.
pub struct McubootStream {
    _req: Request,
}
impl McubootStream {
    /// New stream.
    pub fn new(req: Request) -> Self {
        McubootStream { _req: req }
    }
}
impl StreamPreparer for McubootStream {
    fn update(&mut self, _chunk: &[u8]) -> Result<(), FormatError> {
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<Box<dyn Prepared>, FormatError> {
        Err(FormatError::Unsupported(
            "mcuboot not implemented yet".into(),
        ))
    }
}
/// Extract.
pub fn extract(_data: &[u8]) -> Result<Extracted, FormatError> {
    Err(FormatError::NotSigned(Format::Mcuboot))
}
/// Describe.
pub fn describe(_data: &[u8]) -> Result<String, FormatError> {
    Ok("mcuboot".into())
}
