/*
 * fwseal_verify.h — C interface of fwseal-verify, the on-device verifier of fwseal-signed images.
 *
 * Hand-written; crates/fwseal-verify-ffi/tests/header.rs checks every constant below against the
 * Rust side (result codes, reason strings, sizes, enum values), so the two cannot drift apart.
 *
 * What it verifies: the fwseal signature block of raw (.bin/.fw) images, of the Intel HEX memory
 * image, of the DFU 1.1 payload and of the DfuSe element (formats/signature-block.md,
 * formats/hex.md, formats/dfu.md), and MCUboot images (formats/mcuboot.md: the image hash TLV,
 * the classical ECDSA_SIG and fwseal's FWSEAL_PQ_SIG TLV) — under a policy that requires both
 * halves (default), only the post-quantum one or only the classical one, and a minimum security
 * counter. Algorithms: ECDSA P-256 / P-384, ML-DSA-44/65/87, SLH-DSA-SHA2 (128s/128f/192s/256s).
 * RSA is not implemented (FWSEAL_VERIFY_E_UNSUPPORTED_ALGORITHM).
 *
 * Memory: no heap, no global state, no I/O. A streaming verification lives entirely in one
 * caller-provided fwseal_verify_ctx (FWSEAL_VERIFY_CTX_SIZE bytes, FWSEAL_VERIFY_CTX_ALIGN); see
 * docs/bootloader.md for the stack each algorithm needs. Every function is re-entrant; one
 * context must not be used from two threads at once.
 *
 * Safety contract for callers (the library checks what it can: NULL pointers, lengths, the
 * context's state and address; it cannot check the rest):
 *   - pointers are either NULL (refused with FWSEAL_VERIFY_E_NULL_ARGUMENT) or valid for the
 *     stated length;
 *   - the key bytes (fwseal_verify_key.data) must stay valid and unchanged from
 *     fwseal_verify_init() until fwseal_verify_finish() returns (keys in flash are); the key
 *     descriptor array itself is copied and may be reused after init;
 *   - a context must not be copied or moved between init and finish (a moved context is
 *     detected and refused with FWSEAL_VERIFY_E_BAD_STATE).
 * No function panics across the boundary: the library is built with panic=abort semantics
 * (an internal bug aborts or, on bare metal, parks the CPU — it never returns "ok").
 */
#ifndef FWSEAL_VERIFY_H
#define FWSEAL_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this interface. A change of any layout or value below increments it. */
#define FWSEAL_VERIFY_ABI_VERSION 1

/* ---- result codes ------------------------------------------------------------------------
 * Every function returns an int32_t status. 0 is success; 1..18 are the verdicts of the shared
 * reason codes (the conformance kit's "reason"; fwseal_verify_reason_str() gives the stable
 * string, e.g. "digest-mismatch"); 19, 20 and 100.. are integration mistakes, never a verdict
 * about the image.
 * Any non-zero value means: do not boot this image. */
typedef int32_t fwseal_verify_status;

enum {
    FWSEAL_VERIFY_OK = 0,                                 /* "ok" */
    FWSEAL_VERIFY_E_TRUNCATED = 1,                        /* "truncated" */
    FWSEAL_VERIFY_E_BAD_LENGTH = 2,                       /* "bad-length" */
    FWSEAL_VERIFY_E_BAD_MAGIC = 3,                        /* "bad-magic" */
    FWSEAL_VERIFY_E_MALFORMED = 4,                        /* "malformed" */
    FWSEAL_VERIFY_E_NO_SIGNATURE_BLOCK = 5,               /* "no-signature-block" */
    FWSEAL_VERIFY_E_UNKNOWN_TLV = 6,                      /* "unknown-tlv" */
    FWSEAL_VERIFY_E_DUPLICATE_TLV = 7,                    /* "duplicate-tlv" */
    FWSEAL_VERIFY_E_FORMAT_MISMATCH = 8,                  /* "format-mismatch" */
    FWSEAL_VERIFY_E_DIGEST_MISMATCH = 9,                  /* "digest-mismatch" */
    FWSEAL_VERIFY_E_DIGEST_MISSING = 10,                  /* "digest-missing" */
    FWSEAL_VERIFY_E_UNSUPPORTED_ALGORITHM = 11,           /* "unsupported-algorithm" */
    FWSEAL_VERIFY_E_UNTRUSTED_KEY = 12,                   /* "untrusted-key" */
    FWSEAL_VERIFY_E_CLASSICAL_SIGNATURE_INVALID = 13,     /* "classical-signature-invalid" */
    FWSEAL_VERIFY_E_PQ_SIGNATURE_INVALID = 14,            /* "pq-signature-invalid" */
    FWSEAL_VERIFY_E_CLASSICAL_SIGNATURE_MISSING = 15,     /* "classical-signature-missing" */
    FWSEAL_VERIFY_E_PQ_SIGNATURE_MISSING = 16,            /* "pq-signature-missing" */
    FWSEAL_VERIFY_E_PQ_TLV_NOT_LAST = 17,                 /* "pq-tlv-not-last" */
    FWSEAL_VERIFY_E_SECURITY_COUNTER_TOO_LOW = 18,        /* "security-counter-too-low" */

