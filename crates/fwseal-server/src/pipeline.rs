//! The blocking half of signing: detection and preparation from a spooled upload in constant
//! memory, and writing output parts. Runs on `spawn_blocking` threads, never on the runtime.

use fwseal_formats::{detect, prepare_stream, Format, FormatError, Part, Prepared, Request};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Read size for streaming an upload through a preparer.
pub const CHUNK: usize = 1 << 20;
const SAMPLE: u64 = 64 << 10;

/// Detect the format of a spooled upload without reading all of it: small files are read
/// whole; larger ones by their first and last 64 KiB (the DFU suffix lives at the end).
pub fn detect_file(path: &Path, len: u64, ext_hint: Option<&str>) -> Result<Format, DetectError> {
    let mut f = File::open(path)?;
    if len <= 2 * SAMPLE {
        let mut all = Vec::new();
        f.read_to_end(&mut all)?;
        return Ok(detect(&all, ext_hint)?);
    }
    let mut head = vec![0u8; SAMPLE as usize];
    f.read_exact(&mut head)?;
    let mut tail = [0u8; 16];
    f.seek(SeekFrom::Start(len - 16))?;
    f.read_exact(&mut tail)?;
    // DFU 1.1 suffix: ... "UFD" bLength(16) dwCRC — at the very end.
    if &tail[8..11] == b"UFD" && tail[11] == 16 {
        return Ok(Format::Dfu);
    }
    Ok(detect(&head, ext_hint)?)
}

/// Detection failure.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// I/O on the spool file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The content is not acceptable.
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// Read-buffer size for `len` bytes: at most [`CHUNK`], at least 1.
fn buf_len(len: u64) -> usize {
    usize::try_from(len.clamp(1, CHUNK as u64)).unwrap_or(CHUNK)
}

/// Stream the spooled upload through the format's preparer.
pub fn prepare_file(
    format: Format,
    path: &Path,
    req: &Request,
    random_access_limit: u64,
) -> Result<Box<dyn Prepared>, DetectError> {
    let mut s = prepare_stream(format, req, random_access_limit)?;
    let mut f = File::open(path)?;
    // A small image needs no 1 MiB (zeroed) buffer: size it to the file.
    let mut buf = vec![0u8; buf_len(f.metadata()?.len())];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        s.update(&buf[..n])?;
    }
    Ok(s.finish()?)
}

/// Write `parts` (ranges of the spooled input and new bytes) to `out`.
pub fn write_parts(parts: &[Part], input: &Path, out: &mut dyn Write) -> std::io::Result<u64> {
    let mut f = File::open(input)?;
    let longest = parts
        .iter()
        .map(|p| match p {
            Part::Input { len, .. } => *len,
            Part::Bytes(_) => 0,
        })
        .max()
        .unwrap_or(0);
    let mut buf = vec![0u8; buf_len(longest)];
    let mut total = 0u64;
    for p in parts {
        match p {
            Part::Bytes(b) => {
                out.write_all(b)?;
                total += b.len() as u64;
            }
            Part::Input { start, len } => {
                f.seek(SeekFrom::Start(*start))?;
                let mut left = *len;
                while left > 0 {
                    let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
                    f.read_exact(&mut buf[..want])?;
                    out.write_all(&buf[..want])?;
                    left -= want as u64;
                }
                total += len;
            }
        }
    }
    Ok(total)
}
