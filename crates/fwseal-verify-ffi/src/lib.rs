//! `fwseal-verify-ffi`: the C ABI of [`fwseal_verify`] — `include/fwseal_verify.h` and
//! `libfwseal_verify_ffi.a` — for bootloaders written in C (an MCUboot `boot_image_check_hook`,
//! a vendor boot ROM extension, a factory verification rig).
//!
//! This crate only converts: C structs and integers into [`fwseal_verify`]'s types, its
//! [`fwseal_verify::Reason`] into the `FWSEAL_VERIFY_E_*` status codes, and [`Verified`] into
//! `fwseal_verify_details`. Every decision about an image is made by `fwseal-verify`.
//! It is the only crate of the workspace with `unsafe` code, and all of it is here: turning
//! C pointers into slices and references after NULL, length, alignment and state checks. Each
//! unsafe block is one statement and says why it is sound.
//!
//! No heap, no globals, no I/O. A streaming verification lives in caller storage
//! ([`fwseal_verify_ctx`], [`FWSEAL_VERIFY_CTX_SIZE`] bytes) that holds the verifier and a copy
//! of the key descriptors; the verifier borrows that copy, so the context must not move between
//! `init` and `finish` (its address is recorded and checked on every call).
//!
//! Panics never cross the boundary: unwinding out of an `extern "C"` function aborts (Rust ≥
//! 1.81), and on bare metal the `panic-handler` feature parks the CPU. `fwseal-verify` returns
//! typed errors for every input, so a panic would be a bug, and it can never yield "ok".
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(target_os = "none"))]
extern crate std;

use core::ffi::{c_char, CStr};
use core::mem::{align_of, size_of, MaybeUninit};
use core::ptr::{addr_of, addr_of_mut};
use fwseal_verify::{Alg, Error, Format, Reason, Require, TrustedKey, Verified, Verifier};

/// A status code: `0` ok, `1..=20` the verdicts of [`Reason`] (same numbers), `100..` API
/// misuse.
pub type Status = i32;

/// `FWSEAL_VERIFY_OK`.
pub const FWSEAL_VERIFY_OK: Status = 0;
/// `FWSEAL_VERIFY_E_NULL_ARGUMENT`: a required pointer is NULL.
pub const FWSEAL_VERIFY_E_NULL_ARGUMENT: Status = 100;
/// `FWSEAL_VERIFY_E_INVALID_ARGUMENT`: unknown format / require / key kind / algorithm, too
/// many keys, a misaligned context.
pub const FWSEAL_VERIFY_E_INVALID_ARGUMENT: Status = 101;
/// `FWSEAL_VERIFY_E_BAD_STATE`: the context is not initialised, finished, failed or moved.
pub const FWSEAL_VERIFY_E_BAD_STATE: Status = 102;

/// `FWSEAL_VERIFY_MAX_KEYS`: trusted keys per verification.
pub const FWSEAL_VERIFY_MAX_KEYS: usize = 8;

/// `FWSEAL_VERIFY_FORMAT_*` (the fwseal format ids where one exists; DfuSe has its own).
pub const FORMATS: [(u32, Format); 5] = [
    (1, Format::Raw),
    (2, Format::Mcuboot),
    (3, Format::Hex),
    (4, Format::Dfu),
    (6, Format::DfuSe),
];

/// `FWSEAL_VERIFY_REQUIRE_*`.
pub const REQUIRES: [(u32, Require); 3] = [
    (0, Require::Both),
    (1, Require::PqOnly),
    (2, Require::ClassicalOnly),
];

/// `FWSEAL_VERIFY_KEY_SPKI`.
pub const FWSEAL_VERIFY_KEY_SPKI: u32 = 0;
/// `FWSEAL_VERIFY_KEY_RAW`.
pub const FWSEAL_VERIFY_KEY_RAW: u32 = 1;
/// `FWSEAL_VERIFY_HALF_CLASSICAL`.
pub const FWSEAL_VERIFY_HALF_CLASSICAL: u32 = 1;
/// `FWSEAL_VERIFY_HALF_PQ`.
pub const FWSEAL_VERIFY_HALF_PQ: u32 = 2;

