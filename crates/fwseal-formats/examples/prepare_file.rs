//! Time the daemon's preparation path on one file: `prepare_stream` fed 1 MiB reads, hybrid
//! (ECDSA/RSA + ML-DSA-65) or classical-only, best of N. A profiling aid
//! (`perf record -e cpu-clock -- target/release/examples/prepare_file hex image.hex`):
//! `prepare_file FORMAT PATH [classical] [REPS]`.

use fwseal_formats::{prepare_stream, Format, Mode, Request, SigAlg};
use std::io::Read;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(path)) = (args.get(1), args.get(2)) else {
        return Err("usage: prepare_file FORMAT PATH [classical] [REPS]".into());
    };
    let format = Format::from_name(name).ok_or("unknown format")?;
    let classical_only = args.iter().any(|a| a == "classical");
    let reps: usize = args.last().and_then(|a| a.parse().ok()).unwrap_or(3);
    let mut req = Request::hybrid(
        format.default_classical(),
        SigAlg::MlDsa65,
        Mode::Embedded,
        "bench",
    );
    if classical_only {
        req.pq = None;
    }
    let bytes = std::fs::metadata(path)?.len();
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        let mut s = prepare_stream(format, &req, 256 << 20)?;
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            s.update(&buf[..n])?;
        }
        let plan = s.finish()?;
        assert!(!plan.digest().1.is_empty());
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{name} {bytes} bytes: {:.0} MB/s (best of {reps})",
        bytes as f64 / best / 1e6
    );
    Ok(())
}
