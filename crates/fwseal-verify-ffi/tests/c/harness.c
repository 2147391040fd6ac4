/*
 * Conformance harness for the fwseal-verify C ABI, written the way a bootloader calls it.
 *
 *   harness [-c CHUNKS] [-m] VECTORS_DIR
 *
 * Reads VECTORS_DIR/manifest.tsv (one vector per line, tab-separated:
 *   name format device_image require min_security_counter expect reason key1.spki.der[,key2...]
 * paths relative to VECTORS_DIR), and for every vector:
 *   - verifies the device image with the one-shot call (SPKI keys);
 *   - streams it through init/update/finish in chunks of every size in CHUNKS (comma-separated;
 *     0 = the whole image in one update), the way a bootloader reads flash;
 *   - streams it once more with the same keys given RAW (the public key without its SPKI
 *     wrapper, from keys/NAME.pub.raw when present);
 * and checks each verdict against `expect` and each status against `reason`. With -m it also
 * prints, for every accepted vector, the stack high-water mark of the one-shot and of the
 * streaming path (painted stack) and the time they took (host: ns; Cortex-M under QEMU
 * -icount: instructions, from the 25 MHz APB timer), as
 *   measure <TAB> name <TAB> oneshot|stream <TAB> stack_bytes <TAB> time <TAB> unit
 * Then the API-misuse checks (NULL pointers, bad state, moved context, too much data). Ends with
 * "harness: N passed, N failed" and exits 0 only when nothing failed.
 *
 * Portable C99 + stdio: the same file runs on the host (gcc) and on an emulated Cortex-M4
 * (arm-none-eabi-gcc, newlib semihosting stdio; see cortex-m/).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwseal_verify.h"

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

static int passed, failed;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (cond) {                                                                               \
            passed++;                                                                             \
        } else {                                                                                  \
            failed++;                                                                             \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                           \
            printf(__VA_ARGS__);                                                                  \
            printf("\n");                                                                         \
        }                                                                                         \
    } while (0)

/* ---- time -------------------------------------------------------------------------------- */
#ifdef FWSEAL_HARNESS_CORTEX_M
/* CMSDK APB timer 0 of the MPS2 boards: 25 MHz, counts down. Under QEMU -icount shift=0 one
 * instruction is 1 ns of virtual time, so one tick is 40 instructions. */
#define TIMER0 ((volatile uint32_t *)0x40000000u)
static void clock_start(void) {
    TIMER0[0] = 0;
    TIMER0[2] = 0xFFFFFFFFu; /* RELOAD */
    TIMER0[1] = 0xFFFFFFFFu; /* VALUE */
    TIMER0[0] = 1;           /* enable */
}
static uint64_t now(void) { return (uint64_t)(0xFFFFFFFFu - TIMER0[1]) * 40u; }
static const char *time_unit = "instructions";
/* Check the timer-to-instructions conversion on a loop of known length (2 instructions per
 * iteration: subs, bne). */
static void calibrate(void) {
    uint32_t n = 1000000;
    uint64_t t0 = now();
    __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
    uint64_t t1 = now();
    printf("calibration: a 2,000,000-instruction loop measured %llu instructions\n",
           (unsigned long long)(t1 - t0));
}
#else
static void calibrate(void) {}
#include <time.h>
static void clock_start(void) {}
static uint64_t now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static const char *time_unit = "ns";
#endif

/* ---- stack high-water mark --------------------------------------------------------------- */
/* Paint PAINT_BYTES of the free stack below the caller with a pattern, call, then find the
 * lowest overwritten word: the callee's stack use (accurate to a few words). */
#ifndef PAINT_BYTES
#define PAINT_BYTES (1024u * 1024u)
#endif
#define PAINT_WORD 0xA5C3F00Du
static uintptr_t paint_lo, paint_hi;

static NOINLINE void paint_stack(void) {
    volatile uint32_t area[PAINT_BYTES / 4];
    for (size_t i = 0; i < PAINT_BYTES / 4; i++) area[i] = PAINT_WORD;
    paint_lo = (uintptr_t)&area[0];
    paint_hi = (uintptr_t)&area[PAINT_BYTES / 4];
}