/// `fwseal_verify_policy`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[allow(non_camel_case_types)]
pub struct fwseal_verify_policy {
    /// `FWSEAL_VERIFY_REQUIRE_*`.
    pub require: u32,
    /// Minimum security counter.
    pub min_security_counter: u32,
}

/// `fwseal_verify_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[allow(non_camel_case_types)]
pub struct fwseal_verify_key {
    /// `FWSEAL_VERIFY_KEY_*`.
    pub kind: u32,
    /// Signature algorithm id (raw keys only).
    pub alg: u32,
    /// Key bytes.
    pub data: *const u8,
    /// Key length.
    pub len: usize,
}

/// `fwseal_verify_details`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[allow(non_camel_case_types)]
pub struct fwseal_verify_details {
    /// `IMAGE_RANGE` start (valid when `has_image_range`).
    pub image_range_start: u64,
    /// `IMAGE_RANGE` length / bytes covered by the digests.
    pub covered_len: u64,
    /// `FWSEAL_VERIFY_HALF_*` bits.
    pub halves: u32,
    /// How many signatures verified (every signature in the image did).
    pub signatures: u32,
    /// 1 when the image has a security counter.
    pub has_security_counter: u32,
    /// The security counter (0 when absent).
    pub security_counter: u32,
    /// 1 when the image states a version.
    pub has_version: u32,
    /// Version major.
    pub version_major: u8,
    /// Version minor.
    pub version_minor: u8,
    /// Version revision.
    pub version_revision: u16,
    /// Version build.
    pub version_build: u32,
    /// 1 for signature-block formats (IMAGE_RANGE present).
    pub has_image_range: u32,
    /// Algorithm id of the classical half, or 0.
    pub classical_alg: u32,
    /// Algorithm id of the post-quantum half, or 0.
    pub pq_alg: u32,
    /// Key id of the classical half, or zeros.
    pub classical_key_id: [u8; 32],
    /// Key id of the post-quantum half, or zeros.
    pub pq_key_id: [u8; 32],
    /// PRODUCT length (0: none, e.g. MCUboot).
    pub product_len: u32,
    /// PRODUCT, NUL-terminated.
    pub product: [u8; 256],
}

impl fwseal_verify_details {
    const ZERO: fwseal_verify_details = fwseal_verify_details {
        image_range_start: 0,
        covered_len: 0,
        halves: 0,
        signatures: 0,
        has_security_counter: 0,
        security_counter: 0,
        has_version: 0,
        version_major: 0,
        version_minor: 0,
        version_revision: 0,
        version_build: 0,
        has_image_range: 0,
        classical_alg: 0,
        pq_alg: 0,
        classical_key_id: [0; 32],
        pq_key_id: [0; 32],
        product_len: 0,
        product: [0; 256],
    };

    fn from_verified(v: &Verified) -> Self {
        let mut d = Self::ZERO;
        if let Some(c) = v.classical {
            d.halves |= FWSEAL_VERIFY_HALF_CLASSICAL;
            d.classical_alg = u32::from(c.alg.id());
            d.classical_key_id = c.key_id;
        }
        if let Some(p) = v.pq {
            d.halves |= FWSEAL_VERIFY_HALF_PQ;
            d.pq_alg = u32::from(p.alg.id());
            d.pq_key_id = p.key_id;
        }
        d.signatures = u32::from(v.signatures);
        if let Some(c) = v.security_counter {
            d.has_security_counter = 1;
            d.security_counter = c;
        }
        if let Some(ver) = v.image_version {
            d.has_version = 1;
            d.version_major = ver.major;
            d.version_minor = ver.minor;
            d.version_revision = ver.revision;
            d.version_build = ver.build;
        }
        if let Some((start, _)) = v.image_range {
            d.has_image_range = 1;
            d.image_range_start = start;
        }
        d.covered_len = v.covered_len;
        if let Some(p) = &v.product {
            let b = p.as_bytes();
            let n = b.len().min(255);
            d.product[..n].copy_from_slice(&b[..n]);
            d.product_len = n as u32;
        }
        d
    }
}

