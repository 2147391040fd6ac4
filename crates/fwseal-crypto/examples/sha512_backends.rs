//! SHA-512 throughput of each maintained backend in this process: 256 MiB in 1 MiB updates,
//! best of 3 (`cargo run --release -p fwseal-crypto --example sha512_backends`). The numbers
//! behind the SHA-384/512 backend choice in BENCHMARKS.md. Besides wall time it prints MB per
//! second of this thread's CPU time (`/proc/thread-self/schedstat`), which a shared machine
//! disturbs less.

use std::time::Instant;

const MIB: usize = 1 << 20;

/// CPU time of this thread, in seconds (0 where the kernel does not say).
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

fn best(name: &str, data: &[u8], total: usize, mut run: impl FnMut(&[u8], usize) -> u8) {
    let (mut wall, mut cpu) = (f64::MAX, f64::MAX);
    let mut sink = 0u8;
    for _ in 0..3 {
        let (t, c) = (Instant::now(), cpu_secs());
        sink ^= run(data, total / data.len());
        wall = wall.min(t.elapsed().as_secs_f64());
        cpu = cpu.min(cpu_secs() - c);
    }
    let mbs = |s: f64| total as f64 / s / 1e6;
    println!(
        "{name:<28} {:>6.0} MB/s wall, {:>6.0} MB/s of CPU time  ({sink:02x})",
        mbs(wall),
        mbs(cpu)
    );
}

fn main() {
    let data: Vec<u8> = (0..MIB).map(|i| (i * 131 % 251) as u8).collect();
    let total = 256 * MIB;
    best("sha2 0.10 (RustCrypto)", &data, total, |d, n| {
        use sha2::Digest;
        let mut h = sha2::Sha512::new();
        (0..n).for_each(|_| h.update(d));
        h.finalize()[0]
    });
    #[cfg(feature = "aws-lc")]
    best("aws-lc-rs", &data, total, |d, n| {
        let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA512);
        (0..n).for_each(|_| h.update(d));
        h.finish().as_ref()[0]
    });
    best("ring", &data, total, |d, n| {
        let mut h = ring::digest::Context::new(&ring::digest::SHA512);
        (0..n).for_each(|_| h.update(d));
        h.finish().as_ref()[0]
    });
    best("openssl (system libcrypto)", &data, total, |d, n| {
        let mut h = openssl::sha::Sha512::new();
        (0..n).for_each(|_| h.update(d));
        h.finish()[0]
    });
    best("fwseal_crypto::Hasher", &data, total, |d, n| {
        let mut h = fwseal_crypto::Hasher::new(fwseal_crypto::DigestAlg::Sha512);
        (0..n).for_each(|_| h.update(d));
        h.finish()[0]
    });
}
