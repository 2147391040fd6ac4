//! The hashing workers of a stream end with it: counted by the kernel (`/proc/self/task`), in a
//! test binary of its own so no other test's threads are counted.

use fwseal_crypto::parallel::WORKER_THREAD_NAME;
use fwseal_crypto::{DigestAlg, MultiHasher, PARALLEL_UPDATE_MIN};
use std::time::{Duration, Instant};

/// Threads of this process named like a hashing worker.
fn workers() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim_end() == WORKER_THREAD_NAME)
        })
        .count()
}

/// The worker count once it settles at `want`, or what it is after a second (a new thread names
/// itself when it starts, a joined one leaves `/proc` within microseconds).
fn settles_at(want: usize) -> usize {
    let t = Instant::now();
    loop {
        let n = workers();
        if n == want || t.elapsed() > Duration::from_secs(1) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn workers_start_for_large_streams_only_and_end_with_them() {
    assert_eq!(workers(), 0, "no worker before any stream");
    let data = vec![0x5au8; 4 * PARALLEL_UPDATE_MIN];
    let all = DigestAlg::ALL;

    // A small stream never starts a thread.
    let mut small = MultiHasher::new(&all);
    small.update(&data[..PARALLEL_UPDATE_MIN - 1]);
    assert_eq!(workers(), 0, "small stream");
    let _ = small.finish();

    // A large one: one worker per state besides the caller's, while it lives.
    let mut a = MultiHasher::new(&all);
    a.update(&data);
    let mut b = MultiHasher::offloaded(&[DigestAlg::Sha256, DigestAlg::Sha512]);
    b.update(&data);
    assert_eq!(settles_at(4), 4, "two streams running");

    // Finishing joins them; so does dropping a stream half way (queued batches and all).
    let _ = a.finish();
    assert_eq!(settles_at(2), 2, "after finish");
    b.update(&data);
    drop(b);
    assert_eq!(settles_at(0), 0, "after drop");

    // A fork starts its own workers only when it grows, and ends them too.
    let mut c = MultiHasher::new(&all);
    c.update(&data);
    let mut fork = c.clone();
    assert_eq!(settles_at(2), 2, "the fork has no thread yet");
    fork.update(&data);
    assert_eq!(settles_at(4), 4, "the fork grew");
    drop(c);
    drop(fork);
    assert_eq!(settles_at(0), 0, "after dropping both");
}