/// The status of a [`Reason`]: its discriminant (`FWSEAL_VERIFY_E_*` has the same numbers).
pub fn status_of(reason: Reason) -> Status {
    match reason {
        Reason::Ok => 0,
        Reason::Truncated => 1,
        Reason::BadLength => 2,
        Reason::BadMagic => 3,
        Reason::Malformed => 4,
        Reason::NoSignatureBlock => 5,
        Reason::UnknownTlv => 6,
        Reason::DuplicateTlv => 7,
        Reason::FormatMismatch => 8,
        Reason::DigestMismatch => 9,
        Reason::DigestMissing => 10,
        Reason::UnsupportedAlgorithm => 11,
        Reason::UntrustedKey => 12,
        Reason::ClassicalSignatureInvalid => 13,
        Reason::PqSignatureInvalid => 14,
        Reason::ClassicalSignatureMissing => 15,
        Reason::PqSignatureMissing => 16,
        Reason::PqTlvNotLast => 17,
        Reason::SecurityCounterTooLow => 18,
        Reason::InvalidKey => 19,
        Reason::ApiMisuse => 20,
        // A reason added to fwseal-verify but not yet here: still a rejection
        // (tests/header.rs fails until it gets its own number).
        _ => 4,
    }
}

fn status(e: Error) -> Status {
    status_of(e.reason())
}

/// `FWSEAL_VERIFY_CTX_SIZE` for this build (header: 64-/32-bit, with/without SLH-DSA).
pub const FWSEAL_VERIFY_CTX_SIZE: usize = ctx_size();

const fn ctx_size() -> usize {
    // Keep in sync with include/fwseal_verify.h; the assertion below fails the build when the
    // Rust layout changes, and tests/header.rs compares these numbers with the header's.
    match (size_of::<usize>(), cfg!(feature = "slh-dsa")) {
        (8, true) => CTX_SIZE_64_SLH,
        (8, false) => CTX_SIZE_64,
        (_, true) => CTX_SIZE_32_SLH,
        (_, false) => CTX_SIZE_32,
    }
}

// The sizes are size_of::<Ctx>() (x86-64 / aarch64 and thumbv7em), measured with
// `cargo test -p fwseal-verify-ffi --lib` (64-bit; the test prints the value when it differs)
// and `-Zprint-type-sizes` on the Cortex-M build (`cargo xtask cortex-m` checks it at run time).
/// Header value for 64-bit targets with SLH-DSA.
pub const CTX_SIZE_64_SLH: usize = 32288;
/// Header value for 64-bit targets without SLH-DSA.
pub const CTX_SIZE_64: usize = 7120;
/// Header value for 32-bit targets with SLH-DSA.
pub const CTX_SIZE_32_SLH: usize = 32048;
/// Header value for 32-bit targets without SLH-DSA.
pub const CTX_SIZE_32: usize = 6888;

/// `FWSEAL_VERIFY_CTX_ALIGN`: 16 on 64-bit targets (the hash states hold `u128`s), 8 on 32-bit.
pub const FWSEAL_VERIFY_CTX_ALIGN: usize = if size_of::<usize>() == 8 { 16 } else { 8 };

// The storage must hold the context: a larger Rust layout fails the build here. (The unit test
// `ctx_size_is_exact` keeps the constants tight.)
const _: () = assert!(
    size_of::<Ctx>() <= FWSEAL_VERIFY_CTX_SIZE,
    "Ctx outgrew FWSEAL_VERIFY_CTX_SIZE: update src/lib.rs and include/fwseal_verify.h"
);
const _: () = assert!(align_of::<Ctx>() <= FWSEAL_VERIFY_CTX_ALIGN);
const _: () = assert!(align_of::<fwseal_verify_ctx>() == FWSEAL_VERIFY_CTX_ALIGN);

