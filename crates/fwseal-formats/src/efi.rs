//! PE/COFF. (Being implemented.)
use crate::{Extracted, Format, FormatError, Prepared, Request};
/// Whether `data` looks like PE/COFF.
pub fn looks_like(data: &[u8]) -> bool {
    data.starts_with(b"MZ")
}
/// Prepare.
pub fn prepare(_data: &[u8], _req: &Request) -> Result<Box<dyn Prepared>, FormatError> {
    Err(FormatError::Unsupported("efi not implemented yet".into()))
}
/// Extract.
pub fn extract(_data: &[u8]) -> Result<Extracted, FormatError> {
    Err(FormatError::NotSigned(Format::Efi))
}
/// Describe.
pub fn describe(_data: &[u8]) -> Result<String, FormatError> {
    Ok("efi".into())
}
