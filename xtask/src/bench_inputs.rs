//! Deterministic benchmark inputs, generated under `target/bench/` and deleted afterwards:
//! raw `.bin`, MCUboot `.img` (a valid header around the body, no TLV area yet), Intel HEX text,
//! a PE `.efi` enlarged with one big section, and DFU 1.1 (suffix + CRC).

use anyhow::{ensure, Context, Result};
use fwseal_formats::Format;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// SplitMix64: small, fast, deterministic; good enough to make incompressible bodies.
pub struct Prng(u64);

impl Prng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Prng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fill `buf` with pseudo-random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }

    /// `len` pseudo-random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.fill(&mut v);
        v
    }
}

const CHUNK: usize = 1 << 20;

fn write_stream(out: &mut impl Write, len: u64, rng: &mut Prng) -> Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        rng.fill(&mut buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>> {
    Ok(std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?,
    ))
}

/// A generated input of about `size` bytes for `format` (every format has a generator: a new
/// format fails to compile here until it gets one).
pub fn write_input(root: &Path, format: Format, path: &Path, size: u64, seed: u64) -> Result<()> {
    match format {
        Format::Raw => write_raw(path, size, seed),
        Format::Mcuboot => write_mcuboot(path, size - 32, seed),
        Format::Dfu => write_dfu(path, usize::try_from(size - 16)?, seed),
        Format::Ihex => write_hex(path, size, seed).map(|_| ()),
        Format::Efi => write_efi(root, path, usize::try_from(size)?, seed),
    }
}

/// A raw image of `len` random bytes.
pub fn write_raw(path: &Path, len: u64, seed: u64) -> Result<()> {
    let mut f = create(path)?;
    write_stream(&mut f, len, &mut Prng::new(seed))?;
    f.flush()?;
    Ok(())
}

/// A 32-byte MCUboot `image_header` (hdr_size 0x20, no protected TLVs, version 1.0.0+0) for a
/// body of `body_len` bytes — what `imgtool create --header-size 0x20 --pad-header` writes.
pub fn mcuboot_header(body_len: u32) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[0..4].copy_from_slice(&fwseal_formats::mcuboot::IMAGE_MAGIC.to_le_bytes());
    // ih_load_addr 0, ih_hdr_size, ih_protect_tlv_size 0, ih_img_size, ih_flags 0.
    h[8..10].copy_from_slice(&0x20u16.to_le_bytes());
    h[12..16].copy_from_slice(&body_len.to_le_bytes());
    h[20] = 1; // iv_major
    h
}

/// An unsigned MCUboot image: header + `body_len` random bytes, no TLV area.
pub fn write_mcuboot(path: &Path, body_len: u64, seed: u64) -> Result<()> {
    let len32 = u32::try_from(body_len).context("MCUboot body must be < 4 GiB")?;
    let mut f = create(path)?;
    f.write_all(&mcuboot_header(len32))?;
    write_stream(&mut f, body_len, &mut Prng::new(seed))?;
    f.flush()?;
    Ok(())
}

/// A DFU 1.1 file: `body_len` random bytes + the 16-byte suffix with its CRC.
pub fn write_dfu(path: &Path, body_len: usize, seed: u64) -> Result<()> {
    let mut d = Prng::new(seed).bytes(body_len);
    let s = fwseal_formats::dfu::Suffix {
        bcd_device: 0x0200,
        id_product: 0xdf11,
        id_vendor: 0x0483,
        bcd_dfu: 0x0100,
        crc: 0,
    };
    d.extend_from_slice(&s.head());
    let crc = fwseal_formats::dfu::suffix_crc(&d);
    d.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(path, d)?;
    Ok(())
}

const HEXDIGITS: &[u8; 16] = b"0123456789ABCDEF";