/// `fwseal_verify_ctx`: opaque caller storage for one streaming verification.
#[cfg_attr(target_pointer_width = "64", repr(C, align(16)))]
#[cfg_attr(not(target_pointer_width = "64"), repr(C, align(8)))]
#[allow(non_camel_case_types)]
pub struct fwseal_verify_ctx {
    _opaque: [u8; FWSEAL_VERIFY_CTX_SIZE],
}

const MAGIC: u32 = 0x6677_7663; // "fwvc"
const LIVE: u32 = 1;
const FAILED: u32 = 2;

/// What lives in a `fwseal_verify_ctx`. `verifier` borrows `keys` (a self-reference, hence
/// the "do not move" rule, checked through `self_addr`). Fields are only ever reached through
/// raw-pointer projections, so the `&mut` taken to the verifier never covers `keys`.
#[repr(C)]
struct Ctx {
    magic: u32,
    state: u32,
    failed: Status,
    self_addr: usize,
    keys: [TrustedKey<'static>; FWSEAL_VERIFY_MAX_KEYS],
    verifier: MaybeUninit<Verifier<'static>>,
}

/// The NUL-terminated reason strings, by status.
fn reason_cstr(st: Status) -> &'static CStr {
    match st {
        FWSEAL_VERIFY_E_NULL_ARGUMENT => c"null-argument",
        FWSEAL_VERIFY_E_INVALID_ARGUMENT => c"invalid-argument",
        FWSEAL_VERIFY_E_BAD_STATE => c"bad-state",
        _ => match Reason::ALL.iter().find(|r| status_of(**r) == st) {
            Some(r) => reason_code_cstr(*r),
            None => c"unknown",
        },
    }
}

fn reason_code_cstr(r: Reason) -> &'static CStr {
    match r {
        Reason::Ok => c"ok",
        Reason::Truncated => c"truncated",
        Reason::BadLength => c"bad-length",
        Reason::BadMagic => c"bad-magic",
        Reason::Malformed => c"malformed",
        Reason::NoSignatureBlock => c"no-signature-block",
        Reason::UnknownTlv => c"unknown-tlv",
        Reason::DuplicateTlv => c"duplicate-tlv",
        Reason::FormatMismatch => c"format-mismatch",
        Reason::DigestMismatch => c"digest-mismatch",
        Reason::DigestMissing => c"digest-missing",
        Reason::UnsupportedAlgorithm => c"unsupported-algorithm",
        Reason::UntrustedKey => c"untrusted-key",
        Reason::ClassicalSignatureInvalid => c"classical-signature-invalid",
        Reason::PqSignatureInvalid => c"pq-signature-invalid",
        Reason::ClassicalSignatureMissing => c"classical-signature-missing",
        Reason::PqSignatureMissing => c"pq-signature-missing",
        Reason::PqTlvNotLast => c"pq-tlv-not-last",
        Reason::SecurityCounterTooLow => c"security-counter-too-low",
        Reason::InvalidKey => c"invalid-key",
        Reason::ApiMisuse => c"api-misuse",
        _ => c"unknown",
    }
}

/// `fwseal_verify_reason_str`: the stable reason string of a status (never NULL, static).
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn fwseal_verify_reason_str(status: Status) -> *const c_char {
    reason_cstr(status).as_ptr()
}

/// `fwseal_verify_ctx_size`: the context size this library was built with.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn fwseal_verify_ctx_size() -> usize {
    size_of::<fwseal_verify_ctx>()
}

// ---- the unsafe conversions -------------------------------------------------------------

/// `len` bytes at `p` as a slice (`&[]` for `len == 0`, whatever `p`).
///
/// # Safety
/// Unless `len == 0`, `p` must be NULL or valid for reads of `len` bytes, unchanged for `'a`.
#[allow(unsafe_code)]
unsafe fn bytes<'a>(p: *const u8, len: usize) -> Result<&'a [u8], Status> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(FWSEAL_VERIFY_E_NULL_ARGUMENT);
    }
    if len > isize::MAX as usize {
        return Err(FWSEAL_VERIFY_E_INVALID_ARGUMENT);
    }
    // SAFETY: p is non-NULL and, by the caller's contract, valid for `len` (≤ isize::MAX) bytes
    // that stay unchanged for 'a; u8 has no alignment or validity requirement.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// The caller's key descriptors, converted to [`TrustedKey`]s in `out`; returns how many.