static size_t stack_used(void) {
    const volatile uint32_t *p = (const volatile uint32_t *)paint_lo;
    const volatile uint32_t *end = (const volatile uint32_t *)paint_hi;
    while (p < end && *p == PAINT_WORD) p++;
    if (p == (const volatile uint32_t *)paint_lo) {
        printf("FAIL stack use exceeds the %u painted bytes (raise PAINT_BYTES)\n", PAINT_BYTES);
        failed++;
    }
    return (size_t)(paint_hi - (uintptr_t)p);
}

/* ---- files ------------------------------------------------------------------------------- */
static uint8_t *read_file(const char *dir, const char *rel, size_t *len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        if (n == cap) {
            uint8_t *b2 = realloc(buf, cap * 2);
            if (!b2) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b2;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0) break;
        n += r;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* ---- manifest ---------------------------------------------------------------------------- */
struct vector {
    char *name, *format, *image, *require, *expect, *reason, *keys;
    uint32_t min_counter;
};

static int split_tabs(char *line, char **f, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *t = strchr(p, '\t');
        if (!t) break;
        *t = 0;
        p = t + 1;
    }
    char *nl = strpbrk(f[n - 1], "\r\n");
    if (nl) *nl = 0;
    return n;
}

static int parse_format(const char *s, uint32_t *out) {
    static const struct { const char *n; uint32_t v; } t[] = {
        {"raw", FWSEAL_VERIFY_FORMAT_RAW},   {"mcuboot", FWSEAL_VERIFY_FORMAT_MCUBOOT},
        {"hex", FWSEAL_VERIFY_FORMAT_HEX},   {"dfu", FWSEAL_VERIFY_FORMAT_DFU},
        {"dfuse", FWSEAL_VERIFY_FORMAT_DFUSE},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(s, t[i].n)) return *out = t[i].v, 1;
    return 0;
}

static int parse_require(const char *s, uint32_t *out) {
    if (!strcmp(s, "both")) return *out = FWSEAL_VERIFY_REQUIRE_BOTH, 1;
    if (!strcmp(s, "pq")) return *out = FWSEAL_VERIFY_REQUIRE_PQ, 1;
    if (!strcmp(s, "classical")) return *out = FWSEAL_VERIFY_REQUIRE_CLASSICAL, 1;
    return 0;
}

/* The raw form of an SPKI key: the algorithm from the (spec-listed) SPKI prefix, the key from
 * keys/NAME.pub.raw when the kit has it. Only the fixed prefixes of formats/signature-block.md
 * and RFC 5480 are recognised: this is a table lookup for the test, not a DER parser. */
static const struct {
    uint32_t alg;
    size_t prefix_len, spki_len;
    size_t oid_off;   /* offset of the OID's last byte in the PQ prefixes (0: ECDSA) */
    uint8_t oid_tail; /* its value */
} raw_table[] = {
    {FWSEAL_VERIFY_ALG_ECDSA_P256_SHA256, 26, 91, 0, 0},
    {FWSEAL_VERIFY_ALG_ECDSA_P384_SHA384, 23, 120, 0, 0},
    {FWSEAL_VERIFY_ALG_ML_DSA_44, 22, 22 + 1312, 16, 0x11},
    {FWSEAL_VERIFY_ALG_ML_DSA_65, 22, 22 + 1952, 16, 0x12},
    {FWSEAL_VERIFY_ALG_ML_DSA_87, 22, 22 + 2592, 16, 0x13},
    {FWSEAL_VERIFY_ALG_SLH_DSA_SHA2_128S, 18, 18 + 32, 14, 0x14},
    {FWSEAL_VERIFY_ALG_SLH_DSA_SHA2_128F, 18, 18 + 32, 14, 0x15},
    {FWSEAL_VERIFY_ALG_SLH_DSA_SHA2_192S, 18, 18 + 48, 14, 0x16},
    {FWSEAL_VERIFY_ALG_SLH_DSA_SHA2_256S, 18, 18 + 64, 14, 0x18},
};

static int raw_form(const uint8_t *spki, size_t len, uint32_t *alg, size_t *off) {
    for (size_t i = 0; i < sizeof raw_table / sizeof raw_table[0]; i++) {
        if (len != raw_table[i].spki_len) continue;
        if (raw_table[i].oid_off && spki[raw_table[i].oid_off] != raw_table[i].oid_tail) continue;
        *alg = raw_table[i].alg;
        *off = raw_table[i].prefix_len;
        return 1;
    }
    return 0;
}

