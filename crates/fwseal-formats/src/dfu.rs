//! DFU files. (Being implemented.)
use crate::{Extracted, Format, FormatError, Prepared, Request, StreamPreparer};

/// Whether `data` starts with the MCUboot header magic.
pub fn looks_like(data: &[u8]) -> bool {
    data.len() >= 16 && data[data.len() - 8..data.len() - 4] == *b"UFD\x10"
}

/// Streaming preparation.
pub struct DfuStream {
    _req: Request,
}
impl DfuStream {
    /// New stream.
    pub fn new(req: Request) -> Self {
        DfuStream { _req: req }
    }
}
impl StreamPreparer for DfuStream {
    fn update(&mut self, _chunk: &[u8]) -> Result<(), FormatError> {
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<Box<dyn Prepared>, FormatError> {
        Err(FormatError::Unsupported("dfu not implemented yet".into()))
    }
}
/// Extract.
pub fn extract(_data: &[u8]) -> Result<Extracted, FormatError> {
    Err(FormatError::NotSigned(Format::Dfu))
}
/// Describe.
pub fn describe(_data: &[u8]) -> Result<String, FormatError> {
    Ok("dfu".into())
}
