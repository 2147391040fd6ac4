//! The crate's only file I/O: detection and preparation of an image file in constant memory
//! (streamable formats), and writing a signed image's [`Part`]s. Shared by the daemon (spooled
//! uploads) and the client (`fwseal sign --hash-locally`), so both compute the same digest the
//! same way. Blocking: the daemon calls it on `spawn_blocking` threads.

use crate::{detect, prepare_stream, Format, FormatError, Part, Prepared, Request};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Read size for streaming a file through a preparer.
pub const CHUNK: usize = 1 << 20;
const SAMPLE: u64 = 64 << 10;

/// A read buffer for `len` bytes: [`CHUNK`] at most, so small images do not pay for zeroing
/// a megabyte on every request.
fn buffer_for(len: u64) -> usize {
    usize::try_from(len).map_or(CHUNK, |l| l.clamp(1, CHUNK))
}

/// Detect the format of an image file without reading all of it: small files are read
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
    /// I/O on the image file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The content is not acceptable.
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// Stream an image file through the format's preparer (`.hex`/`.efi` are buffered up to
/// `random_access_limit` bytes).
pub fn prepare_file(
    format: Format,
    path: &Path,
    req: &Request,
    random_access_limit: u64,
) -> Result<Box<dyn Prepared>, DetectError> {
    prepare_file_with(format, path, req, random_access_limit, |_| {})
}

/// [`prepare_file`], also passing every chunk read to `also` (e.g. a SHA-256 of the whole file)
/// so the file is read once.
pub fn prepare_file_with(
    format: Format,
    path: &Path,
    req: &Request,
    random_access_limit: u64,
    mut also: impl FnMut(&[u8]),
) -> Result<Box<dyn Prepared>, DetectError> {
    let mut s = prepare_stream(format, req, random_access_limit)?;
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; buffer_for(f.metadata()?.len())];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        also(&buf[..n]);
        s.update(&buf[..n])?;
    }
    Ok(s.finish()?)
}

/// Write `parts` (ranges of the input file and new bytes) to `out`.
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
    let mut buf = vec![0u8; buffer_for(longest)];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{assemble, prepare, Mode};
    use fwseal_crypto::SigAlg;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 131 + i / 251) as u8).collect()
    }

    #[test]
    fn write_parts_equals_assemble_across_buffer_boundaries(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let data = pattern(2 * CHUNK + 12_345);
        let mut f = tempfile::NamedTempFile::new()?;
        f.write_all(&data)?;
        let len = data.len() as u64;
        for parts in [
            vec![Part::Input { start: 0, len }],
            vec![
                Part::Input { start: 7, len: 10 },
                Part::Bytes(b"sig".to_vec()),
                Part::Input {
                    start: 100,
                    len: CHUNK as u64 + 3,
                },
                Part::Input { start: 0, len: 0 },
            ],
            vec![Part::Bytes(vec![1, 2, 3])],
        ] {
            let mut out = Vec::new();
            let n = write_parts(&parts, f.path(), &mut out)?;
            let want = assemble(&data, &parts)?;
            assert_eq!(n, want.len() as u64);
            assert!(
                out == want,
                "write_parts differs from assemble for {parts:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn prepare_file_equals_prepare_for_small_and_large_files(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let req = Request::hybrid(
            SigAlg::EcdsaP256Sha256,
            SigAlg::MlDsa65,
            Mode::Embedded,
            "p",
        );
        for n in [1usize, 100, CHUNK + 1, 2 * CHUNK + 5] {
            let data = pattern(n);
            let mut f = tempfile::NamedTempFile::new()?;
            f.write_all(&data)?;
            let a = prepare_file(Format::Raw, f.path(), &req, 1 << 20)?;
            let b = prepare(Format::Raw, &data, &req)?;
            assert_eq!(a.digest(), b.digest(), "digest differs for {n} bytes");
        }
        Ok(())
    }
}
