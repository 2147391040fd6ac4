//! fwseal's transparency log, the self-contained part: an RFC 9162 §2.1 Merkle tree over
//! opaque leaf byte strings ([`merkle`]: root, inclusion and consistency proof generation
//! over any [`merkle::HashSource`]; [`proof`]: pure, bounded verification), and signed tree
//! heads as C2SP `tlog-checkpoint` bodies ([`checkpoint`]) inside C2SP `signed-note`
//! envelopes ([`note`]), hybrid-signed (ECDSA P-256 + ML-DSA-65).
//!
//! No I/O, no HTTP, no database: a store backend implements [`merkle::HashSource`] to serve
//! leaf hashes (and, optionally, cached complete-subtree hashes). Every parser takes
//! `&[u8]` and returns a typed error; nothing here panics on input.
//! The byte-level contract is `formats/log.md`.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod proof;

pub use checkpoint::{
    sign_checkpoint, verify_checkpoint, Checkpoint, CheckpointError, VerifyError,
};
pub use merkle::{
    consistency_proof, inclusion_proof, leaf_hash, node_hash, root, Hash, HashSource, LeafHashes,
    MemoryTree, TreeError, EMPTY_ROOT,
};
pub use note::{
    EcdsaP256NoteSigner, MlDsa65NoteSigner, NoteError, NoteSigner, SigType, TrustedKeys,
    VerifierKey,
};
pub use proof::{verify_consistency, verify_inclusion, ProofError, MAX_PROOF_LEN, MAX_TREE_SIZE};