fn hex_record(out: &mut Vec<u8>, kind: u8, addr: u16, data: &[u8]) {
    let mut sum = (data.len() as u8)
        .wrapping_add((addr >> 8) as u8)
        .wrapping_add(addr as u8)
        .wrapping_add(kind);
    out.push(b':');
    let put = |out: &mut Vec<u8>, b: u8| {
        out.push(HEXDIGITS[usize::from(b >> 4)]);
        out.push(HEXDIGITS[usize::from(b & 15)]);
    };
    put(out, data.len() as u8);
    put(out, (addr >> 8) as u8);
    put(out, addr as u8);
    put(out, kind);
    for &b in data {
        put(out, b);
        sum = sum.wrapping_add(b);
    }
    put(out, sum.wrapping_neg());
    out.push(b'\n');
}

/// Intel HEX text of about `text_len` bytes: 32-byte data records from address 0 upwards,
/// a type-04 record every 64 KiB, then the EOF record. Returns the data byte count.
pub fn write_hex(path: &Path, text_len: u64, seed: u64) -> Result<u64> {
    let mut rng = Prng::new(seed);
    let mut f = create(path)?;
    let mut line = Vec::with_capacity(1 << 20);
    let mut addr: u64 = 0;
    let mut written: u64 = 0;
    let mut data = [0u8; 32];
    // 77 bytes per 32-byte record; stop once the next record would pass the target.
    while written + line.len() as u64 + 77 + 12 <= text_len {
        if addr.is_multiple_of(0x1_0000) {
            let hi = u16::try_from(addr >> 16).context("hex image passes 4 GiB")?;
            hex_record(&mut line, 0x04, 0, &hi.to_be_bytes());
        }
        rng.fill(&mut data);
        hex_record(&mut line, 0x00, (addr & 0xffff) as u16, &data);
        addr += 32;
        if line.len() >= (1 << 20) - 256 {
            written += line.len() as u64;
            f.write_all(&line)?;
            line.clear();
        }
    }
    hex_record(&mut line, 0x01, 0, &[]);
    f.write_all(&line)?;
    f.flush()?;
    Ok(addr)
}

/// A valid PE32+ EFI application: `fixtures/efi/hello.efi` with one added read-only data
/// section of `payload_len` random bytes (binutils `objcopy`, which rewrites the headers).
pub fn write_efi(root: &Path, path: &Path, payload_len: usize, seed: u64) -> Result<()> {
    let blob = path.with_extension("payload");
    std::fs::write(&blob, Prng::new(seed).bytes(payload_len))?;
    let out = Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".payload={}", blob.display()))
        .args([
            "--set-section-flags",
            ".payload=data,readonly,alloc,load",
            "--change-section-address",
            ".payload=0x100000",
        ])
        .arg(root.join("fixtures/efi/hello.efi"))
        .arg(path)
        .output()
        .context("run objcopy (binutils) to build the .efi input")?;
    let _ = std::fs::remove_file(&blob);
    ensure!(
        out.status.success(),
        "objcopy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fwseal_crypto::SigAlg;
    use fwseal_formats::{detect, prepare, Mode, Request};

    fn req(c: SigAlg) -> Request {
        Request::hybrid(c, SigAlg::MlDsa65, Mode::Embedded, "t")
    }

    #[test]
    fn generated_inputs_are_accepted_by_the_format_engine() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("fwseal-bench-inputs-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let p = dir.join("x.img");
        write_mcuboot(&p, 100_000, 1)?;
        let d = std::fs::read(&p)?;
        assert_eq!(detect(&d, Some("img"))?, Format::Mcuboot);
        prepare(Format::Mcuboot, &d, &req(SigAlg::EcdsaP256Sha256))?;
        let p = dir.join("x.dfu");
        write_dfu(&p, 100_000, 2)?;
        let d = std::fs::read(&p)?;
        assert_eq!(detect(&d, Some("dfu"))?, Format::Dfu);
        prepare(Format::Dfu, &d, &req(SigAlg::EcdsaP256Sha256))?;
        let p = dir.join("x.hex");
        let n = write_hex(&p, 300_000, 3)?;
        assert!(n > 100_000);
        let d = std::fs::read(&p)?;
        assert!(d.len() <= 300_000);
        prepare(Format::Ihex, &d, &req(SigAlg::EcdsaP256Sha256))?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
