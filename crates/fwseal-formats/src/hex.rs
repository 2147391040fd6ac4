//! Intel HEX. (Being implemented.)
use crate::{Extracted, Format, FormatError, Prepared, Request};
/// Whether `data` looks like Intel HEX.
pub fn looks_like(data: &[u8]) -> bool {
    data.first() == Some(&b':')
}
/// Prepare.
pub fn prepare(_data: &[u8], _req: &Request) -> Result<Box<dyn Prepared>, FormatError> {
    Err(FormatError::Unsupported("ihex not implemented yet".into()))
}
/// Extract.
pub fn extract(_data: &[u8]) -> Result<Extracted, FormatError> {
    Err(FormatError::NotSigned(Format::Ihex))
}
/// Describe.
pub fn describe(_data: &[u8]) -> Result<String, FormatError> {
    Ok("ihex".into())
}