    /* Not verdicts on the image: mistakes of the integrator. */
    FWSEAL_VERIFY_E_INVALID_KEY = 19,       /* "invalid-key": a trusted key does not parse, is
                                               not in the canonical encoding key ids hash, or is
                                               for an algorithm this build lacks */
    FWSEAL_VERIFY_E_API_MISUSE = 20,        /* "api-misuse": bytes fed outside the range
                                               next_read() named (more, or different bytes for
                                               a range read twice), finish() too early */
    FWSEAL_VERIFY_E_NULL_ARGUMENT = 100,    /* "null-argument": a required pointer is NULL */
    FWSEAL_VERIFY_E_INVALID_ARGUMENT = 101, /* "invalid-argument": unknown format / require /
                                               key kind / algorithm, too many keys, a key that
                                               does not parse, a misaligned context */
    FWSEAL_VERIFY_E_BAD_STATE = 102         /* "bad-state": context not initialised, already
                                               finished, or moved */
};

/* The stable reason string of a status ("ok", "digest-mismatch", ...; "unknown" for a value
 * that is not a status). Never NULL; a static string. */
const char *fwseal_verify_reason_str(fwseal_verify_status status);

/* ---- inputs ------------------------------------------------------------------------------ */

/* What the bytes are (the "device image" of vectors/manifest.json). */
enum {
    FWSEAL_VERIFY_FORMAT_RAW = 1,     /* .bin / .fw: image bytes followed by the signature block */
    FWSEAL_VERIFY_FORMAT_MCUBOOT = 2, /* MCUboot: header + body + protected + unprotected TLVs */
    FWSEAL_VERIFY_FORMAT_HEX = 3,     /* Intel HEX memory image (gaps filled, from the lowest
                                         address), ending with the signature block */
    FWSEAL_VERIFY_FORMAT_DFU = 4,     /* DFU 1.1 file without its 16-byte suffix */
    FWSEAL_VERIFY_FORMAT_DFUSE = 6    /* DfuSe: canonical element encoding + block element data
                                         (formats/dfu.md, "what a device verifies") */
};

/* Which signature halves the policy requires. */
enum {
    FWSEAL_VERIFY_REQUIRE_BOTH = 0,      /* classical AND post-quantum (fwseal's default) */
    FWSEAL_VERIFY_REQUIRE_PQ = 1,        /* the post-quantum half only */
    FWSEAL_VERIFY_REQUIRE_CLASSICAL = 2  /* the classical half only */
};

typedef struct fwseal_verify_policy {
    uint32_t require;              /* FWSEAL_VERIFY_REQUIRE_* */
    uint32_t min_security_counter; /* reject images whose security counter is lower (absent = 0) */
} fwseal_verify_policy;

/* How a trusted key is given. */
enum {
    FWSEAL_VERIFY_KEY_SPKI = 0, /* DER SubjectPublicKeyInfo; alg is ignored (taken from the OID) */
    FWSEAL_VERIFY_KEY_RAW = 1   /* raw public key: SEC1 uncompressed point (04||x||y) for ECDSA,
                                   the FIPS 204 / FIPS 205 encoding for ML-DSA / SLH-DSA */
};

