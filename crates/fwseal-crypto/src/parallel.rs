//! Several digests of one byte stream, the extra states hashed by persistent worker threads.
//!
//! A hybrid request needs SHA-256 (the device digest) and SHA-512 (the ML-DSA-65 message digest)
//! of the same bytes. They are independent, so [`ParallelStates`] hashes one state on the
//! caller's thread as the bytes arrive (SHA-256 when present: the cheapest, since the caller also
//! reads and parses) and gives every other state its own thread for the life of the stream. The
//! bytes reach the workers in batches of [`PARALLEL_UPDATE_MIN`]..=1 MiB through bounded queues
//! (one batch hashed, two waiting: double buffering), so the caller reads and hashes the next
//! chunk while the workers hash the previous one, and is held back only when it runs more than
//! two batches ahead.
//!
//! Streams shorter than [`PARALLEL_UPDATE_MIN`] never start a thread: their bytes are hashed on
//! the caller's thread, in order. A thread that cannot be started leaves its state on the
//! caller's thread. Either way every state sees exactly the bytes of every update, in order: the
//! digests never depend on how they were computed. Dropping the states stops and joins the
//! workers (no thread outlives its stream).

use crate::alg::{DigestAlg, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// The smallest batch handed to the workers, and so the smallest stream that starts threads:
/// below this, a thread costs more than it saves.
pub const PARALLEL_UPDATE_MIN: usize = 256 * 1024;

/// The largest batch: a larger update is cut into batches of this size, so the caller's own
/// hashing of one batch overlaps the workers' hashing of the previous one.
const BATCH_MAX: usize = 1 << 20;

/// Batches that may wait in a worker's queue besides the one it is hashing.
const QUEUE: usize = 2;

/// Name of every worker thread (tests look for it in `/proc/self/task`).
pub const WORKER_THREAD_NAME: &str = "fwseal-hash";

enum Msg {
    /// Absorb these bytes.
    Data(Arc<Vec<u8>>),
    /// Send back a copy of the state (after every earlier batch).
    Snapshot(mpsc::Sender<Hasher>),
}

/// One state on its own thread.
struct Worker {
    alg: DigestAlg,
    tx: Option<mpsc::SyncSender<Msg>>,
    thread: Option<JoinHandle<Hasher>>,
    /// Set when the stream is abandoned: queued batches are skipped.
    stop: Arc<AtomicBool>,
}

impl Worker {
    /// Start a thread that continues from a copy of `state`; `None` if the OS refuses the
    /// thread (the caller keeps hashing `state` itself).
    fn start(state: &Hasher) -> Option<Worker> {
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let alg = state.alg();
        let state = state.clone();
        let stopped = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name(WORKER_THREAD_NAME.into())
            .spawn(move || {
                let mut h = state;
                for m in rx {
                    match m {
                        Msg::Data(b) => {
                            if !stopped.load(Ordering::Relaxed) {
                                h.update(&b);
                            }
                        }
                        Msg::Snapshot(reply) => {
                            let _ = reply.send(h.clone());
                        }
                    }
                }
                h
            });
        spawned.ok().map(|thread| Worker {
            alg,
            tx: Some(tx),
            thread: Some(thread),
            stop,
        })
    }

    fn send(&self, m: Msg) {
        if let Some(tx) = &self.tx {
            // A send fails only if the thread is gone (it panicked); `finish` reports that.
            let _ = tx.send(m);
        }
    }

    /// A copy of the state after every batch sent so far.
    fn snapshot(&self) -> Hasher {
        let (reply, answer) = mpsc::channel();
        self.send(Msg::Snapshot(reply));
        match answer.recv() {
            Ok(h) => h,
            // Only a panic in the hash function ends a worker early: pass it on.
            Err(_) => self.lost(),
        }
    }

    /// Close the queue, wait for the thread and take its state.
    fn finish(mut self) -> Hasher {
        self.tx = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(h)) => h,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => self.lost(),
        }
    }

    fn lost(&self) -> ! {
        panic!("the {} hashing thread ended early", self.alg)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Slot {
    /// Hashed on the caller's thread.
    Here(Hasher),
    /// Hashed by a worker thread.
    Away(Worker),
}

impl Slot {
    fn alg(&self) -> DigestAlg {
        match self {
            Slot::Here(h) => h.alg(),
            Slot::Away(w) => w.alg,
        }
    }
}

/// Hash states of one byte stream, the extra ones on worker threads (see the module docs).
pub struct ParallelStates {
    /// In the order given.
    slots: Vec<Slot>,
    /// The state the caller's thread hashes as bytes arrive; `None`: all of them are deferred.
    inline: Option<usize>,
    /// Bytes the deferred states have not been given yet.
    pending: Vec<u8>,
    /// Batches sent, reused once every worker is done with them.
    pool: Vec<Arc<Vec<u8>>>,
    /// Whether the workers were started.
    started: bool,
}

impl ParallelStates {
    /// `states`, one of them (SHA-256 if present, else the first) hashed on the caller's
    /// thread, the others by workers once the stream reaches [`PARALLEL_UPDATE_MIN`].
    pub fn new(states: Vec<Hasher>) -> Self {
        let inline = states
            .iter()
            .position(|h| h.alg() == DigestAlg::Sha256)
            .or(if states.is_empty() { None } else { Some(0) });
        Self::with_inline(states, inline)
    }

    /// `states`, every one of them on a worker once the stream reaches [`PARALLEL_UPDATE_MIN`]:
    /// for callers whose own thread is the bottleneck (a text decoder).
    pub fn offloaded(states: Vec<Hasher>) -> Self {
        Self::with_inline(states, None)
    }

    fn with_inline(states: Vec<Hasher>, inline: Option<usize>) -> Self {
        ParallelStates {
            slots: states.into_iter().map(Slot::Here).collect(),
            inline,
            pending: Vec::new(),
            pool: Vec::new(),
            started: false,
        }
    }

    /// The algorithms, in the order given.
    pub fn algs(&self) -> Vec<DigestAlg> {
        self.slots.iter().map(Slot::alg).collect()
    }

    /// How many worker threads this stream runs now.
    pub fn workers(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Away(_)))
            .count()
    }

    fn deferred(&self) -> usize {
        self.slots.len() - usize::from(self.inline.is_some())
    }

    /// Absorb `data` into every state.
    pub fn update(&mut self, mut data: &[u8]) {
        if self.deferred() == 0 {
            if let Some(Slot::Here(h)) = self.inline.and_then(|i| self.slots.get_mut(i)) {
                h.update(data);
            }
            return;
        }
        while !data.is_empty() {
            let room = BATCH_MAX.saturating_sub(self.pending.len()).max(1);
            let (now, rest) = data.split_at(room.min(data.len()));
            if self.pending.capacity() == 0 && data.len() >= PARALLEL_UPDATE_MIN {
                self.pending = self.fresh_buffer();
            }
            self.pending.extend_from_slice(now);
            if self.pending.len() >= PARALLEL_UPDATE_MIN {
                self.dispatch();
            }
            // The workers have the batch; hash it here meanwhile.
            if let Some(Slot::Here(h)) = self.inline.and_then(|i| self.slots.get_mut(i)) {
                h.update(now);
            }
            data = rest;
        }
    }

    /// A cleared batch buffer: a sent one that every worker is done with, else a new one.
    fn fresh_buffer(&mut self) -> Vec<u8> {
        let free = self.pool.iter().position(|b| Arc::strong_count(b) == 1);
        if let Some(mut v) = free.and_then(|i| Arc::try_unwrap(self.pool.swap_remove(i)).ok()) {
            v.clear();
            return v;
        }
        Vec::with_capacity(BATCH_MAX)
    }

    fn start_workers(&mut self) {
        self.started = true;
        let inline = self.inline;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if Some(i) == inline {
                continue;
            }
            if let Slot::Here(h) = slot {
                if let Some(w) = Worker::start(h) {
                    *slot = Slot::Away(w);
                }
            }
        }
    }

    /// Give the pending bytes to every deferred state.
    fn dispatch(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if !self.started {
            self.start_workers();
        }
        let next = self.fresh_buffer();
        let batch = Arc::new(std::mem::replace(&mut self.pending, next));
        let inline = self.inline;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            match slot {
                Slot::Away(w) => w.send(Msg::Data(Arc::clone(&batch))),
                Slot::Here(h) if Some(i) != inline => h.update(&batch),
                Slot::Here(_) => {}
            }
        }
        self.pool.push(batch);
        if self.pool.len() > QUEUE + 2 {
            self.pool.remove(0);
        }
    }

    /// Finish the stream and return every state (in the order given), ready to be finished or
    /// extended.
    pub fn into_states(mut self) -> Vec<Hasher> {
        if self.started {
            self.dispatch();
        } else {
            let pending = std::mem::take(&mut self.pending);
            let inline = self.inline;
            for (i, slot) in self.slots.iter_mut().enumerate() {
                if let Slot::Here(h) = slot {
                    if Some(i) != inline {
                        h.update(&pending);
                    }
                }
            }
        }
        std::mem::take(&mut self.slots)
            .into_iter()
            .map(|s| match s {
                Slot::Here(h) => h,
                Slot::Away(w) => w.finish(),
            })
            .collect()
    }

    /// Copies of every state after every byte absorbed so far (the workers keep running).
    pub fn snapshot(&self) -> Vec<Hasher> {
        let inline = self.inline;
        self.slots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut h = match s {
                    Slot::Here(h) => h.clone(),
                    Slot::Away(w) => w.snapshot(),
                };
                if Some(i) != inline {
                    h.update(&self.pending);
                }
                h
            })
            .collect()
    }
}