struct keyset {
    fwseal_verify_key spki[FWSEAL_VERIFY_MAX_KEYS], raw[FWSEAL_VERIFY_MAX_KEYS];
    uint8_t *bufs[2 * FWSEAL_VERIFY_MAX_KEYS];
    size_t n, nbufs;
    int raw_ok;
};

static void keyset_free(struct keyset *k) {
    for (size_t i = 0; i < k->nbufs; i++) free(k->bufs[i]);
}

static int load_keys(const char *dir, char *list, struct keyset *k) {
    memset(k, 0, sizeof *k);
    k->raw_ok = 1;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (k->n == FWSEAL_VERIFY_MAX_KEYS) return 0;
        size_t len;
        uint8_t *der = read_file(dir, tok, &len);
        if (!der) {
            printf("FAIL cannot read key %s/%s\n", dir, tok);
            return 0;
        }
        k->bufs[k->nbufs++] = der;
        k->spki[k->n] = (fwseal_verify_key){FWSEAL_VERIFY_KEY_SPKI, 0, der, len};
        uint32_t alg;
        size_t off;
        if (!raw_form(der, len, &alg, &off)) {
            k->raw_ok = 0;
        } else {
            const uint8_t *raw = der + off;
            size_t raw_len = len - off;
            char rel[512];
            snprintf(rel, sizeof rel, "%s", tok);
            char *dot = strstr(rel, ".spki.der");
            if (dot) {
                strcpy(dot, ".pub.raw");
                size_t rlen;
                uint8_t *r = read_file(dir, rel, &rlen);
                if (r) {
                    k->bufs[k->nbufs++] = r;
                    CHECK(rlen == raw_len && !memcmp(r, raw, rlen),
                          "%s is not the key inside %s", rel, tok);
                    raw = r;
                    raw_len = rlen;
                }
            }
            k->raw[k->n] = (fwseal_verify_key){FWSEAL_VERIFY_KEY_RAW, alg, raw, raw_len};
        }
        k->n++;
    }
    return 1;
}

/* ---- one vector -------------------------------------------------------------------------- */
static fwseal_verify_ctx ctx; /* static: the context lives in .bss, as in a bootloader */

static NOINLINE fwseal_verify_status stream(uint32_t format, const uint8_t *img, size_t len,
                                            const fwseal_verify_key *keys, size_t n,
                                            const fwseal_verify_policy *pol, size_t chunk,
                                            fwseal_verify_details *d) {
    fwseal_verify_status st = fwseal_verify_init(&ctx, format, len, keys, n, pol);
    if (st != FWSEAL_VERIFY_OK) return st;
    for (;;) {
        uint64_t off, want;
        st = fwseal_verify_next_read(&ctx, &off, &want);
        if (st != FWSEAL_VERIFY_OK || want == 0) break;
        if (off > len || want > len - off) {
            printf("FAIL verifier asked for [%llu, +%llu) of a %lu-byte image\n",
                   (unsigned long long)off, (unsigned long long)want, (unsigned long)len);
            failed++;
            break;
        }
        size_t c = chunk ? chunk : (size_t)want;
        for (uint64_t done = 0; done < want && st == FWSEAL_VERIFY_OK; done += c) {
            if (c > want - done) c = (size_t)(want - done);
            /* a bootloader reads c bytes of flash at off + done into a buffer here */
            st = fwseal_verify_update(&ctx, img + off + done, c);
        }
        if (st != FWSEAL_VERIFY_OK) break;
    }
    fwseal_verify_status fin = fwseal_verify_finish(&ctx, d);
    if (st != FWSEAL_VERIFY_OK && fin != st) {
        printf("FAIL finish after error %s returned %s\n", fwseal_verify_reason_str(st),
               fwseal_verify_reason_str(fin));
        failed++;
    }
    return fin;
}

static const char *verdict(fwseal_verify_status st) { return st == FWSEAL_VERIFY_OK ? "accept" : "reject"; }

static void check_result(const struct vector *v, const char *mode, size_t chunk,
                         fwseal_verify_status st) {
    const char *got = fwseal_verify_reason_str(st);
    CHECK(!strcmp(verdict(st), v->expect) && !strcmp(got, v->reason),
          "%s [%s chunk %lu]: got %s (%s), expected %s (%s)", v->name, mode,
          (unsigned long)chunk, verdict(st), got, v->expect, v->reason);
}