///
/// # Safety
/// `keys` must be NULL or valid for `n` descriptors, each of whose `data` is NULL or valid for
/// `len` bytes that stay unchanged for `'k`.
#[allow(unsafe_code)]
unsafe fn convert_keys<'k>(
    keys: *const fwseal_verify_key,
    n: usize,
    out: &mut [TrustedKey<'k>; FWSEAL_VERIFY_MAX_KEYS],
) -> Result<usize, Status> {
    if n == 0 {
        return Ok(0);
    }
    if n > FWSEAL_VERIFY_MAX_KEYS {
        return Err(FWSEAL_VERIFY_E_INVALID_ARGUMENT);
    }
    if keys.is_null() {
        return Err(FWSEAL_VERIFY_E_NULL_ARGUMENT);
    }
    if keys.align_offset(align_of::<fwseal_verify_key>()) != 0 {
        return Err(FWSEAL_VERIFY_E_INVALID_ARGUMENT);
    }
    // SAFETY: keys is non-NULL, aligned, and by the caller's contract valid for n (≤ 8)
    // descriptors; fwseal_verify_key is plain data (every bit pattern is valid).
    let descs = unsafe { core::slice::from_raw_parts(keys, n) };
    for (d, slot) in descs.iter().zip(out.iter_mut()) {
        // SAFETY: the caller's contract covers each descriptor's data for 'k.
        let data = unsafe { bytes(d.data, d.len) }?;
        if data.is_empty() {
            return Err(FWSEAL_VERIFY_E_INVALID_ARGUMENT);
        }
        *slot = match d.kind {
            FWSEAL_VERIFY_KEY_SPKI => TrustedKey::Spki(data),
            FWSEAL_VERIFY_KEY_RAW => {
                let alg = u16::try_from(d.alg)
                    .ok()
                    .and_then(Alg::from_id)
                    .ok_or(FWSEAL_VERIFY_E_INVALID_ARGUMENT)?;
                TrustedKey::Raw { alg, key: data }
            }
            _ => return Err(FWSEAL_VERIFY_E_INVALID_ARGUMENT),
        };
    }
    Ok(n)
}

/// The policy and format of the C arguments.
///
/// # Safety
/// `policy` must be NULL or point to a readable `fwseal_verify_policy`.
#[allow(unsafe_code)]
unsafe fn convert_args(
    format: u32,
    policy: *const fwseal_verify_policy,
) -> Result<(Format, fwseal_verify::Policy), Status> {
    if policy.is_null() {
        return Err(FWSEAL_VERIFY_E_NULL_ARGUMENT);
    }
    // SAFETY: non-NULL and, by the caller's contract, a readable policy; read_unaligned
    // because a C caller may pack it anywhere, and the struct is plain data.
    let p = unsafe { policy.read_unaligned() };
    let format = FORMATS
        .iter()
        .find(|(id, _)| *id == format)
        .map(|(_, f)| *f)
        .ok_or(FWSEAL_VERIFY_E_INVALID_ARGUMENT)?;
    let require = REQUIRES
        .iter()
        .find(|(id, _)| *id == p.require)
        .map(|(_, r)| *r)
        .ok_or(FWSEAL_VERIFY_E_INVALID_ARGUMENT)?;
    Ok((
        format,
        fwseal_verify::Policy {
            require,
            min_security_counter: p.min_security_counter,
        },
    ))
}

/// Write `d` to `out` if it is not NULL.
///
/// # Safety
/// `out` must be NULL or valid for writing one `fwseal_verify_details`.
#[allow(unsafe_code)]
unsafe fn put_details(out: *mut fwseal_verify_details, d: &fwseal_verify_details) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable by the caller's contract; unaligned write because the
        // caller may place it anywhere.
        unsafe { out.write_unaligned(*d) };
    }
}