/* Algorithm ids: the signature algorithm ids of formats/signature-block.md. */
enum {
    FWSEAL_VERIFY_ALG_ECDSA_P256_SHA256 = 0x0001,
    FWSEAL_VERIFY_ALG_ECDSA_P384_SHA384 = 0x0002,
    FWSEAL_VERIFY_ALG_ML_DSA_44 = 0x0101,
    FWSEAL_VERIFY_ALG_ML_DSA_65 = 0x0102,
    FWSEAL_VERIFY_ALG_ML_DSA_87 = 0x0103,
    FWSEAL_VERIFY_ALG_SLH_DSA_SHA2_128S = 0x0201,
    FWSEAL_VERIFY_ALG_SLH_DSA_SHA2_128F = 0x0202,
    FWSEAL_VERIFY_ALG_SLH_DSA_SHA2_192S = 0x0203,
    FWSEAL_VERIFY_ALG_SLH_DSA_SHA2_256S = 0x0205
};

typedef struct fwseal_verify_key {
    uint32_t kind;        /* FWSEAL_VERIFY_KEY_* */
    uint32_t alg;         /* FWSEAL_VERIFY_ALG_* (FWSEAL_VERIFY_KEY_RAW only; 0 for SPKI) */
    const uint8_t *data;  /* the key bytes; must outlive the verification (see above) */
    size_t len;
} fwseal_verify_key;

/* At most this many trusted keys per verification (e.g. old + new key of each half during a
 * rotation). */
#define FWSEAL_VERIFY_MAX_KEYS 8

/* ---- outputs ----------------------------------------------------------------------------- */

#define FWSEAL_VERIFY_HALF_CLASSICAL 0x1u /* a classical signature verified with a trusted key */
#define FWSEAL_VERIFY_HALF_PQ 0x2u        /* a post-quantum signature verified with a trusted key */

/* What a successful verification established; all of it is authenticated by the signatures.
 * Zeroed on every non-OK result. */
typedef struct fwseal_verify_details {
    uint64_t image_range_start;   /* signature-block IMAGE_RANGE start (HEX: the load address of
                                     the memory image's first byte); valid if has_image_range */
    uint64_t covered_len;         /* bytes covered by the digests (IMAGE_RANGE length; MCUboot:
                                     header + body + protected TLVs) */
    uint32_t halves;              /* FWSEAL_VERIFY_HALF_* bits of the halves that verified */
    uint32_t signatures;          /* how many signatures verified (every one present did) */
    uint32_t has_security_counter;
    uint32_t security_counter;    /* SECURITY_COUNTER / SEC_CNT (0 when absent) */
    uint32_t has_version;         /* 1 if the image states a version (IMAGE_VERSION / ih_ver) */
    uint8_t version_major;
    uint8_t version_minor;
    uint16_t version_revision;
    uint32_t version_build;
    uint32_t has_image_range;     /* 1 for the signature-block formats */
    uint32_t classical_alg;       /* FWSEAL_VERIFY_ALG_* of the classical half, or 0 */
    uint32_t pq_alg;              /* FWSEAL_VERIFY_ALG_* of the post-quantum half, or 0 */
    uint8_t classical_key_id[32]; /* key id (SHA-256 of the SPKI DER) of the trusted key that
                                     verified the classical half (zeros if none) */
    uint8_t pq_key_id[32];        /* same for the post-quantum half */
    uint32_t product_len;         /* PRODUCT length, 0 when the format has none (MCUboot) */
    char product[256];            /* PRODUCT (UTF-8), NUL-terminated: compare it if the device
                                     checks which product an image is for */
} fwseal_verify_details;

/* ---- streaming verification -------------------------------------------------------------- */

/* Storage for one streaming verification. Its contents are private: the Rust verifier (hash
 * states, the protected TLV area, one signature buffer) and a copy of the key descriptors.
 * FWSEAL_VERIFY_CTX_SIZE equals the Rust layout (a compile-time assertion in the library).
 * Define FWSEAL_VERIFY_NO_SLH_DSA when the library is built without its slh-dsa feature. */