static void check_details(const struct vector *v, const fwseal_verify_policy *pol,
                          const fwseal_verify_details *d) {
    uint32_t need = pol->require == FWSEAL_VERIFY_REQUIRE_BOTH
                        ? (FWSEAL_VERIFY_HALF_CLASSICAL | FWSEAL_VERIFY_HALF_PQ)
                    : pol->require == FWSEAL_VERIFY_REQUIRE_PQ ? FWSEAL_VERIFY_HALF_PQ
                                                               : FWSEAL_VERIFY_HALF_CLASSICAL;
    CHECK((d->halves & need) == need, "%s: details.halves %#x lack the required %#x", v->name,
          (unsigned)d->halves, (unsigned)need);
    CHECK(d->security_counter >= pol->min_security_counter,
          "%s: accepted with security counter %u < %u", v->name, (unsigned)d->security_counter,
          (unsigned)pol->min_security_counter);
    static const uint8_t zero[32];
    if (d->halves & FWSEAL_VERIFY_HALF_PQ)
        CHECK(d->pq_alg != 0 && memcmp(d->pq_key_id, zero, 32) != 0,
              "%s: PQ half verified but no PQ alg / key id in details", v->name);
    if (d->halves & FWSEAL_VERIFY_HALF_CLASSICAL)
        CHECK(d->classical_alg != 0 && memcmp(d->classical_key_id, zero, 32) != 0,
              "%s: classical half verified but no alg / key id in details", v->name);
}

#ifndef REPEAT
#define REPEAT 5
#endif
static size_t chunks[16];
static size_t n_chunks;
static int measure;
static size_t max_stack_oneshot, max_stack_stream;

static void run_vector(const char *dir, struct vector *v) {
    uint32_t format, require;
    if (!parse_format(v->format, &format) || !parse_require(v->require, &require)) {
        CHECK(0, "%s: unknown format %s or require %s in manifest", v->name, v->format,
              v->require);
        return;
    }
    size_t len;
    uint8_t *img = read_file(dir, v->image, &len);
    if (!img) {
        CHECK(0, "%s: cannot read %s/%s", v->name, dir, v->image);
        return;
    }
    struct keyset ks;
    if (!load_keys(dir, v->keys, &ks)) {
        CHECK(0, "%s: cannot load keys", v->name);
        free(img);
        keyset_free(&ks);
        return;
    }
    fwseal_verify_policy pol = {require, v->min_counter};
    fwseal_verify_details d;
    int accept = !strcmp(v->expect, "accept");

    paint_stack();
    uint64_t t0 = now();
    fwseal_verify_status st = fwseal_verify_image(format, img, len, ks.spki, ks.n, &pol, &d);
    uint64_t t1 = now();
    size_t su = stack_used();
    for (int rep = 1; measure && rep < REPEAT && st == FWSEAL_VERIFY_OK; rep++) {
        /* the host is shared: report the fastest of REPEAT runs */
        uint64_t a = now();
        fwseal_verify_status again = fwseal_verify_image(format, img, len, ks.spki, ks.n, &pol, &d);
        uint64_t b = now();
        CHECK(again == st, "%s: one-shot verdict changed on repetition", v->name);
        if (b - a < t1 - t0) t0 = a, t1 = b;
    }
    check_result(v, "one-shot", len, st);
    if (st == FWSEAL_VERIFY_OK) check_details(v, &pol, &d);
    if (accept && st == FWSEAL_VERIFY_OK) {
        if (su > max_stack_oneshot) max_stack_oneshot = su;
        if (measure)
            printf("measure\t%s\toneshot\t%lu\t%llu\t%s\n", v->name, (unsigned long)su,
                   (unsigned long long)(t1 - t0), time_unit);
    }

    for (size_t i = 0; i < n_chunks; i++) {
        paint_stack();
        t0 = now();
        st = stream(format, img, len, ks.spki, ks.n, &pol, chunks[i], &d);
        t1 = now();
        su = stack_used();
        check_result(v, "stream", chunks[i], st);
        if (st == FWSEAL_VERIFY_OK) check_details(v, &pol, &d);
        if (accept && st == FWSEAL_VERIFY_OK) {
            if (su > max_stack_stream) max_stack_stream = su;
            if (measure && i == n_chunks - 1)
                printf("measure\t%s\tstream\t%lu\t%llu\t%s\n", v->name, (unsigned long)su,
                       (unsigned long long)(t1 - t0), time_unit);
        }
    }
    if (ks.raw_ok) {
        st = stream(format, img, len, ks.raw, ks.n, &pol, 509, &d);
        check_result(v, "stream raw keys", 509, st);
    } else {
        CHECK(0, "%s: a key is not one of the SPKI forms the harness knows", v->name);
    }
    free(img);
    keyset_free(&ks);
}