/// The live context at `ctx`, after checking it was initialised here (magic, recorded
/// address). Returns the raw pointer; fields are reached by projection.
fn live(ctx: *mut fwseal_verify_ctx) -> Result<*mut Ctx, Status> {
    if ctx.is_null() {
        return Err(FWSEAL_VERIFY_E_NULL_ARGUMENT);
    }
    let p = ctx.cast::<Ctx>();
    if p.align_offset(align_of::<Ctx>()) != 0 {
        return Err(FWSEAL_VERIFY_E_INVALID_ARGUMENT);
    }
    if read_magic(p) != MAGIC || read_self_addr(p) != p as usize {
        return Err(FWSEAL_VERIFY_E_BAD_STATE);
    }
    Ok(p)
}

#[allow(unsafe_code)]
fn read_magic(p: *mut Ctx) -> u32 {
    // SAFETY: p is non-NULL, aligned and points to FWSEAL_VERIFY_CTX_SIZE bytes of caller
    // storage (the header's contract); a u32 has no invalid bit patterns, so reading it is
    // sound whatever the storage holds.
    unsafe { addr_of!((*p).magic).read_volatile() }
}

#[allow(unsafe_code)]
fn read_self_addr(p: *mut Ctx) -> usize {
    // SAFETY: as in read_magic: aligned caller storage, and any usize value is valid.
    unsafe { addr_of!((*p).self_addr).read_volatile() }
}

#[allow(unsafe_code)]
fn set_state(p: *mut Ctx, state: u32, failed: Status) {
    // SAFETY: p was checked by live()/init (non-NULL, aligned, caller storage of the context's
    // size); state is a plain u32 field disjoint from the keys the verifier borrows.
    unsafe { addr_of_mut!((*p).state).write(state) };
    // SAFETY: same; failed is a plain i32 field.
    unsafe { addr_of_mut!((*p).failed).write(failed) };
}

#[allow(unsafe_code)]
fn state(p: *mut Ctx) -> (u32, Status) {
    // SAFETY: p is a live context (magic checked); state was written by init.
    let s = unsafe { addr_of!((*p).state).read() };
    // SAFETY: same; failed was written by init.
    let f = unsafe { addr_of!((*p).failed).read() };
    (s, f)
}

/// Mark the context unusable (finish, failed init).
#[allow(unsafe_code)]
fn retire(p: *mut Ctx) {
    // SAFETY: p is non-NULL and aligned caller storage of the context's size.
    unsafe { addr_of_mut!((*p).magic).write_volatile(0) };
}

/// The verifier of a live context, mutably. Only the `verifier` field is covered.
///
/// # Safety
/// `p` must be a live context (checked by [`live`], state `LIVE`), and the returned reference
/// must be the only one to the verifier while it is used.
#[allow(unsafe_code)]
unsafe fn verifier<'a>(p: *mut Ctx) -> &'a mut Verifier<'static> {
    // SAFETY: state LIVE means init wrote the verifier field (assume_init is sound); the
    // projection covers only that field, so the keys it borrows are not aliased mutably.
    unsafe { (*addr_of_mut!((*p).verifier)).assume_init_mut() }
}

// ---- the calls ----------------------------------------------------------------------------