#if UINTPTR_MAX > 0xFFFFFFFFu
#ifdef FWSEAL_VERIFY_NO_SLH_DSA
#define FWSEAL_VERIFY_CTX_SIZE 7120 /* 64-bit, without SLH-DSA */
#else
#define FWSEAL_VERIFY_CTX_SIZE 32288 /* 64-bit, with SLH-DSA */
#endif
#else
#ifdef FWSEAL_VERIFY_NO_SLH_DSA
#define FWSEAL_VERIFY_CTX_SIZE 6888 /* 32-bit (Cortex-M), without SLH-DSA */
#else
#define FWSEAL_VERIFY_CTX_SIZE 32048 /* 32-bit (Cortex-M), with SLH-DSA */
#endif
#endif
#if UINTPTR_MAX > 0xFFFFFFFFu
#define FWSEAL_VERIFY_CTX_ALIGN 16
#else
#define FWSEAL_VERIFY_CTX_ALIGN 8
#endif

/* The union members give the alignment (long double: 16 on x86-64/aarch64, 8 on 32-bit Arm).
 * The library refuses a misaligned context with FWSEAL_VERIFY_E_INVALID_ARGUMENT. */
typedef union fwseal_verify_ctx {
    uint8_t opaque[FWSEAL_VERIFY_CTX_SIZE];
    uint64_t align_u64_;
    long double align_ld_;
} fwseal_verify_ctx;

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(fwseal_verify_ctx) == FWSEAL_VERIFY_CTX_SIZE, "fwseal_verify_ctx size");
_Static_assert(_Alignof(fwseal_verify_ctx) >= FWSEAL_VERIFY_CTX_ALIGN, "fwseal_verify_ctx align");
#endif

/* The context size the library was built with; check it equals sizeof(fwseal_verify_ctx) once
 * at start-up if header and library could come from different builds. */
size_t fwseal_verify_ctx_size(void);

/* Start verifying an image of exactly image_len bytes (the slot / download knows its length).
 * Copies the key descriptors (at most FWSEAL_VERIFY_MAX_KEYS; the key BYTES are not copied and
 * must stay valid until finish) and parses every key (FWSEAL_VERIFY_E_INVALID_KEY if one does
 * not). On any error the context is left unusable; init it again. */
fwseal_verify_status fwseal_verify_init(fwseal_verify_ctx *ctx, uint32_t format,
                                        uint64_t image_len, const fwseal_verify_key *keys,
                                        size_t n_keys, const fwseal_verify_policy *policy);

/* The verifier asks for the bytes it needs: the next range [*offset, *offset + *len) of the
 * image to read and feed with fwseal_verify_update() (in chunks of any size). *len == 0 means
 * nothing more to read: call fwseal_verify_finish(). Signature-block formats ask for the 16-byte
 * footer, then the block, then the covered bytes from offset 0; MCUboot for the header, the TLV
 * areas, the hashed bytes from 0, and the unprotected TLVs once more. After an error this
 * returns that error (with *len = 0). */
fwseal_verify_status fwseal_verify_next_read(fwseal_verify_ctx *ctx, uint64_t *offset,
                                             uint64_t *len);

/* Feed the next len bytes of the range next_read() named (0 is allowed). After the first error
 * every later call returns that same error. */
fwseal_verify_status fwseal_verify_update(fwseal_verify_ctx *ctx, const uint8_t *chunk,
                                          size_t len);

/* The verdict. FWSEAL_VERIFY_OK only when the image satisfies the policy; details (may be NULL)
 * is filled on OK and zeroed otherwise. The context is finished afterwards (init to reuse). */
fwseal_verify_status fwseal_verify_finish(fwseal_verify_ctx *ctx, fwseal_verify_details *details);

/* ---- one shot ---------------------------------------------------------------------------- */

/* Verify an image held entirely in memory (e.g. memory-mapped flash): the same verdicts as the
 * streaming calls, without a context (it uses stack only). details may be NULL. */
fwseal_verify_status fwseal_verify_image(uint32_t format, const uint8_t *image, size_t image_len,
                                         const fwseal_verify_key *keys, size_t n_keys,
                                         const fwseal_verify_policy *policy,
                                         fwseal_verify_details *details);

#ifdef __cplusplus
}
#endif

#endif /* FWSEAL_VERIFY_H */