/* ---- API misuse -------------------------------------------------------------------------- */
static void api_checks(void) {
    static const uint8_t junk[64] = {1, 2, 3};
    fwseal_verify_policy pol = {FWSEAL_VERIFY_REQUIRE_BOTH, 0};
    fwseal_verify_key key = {FWSEAL_VERIFY_KEY_SPKI, 0, junk, sizeof junk};
    fwseal_verify_details d;

    CHECK(fwseal_verify_ctx_size() == sizeof(fwseal_verify_ctx) &&
              sizeof(fwseal_verify_ctx) == FWSEAL_VERIFY_CTX_SIZE,
          "context size: library %lu, header %lu", (unsigned long)fwseal_verify_ctx_size(),
          (unsigned long)sizeof(fwseal_verify_ctx));
    CHECK(!strcmp(fwseal_verify_reason_str(FWSEAL_VERIFY_OK), "ok"), "reason ok");
    CHECK(!strcmp(fwseal_verify_reason_str(FWSEAL_VERIFY_E_PQ_TLV_NOT_LAST), "pq-tlv-not-last"),
          "reason pq-tlv-not-last");
    CHECK(!strcmp(fwseal_verify_reason_str(-7), "unknown"), "reason of a non-status");
    CHECK(!strcmp(fwseal_verify_reason_str(FWSEAL_VERIFY_E_BAD_STATE), "bad-state"),
          "reason bad-state");

    CHECK(fwseal_verify_init(NULL, FWSEAL_VERIFY_FORMAT_RAW, 10, &key, 1, &pol) ==
              FWSEAL_VERIFY_E_NULL_ARGUMENT, "init(NULL ctx)");
    CHECK(fwseal_verify_init(&ctx, FWSEAL_VERIFY_FORMAT_RAW, 10, NULL, 1, &pol) ==
              FWSEAL_VERIFY_E_NULL_ARGUMENT, "init(NULL keys)");
    CHECK(fwseal_verify_init(&ctx, FWSEAL_VERIFY_FORMAT_RAW, 10, &key, 1, NULL) ==
              FWSEAL_VERIFY_E_NULL_ARGUMENT, "init(NULL policy)");
    CHECK(fwseal_verify_init(&ctx, 99, 10, &key, 1, &pol) == FWSEAL_VERIFY_E_INVALID_ARGUMENT,
          "init(unknown format)");
    fwseal_verify_policy bad = {7, 0};
    CHECK(fwseal_verify_init(&ctx, FWSEAL_VERIFY_FORMAT_RAW, 10, &key, 1, &bad) ==
              FWSEAL_VERIFY_E_INVALID_ARGUMENT, "init(unknown require)");
    CHECK(fwseal_verify_init(&ctx, FWSEAL_VERIFY_FORMAT_RAW, 10, &key, 1, &pol) ==
              FWSEAL_VERIFY_E_INVALID_KEY, "init(key that is not an SPKI)");
    CHECK(fwseal_verify_update(&ctx, junk, 1) == FWSEAL_VERIFY_E_BAD_STATE,
          "update after a failed init");
    fwseal_verify_key many[FWSEAL_VERIFY_MAX_KEYS + 1];
    for (size_t i = 0; i <= FWSEAL_VERIFY_MAX_KEYS; i++) many[i] = key;
    CHECK(fwseal_verify_init(&ctx, FWSEAL_VERIFY_FORMAT_RAW, 10, many, FWSEAL_VERIFY_MAX_KEYS + 1,
                             &pol) == FWSEAL_VERIFY_E_INVALID_ARGUMENT, "init(too many keys)");
    fwseal_verify_key nul = {FWSEAL_VERIFY_KEY_RAW, FWSEAL_VERIFY_ALG_ML_DSA_65, NULL, 1952};
    CHECK(fwseal_verify_init(&ctx, FWSEAL_VERIFY_FORMAT_RAW, 10, &nul, 1, &pol) ==
              FWSEAL_VERIFY_E_NULL_ARGUMENT, "init(key with NULL data)");
    CHECK(fwseal_verify_image(FWSEAL_VERIFY_FORMAT_RAW, NULL, 10, &key, 1, &pol, &d) ==
              FWSEAL_VERIFY_E_NULL_ARGUMENT, "image(NULL image)");

    /* the pull protocol: bytes beyond the range next_read() named are api-misuse, the error
     * sticks, finish repeats it once, then the context is finished */
    uint64_t off = 0, want = 0;
    CHECK(fwseal_verify_init(&ctx, FWSEAL_VERIFY_FORMAT_RAW, sizeof junk, NULL, 0, &pol) ==
              FWSEAL_VERIFY_OK, "init with no keys");
    CHECK(fwseal_verify_next_read(&ctx, NULL, &want) == FWSEAL_VERIFY_E_NULL_ARGUMENT,
          "next_read(NULL offset)");
    CHECK(fwseal_verify_next_read(&ctx, &off, &want) == FWSEAL_VERIFY_OK &&
              off == sizeof junk - 16 && want == 16,
          "raw: the footer is read first (got [%llu, +%llu))", (unsigned long long)off,
          (unsigned long long)want);
    CHECK(fwseal_verify_update(&ctx, NULL, 0) == FWSEAL_VERIFY_OK, "update(NULL, 0)");
    CHECK(fwseal_verify_update(&ctx, NULL, 1) == FWSEAL_VERIFY_E_NULL_ARGUMENT,
          "update(NULL, 1)");
    CHECK(fwseal_verify_update(&ctx, junk, 17) == FWSEAL_VERIFY_E_API_MISUSE,
          "update past the requested range");
    CHECK(fwseal_verify_update(&ctx, junk, 1) == FWSEAL_VERIFY_E_API_MISUSE,
          "the error sticks");
    CHECK(fwseal_verify_next_read(&ctx, &off, &want) == FWSEAL_VERIFY_E_API_MISUSE && want == 0,
          "next_read after an error");
    CHECK(fwseal_verify_finish(&ctx, &d) == FWSEAL_VERIFY_E_API_MISUSE,
          "finish repeats the update error");
    CHECK(fwseal_verify_finish(&ctx, &d) == FWSEAL_VERIFY_E_BAD_STATE, "finish twice");
    CHECK(fwseal_verify_update(&ctx, junk, 1) == FWSEAL_VERIFY_E_BAD_STATE,
          "update after finish");

    CHECK(fwseal_verify_init(&ctx, FWSEAL_VERIFY_FORMAT_RAW, sizeof junk, NULL, 0, &pol) ==
              FWSEAL_VERIFY_OK, "init");
    CHECK(fwseal_verify_finish(&ctx, &d) == FWSEAL_VERIFY_E_API_MISUSE,
          "finish before the reads are done");

    /* no footer: the streaming verdict is no-signature-block, like the one-shot's */
    CHECK(fwseal_verify_init(&ctx, FWSEAL_VERIFY_FORMAT_RAW, sizeof junk, NULL, 0, &pol) ==
              FWSEAL_VERIFY_OK, "init");
    CHECK(fwseal_verify_next_read(&ctx, &off, &want) == FWSEAL_VERIFY_OK && want == 16,
          "next_read");
    fwseal_verify_status st = fwseal_verify_update(&ctx, junk + off, 16);
    CHECK(st == FWSEAL_VERIFY_OK || st == FWSEAL_VERIFY_E_NO_SIGNATURE_BLOCK, "footer update");
    CHECK(fwseal_verify_finish(&ctx, &d) == FWSEAL_VERIFY_E_NO_SIGNATURE_BLOCK,
          "stream of an image without a block");

    /* a context copied elsewhere is refused, the original still works */
    static fwseal_verify_ctx copy;
    CHECK(fwseal_verify_init(&ctx, FWSEAL_VERIFY_FORMAT_RAW, sizeof junk, NULL, 0, &pol) ==
              FWSEAL_VERIFY_OK, "init");
    memcpy(&copy, &ctx, sizeof ctx);
    CHECK(fwseal_verify_update(&copy, junk, 1) == FWSEAL_VERIFY_E_BAD_STATE,
          "update on a moved context");
    CHECK(fwseal_verify_update(&ctx, junk, 1) == FWSEAL_VERIFY_OK, "original after copy");
    CHECK(fwseal_verify_finish(&ctx, NULL) == FWSEAL_VERIFY_E_API_MISUSE, "finish early");

    /* never-initialised storage is refused (zeroed here; garbage is caller UB by contract) */
    static fwseal_verify_ctx fresh;
    CHECK(fwseal_verify_update(&fresh, junk, 1) == FWSEAL_VERIFY_E_BAD_STATE,
          "update on a never-initialised context");
    CHECK(fwseal_verify_finish(&fresh, NULL) == FWSEAL_VERIFY_E_BAD_STATE,
          "finish on a never-initialised context");

    /* a misaligned context */
    static union { uint64_t a; uint8_t b[sizeof(fwseal_verify_ctx) + 8]; } spare;
    fwseal_verify_ctx *mis = (fwseal_verify_ctx *)(void *)(spare.b + 4);
    CHECK(fwseal_verify_init(mis, FWSEAL_VERIFY_FORMAT_RAW, 4, NULL, 0, &pol) ==
              FWSEAL_VERIFY_E_INVALID_ARGUMENT, "init on a misaligned context");

    CHECK(fwseal_verify_image(FWSEAL_VERIFY_FORMAT_RAW, junk, sizeof junk, NULL, 0, &pol, &d) ==
              FWSEAL_VERIFY_E_NO_SIGNATURE_BLOCK, "raw image without a block");
    static const uint8_t zero32[32];
    CHECK(d.halves == 0 && !memcmp(d.pq_key_id, zero32, 32), "details zeroed on reject");
}