/// `fwseal_verify_init`.
///
/// # Safety
/// See `include/fwseal_verify.h`: `ctx` is NULL or `FWSEAL_VERIFY_CTX_SIZE` bytes of writable
/// storage that does not move until finish; `keys` is NULL or `n_keys` descriptors whose key
/// bytes stay valid until finish; `policy` is NULL or readable.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn fwseal_verify_init(
    ctx: *mut fwseal_verify_ctx,
    format: u32,
    image_len: u64,
    keys: *const fwseal_verify_key,
    n_keys: usize,
    policy: *const fwseal_verify_policy,
) -> Status {
    if ctx.is_null() {
        return FWSEAL_VERIFY_E_NULL_ARGUMENT;
    }
    let p = ctx.cast::<Ctx>();
    if p.align_offset(align_of::<Ctx>()) != 0 {
        return FWSEAL_VERIFY_E_INVALID_ARGUMENT;
    }
    retire(p);
    // SAFETY: policy is NULL or readable (caller contract).
    let (format, policy) = match unsafe { convert_args(format, policy) } {
        Ok(a) => a,
        Err(st) => return st,
    };
    let mut tk = [TrustedKey::Spki(&[]); FWSEAL_VERIFY_MAX_KEYS];
    // SAFETY: keys and their bytes are valid until finish (caller contract), which is what
    // 'static stands for here: the context never outlives that (it is retired by finish).
    let n = match unsafe { convert_keys(keys, n_keys, &mut tk) } {
        Ok(n) => n,
        Err(st) => return st,
    };
    // SAFETY: p is non-NULL, aligned, writable caller storage; the keys field is plain data.
    unsafe { addr_of_mut!((*p).keys).write(tk) };
    // SAFETY: the keys field was just initialised and is never written again while this
    // context is live; the slice points into the caller's storage, which does not move (the
    // recorded address is checked on every call) and outlives the verifier (retired at
    // finish).
    let keys: &'static [TrustedKey<'static>] =
        unsafe { core::slice::from_raw_parts(addr_of!((*p).keys).cast::<TrustedKey>(), n) };
    // Built in place in the caller's storage (no context-sized temporary on the stack).
    // SAFETY: writable caller storage, aligned; the projection covers only the verifier field
    // (disjoint from the keys it borrows), and a MaybeUninit may hold anything.
    let slot = unsafe { &mut *addr_of_mut!((*p).verifier) };
    if let Err(e) = Verifier::new_in(slot, format, image_len, keys, policy) {
        return status(e);
    }
    set_state(p, LIVE, FWSEAL_VERIFY_OK);
    // SAFETY: writable caller storage; plain usize field.
    unsafe { addr_of_mut!((*p).self_addr).write(p as usize) };
    // SAFETY: writable caller storage; the magic is written last, making the context live.
    unsafe { addr_of_mut!((*p).magic).write_volatile(MAGIC) };
    FWSEAL_VERIFY_OK
}

/// `fwseal_verify_next_read`: the next range of the image to feed (`*len == 0`: none, call
/// finish).
///
/// # Safety
/// `ctx` as for init; `offset` and `len` NULL or writable.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn fwseal_verify_next_read(
    ctx: *mut fwseal_verify_ctx,
    offset: *mut u64,
    len: *mut u64,
) -> Status {
    if offset.is_null() || len.is_null() {
        return FWSEAL_VERIFY_E_NULL_ARGUMENT;
    }
    let (st, range) = match live(ctx) {
        Err(st) => (st, None),
        Ok(p) => match state(p) {
            (LIVE, _) => {
                // SAFETY: live context in state LIVE; the reference is used only here.
                let v = unsafe { verifier(p) };
                (FWSEAL_VERIFY_OK, v.next_read())
            }
            (_, failed) => (failed, None),
        },
    };
    let (o, l) = range.map_or((0, 0), |r| (r.offset, r.len));
    // SAFETY: non-NULL and writable by the caller's contract (unaligned: any placement).
    unsafe { offset.write_unaligned(o) };
    // SAFETY: same.
    unsafe { len.write_unaligned(l) };
    st
}