impl Default for ParallelStates {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

/// A fork: the copy starts with no threads of its own (it starts them as it grows).
impl Clone for ParallelStates {
    fn clone(&self) -> Self {
        Self::with_inline(self.snapshot(), self.inline)
    }
}

impl std::fmt::Debug for ParallelStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelStates")
            .field("algs", &self.algs())
            .field("workers", &self.workers())
            .finish()
    }
}

/// Digests of the concatenation of `parts`, bytes already in memory: one scoped thread per
/// algorithm reads them where they are (no copies), while `alongside` runs on the caller's
/// thread. Below [`PARALLEL_UPDATE_MIN`] bytes, or for one algorithm, or where a thread cannot
/// be started, the hashing is done on the caller's thread instead: same digests either way.
pub fn digest_parts<R>(
    parts: &[&[u8]],
    algs: &[DigestAlg],
    alongside: impl FnOnce() -> R,
) -> (crate::alg::Digests, R) {
    let mut uniq: Vec<DigestAlg> = Vec::new();
    for &a in algs {
        if !uniq.contains(&a) {
            uniq.push(a);
        }
    }
    let one = |alg: DigestAlg| {
        let mut h = Hasher::new(alg);
        parts.iter().for_each(|p| h.update(p));
        (alg, h.finish())
    };
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if uniq.len() < 2 || total < PARALLEL_UPDATE_MIN {
        let d = uniq.into_iter().map(one).collect();
        return (crate::alg::Digests(d), alongside());
    }
    std::thread::scope(|scope| {
        let running: Vec<_> = uniq
            .iter()
            .map(|&a| {
                let t = std::thread::Builder::new()
                    .name(WORKER_THREAD_NAME.into())
                    .spawn_scoped(scope, move || one(a));
                (a, t)
            })
            .collect();
        let r = alongside();
        let d = running
            .into_iter()
            .map(|(a, t)| match t.map(|t| t.join()) {
                Ok(Ok(d)) => d,
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                // No thread: hash it here.
                Err(_) => one(a),
            })
            .collect();
        (crate::alg::Digests(d), r)
    })
}