/* ---- main -------------------------------------------------------------------------------- */
static int parse_chunks(char *s) {
    n_chunks = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (n_chunks == sizeof chunks / sizeof chunks[0]) return 0;
        char *end;
        errno = 0;
        unsigned long v = strtoul(tok, &end, 10);
        if (*end || errno) return 0;
        chunks[n_chunks++] = (size_t)v;
    }
    return n_chunks > 0;
}

int main(int argc, char **argv) {
    char default_chunks[] = "1,7,64,509,4096,0";
    const char *dir = NULL;
    if (!parse_chunks(default_chunks)) return 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc) {
            if (!parse_chunks(argv[++i])) {
                fprintf(stderr, "bad -c list\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "-m")) {
            measure = 1;
        } else {
            dir = argv[i];
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: harness [-c CHUNKS] [-m] VECTORS_DIR\n");
        return 2;
    }
    clock_start();
    calibrate();
    printf("fwseal-verify C ABI %d, context %lu bytes\n", FWSEAL_VERIFY_ABI_VERSION,
           (unsigned long)sizeof(fwseal_verify_ctx));
    api_checks();

    char path[1024];
    snprintf(path, sizeof path, "%s/manifest.tsv", dir);
    FILE *m = fopen(path, "r");
    if (!m) {
        printf("FAIL cannot open %s\n", path);
        return 1;
    }
    static char line[8192];
    size_t vectors = 0;
    while (fgets(line, sizeof line, m)) {
        if (line[0] == '#' || line[0] == '\n' || line[0] == '\r') continue;
        char *f[9];
        int n = split_tabs(line, f, 9);
        if (n != 8) {
            CHECK(0, "manifest line with %d fields (want 8): %s", n, f[0]);
            continue;
        }
        struct vector v = {f[0], f[1], f[2], f[3], f[5], f[6], f[7], 0};
        v.min_counter = (uint32_t)strtoul(f[4], NULL, 10);
        run_vector(dir, &v);
        vectors++;
    }
    fclose(m);
    CHECK(vectors > 0, "manifest %s has no vectors", path);
    printf("vectors: %lu; max stack: one-shot %lu, streaming %lu bytes (incl. the harness's "
           "call frame)\n",
           (unsigned long)vectors, (unsigned long)max_stack_oneshot,
           (unsigned long)max_stack_stream);
    printf("harness: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