/// `fwseal_verify_update`: the next bytes of the range `next_read` named.
///
/// # Safety
/// `ctx` as for init; `chunk` NULL or readable for `len` bytes.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn fwseal_verify_update(
    ctx: *mut fwseal_verify_ctx,
    chunk: *const u8,
    len: usize,
) -> Status {
    let p = match live(ctx) {
        Ok(p) => p,
        Err(st) => return st,
    };
    match state(p) {
        (LIVE, _) => {}
        (_, failed) => return failed,
    }
    // SAFETY: chunk is NULL or readable for len bytes during this call (caller contract).
    let data = match unsafe { bytes(chunk, len) } {
        Ok(d) => d,
        Err(st) => return st,
    };
    // SAFETY: live context in state LIVE; the reference is used only here.
    let v = unsafe { verifier(p) };
    match v.update(data) {
        Ok(()) => FWSEAL_VERIFY_OK,
        Err(e) => {
            let st = status(e);
            set_state(p, FAILED, st);
            st
        }
    }
}

/// `fwseal_verify_finish`: the verdict; the context is retired.
///
/// # Safety
/// `ctx` as for init; `details` NULL or writable.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn fwseal_verify_finish(
    ctx: *mut fwseal_verify_ctx,
    details: *mut fwseal_verify_details,
) -> Status {
    // SAFETY: details is NULL or writable (caller contract).
    unsafe { put_details(details, &fwseal_verify_details::ZERO) };
    let p = match live(ctx) {
        Ok(p) => p,
        Err(st) => return st,
    };
    retire(p);
    match state(p) {
        (LIVE, _) => {}
        (_, failed) => return failed,
    }
    // SAFETY: state LIVE: init wrote the verifier; the reference is used only here. It is
    // not moved out (finish takes &self): the retired context keeps it, and it has no drop glue.
    let v = unsafe { verifier(p) };
    match v.finish() {
        Ok(verified) => {
            // SAFETY: details is NULL or writable (caller contract).
            unsafe { put_details(details, &fwseal_verify_details::from_verified(&verified)) };
            FWSEAL_VERIFY_OK
        }
        Err(e) => status(e),
    }
}

/// `fwseal_verify_image`: one-shot verification of an image in memory.
///
/// # Safety
/// `image` NULL or readable for `image_len` bytes; `keys`, `policy`, `details` as above (valid
/// for the duration of the call).
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn fwseal_verify_image(
    format: u32,
    image: *const u8,
    image_len: usize,
    keys: *const fwseal_verify_key,
    n_keys: usize,
    policy: *const fwseal_verify_policy,
    details: *mut fwseal_verify_details,
) -> Status {
    // SAFETY: details is NULL or writable (caller contract).
    unsafe { put_details(details, &fwseal_verify_details::ZERO) };
    if image.is_null() {
        return FWSEAL_VERIFY_E_NULL_ARGUMENT;
    }
    // SAFETY: policy NULL or readable (caller contract).
    let (format, policy) = match unsafe { convert_args(format, policy) } {
        Ok(a) => a,
        Err(st) => return st,
    };
    let mut tk = [TrustedKey::Spki(&[]); FWSEAL_VERIFY_MAX_KEYS];
    // SAFETY: keys and their bytes are valid for this call (caller contract); the converted
    // keys do not outlive it.
    let n = match unsafe { convert_keys(keys, n_keys, &mut tk) } {
        Ok(n) => n,
        Err(st) => return st,
    };
    // SAFETY: image is non-NULL and readable for image_len bytes during the call.
    let img = match unsafe { bytes(image, image_len) } {
        Ok(b) => b,
        Err(st) => return st,
    };
    match fwseal_verify::verify(format, img, &tk[..n], policy) {
        Ok(v) => {
            // SAFETY: details is NULL or writable (caller contract).
            unsafe { put_details(details, &fwseal_verify_details::from_verified(&v)) };
            FWSEAL_VERIFY_OK
        }
        Err(e) => status(e),
    }
}

#[cfg(all(target_os = "none", feature = "panic-handler", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // Unreachable for any input (fwseal-verify returns typed errors); if a bug gets here the
    // CPU parks and the watchdog resets the device. No image is accepted.
    loop {
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctx_size_is_exact() {
        assert_eq!(
            size_of::<Ctx>(),
            FWSEAL_VERIFY_CTX_SIZE,
            "set the header's FWSEAL_VERIFY_CTX_SIZE for this target/feature set to size_of::<Ctx>()"
        );
    }
}
