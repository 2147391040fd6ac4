#!/usr/bin/env python3
"""Independent verifier for fwseal-signed MCUboot images, written from formats/mcuboot.md
(layout, parser rules, "Unknown and repeated TLVs", the errata and "Rejection reasons") and
formats/signature-block.md (key ids, algorithm ids, signature lengths). Shares no code with fwseal.

Checks the protected FWSEAL_PQ_SIG TLV (0x46a0: alg u16 || key id || signature, pure ML-DSA /
SLH-DSA over "fwseal/mcuboot/v1" 00 || digest id || H_pq(image up to the PQ TLV header)), every
image hash TLV, the ECDSA_SIG TLVs (key chosen by the last KEYHASH / PUBKEY), SEC_CNT and the
policy.

  judge(image, keys, require="both", min_counter=0) -> reason code; keys: sigblock.Key list
  mcuboot_pq.py IMAGE --key a.spki.der [--key ...] [--require both|pq|classical] [--min-counter N]
"""
import argparse
import hashlib
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from sigblock import MATCHED, PQ_LEN, Key, Unsupported

PQ_TLV, SEC_CNT, KEYHASH, PUBKEY, ECDSA_SIG = 0x46A0, 0x50, 0x01, 0x02, 0x22
HASHES = {0x10: "sha256", 0x11: "sha384", 0x12: "sha512"}
HASH_LEN = {"sha256": 32, "sha384": 48, "sha512": 64}
DIGEST_ID = {"sha256": 1, "sha384": 2, "sha512": 3}


class Reject(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def entries(img, start, end):
    out, i = [], start
    while i < end:
        if i + 4 > end:
            raise Reject("bad-length")
        t, n = struct.unpack_from("<HH", img, i)
        if i + 4 + n > end:
            raise Reject("bad-length")
        out.append((t, i, img[i + 4:i + 4 + n]))
        i += 4 + n
    return out


def parse(img):
    if len(img) < 32:
        raise Reject("truncated")
    magic, _load, hdr, prot, size, flags = struct.unpack_from("<IIHHII", img, 0)
    if magic != 0x96F3B83D:
        raise Reject("bad-magic")
    if hdr < 32:
        raise Reject("malformed")
    if 1 <= prot <= 3:
        raise Reject("bad-length")
    b = hdr + size
    if len(img) < hdr or len(img) < b:
        raise Reject("truncated")
    protected = []
    if prot:
        if len(img) < b + prot:
            raise Reject("truncated")
        m, tot = struct.unpack_from("<HH", img, b)
        if m != 0x6908:
            raise Reject("bad-magic")
        if tot != prot:
            raise Reject("bad-length")
        protected = entries(img, b + 4, b + tot)
    elif len(img) >= b + 2 and struct.unpack_from("<H", img, b)[0] == 0x6908:
        raise Reject("bad-length")
    u = b + prot
    if u == len(img):
        raise Reject("no-signature-block")
    if len(img) < u + 4:
        raise Reject("truncated")
    m, tot = struct.unpack_from("<HH", img, u)
    if m != 0x6907:
        raise Reject("bad-magic")
    if tot < 4:
        raise Reject("bad-length")
    if u + tot > len(img):
        raise Reject("truncated")
    unprotected = entries(img, u + 4, u + tot)
    if u + tot != len(img):
        raise Reject("malformed")
    return flags, b + prot, protected, unprotected


def judge(img, keys, require="both", min_counter=0):
    try:
        return _judge(img, keys, require, min_counter)
    except Reject as e:
        return e.reason


def _judge(img, keys, require, min_counter):
    flags, hashed_end, protected, unprotected = parse(img)
    counters = [v for t, _, v in protected if t == SEC_CNT]
    if any(len(v) != 4 for v in counters):
        raise Reject("malformed")
    if len(counters) > 1:
        raise Reject("duplicate-tlv")
    pq = None
    for i, (t, off, v) in enumerate(protected):
        if t != PQ_TLV:
            continue
        if i + 1 != len(protected):
            raise Reject("pq-tlv-not-last")
        if len(v) < 34:
            raise Reject("malformed")
        alg = struct.unpack_from("<H", v, 0)[0]
        if alg < 0x0100:
            raise Reject("malformed")
        if alg in PQ_LEN and len(v) - 34 != PQ_LEN[alg]:
            raise Reject("malformed")
        pq = (alg, v[2:34], v[34:], off)
    if flags & 0x0C:
        raise Reject("unsupported-algorithm")
    hashed = img[:hashed_end]
    hash_tlvs = [(t, v) for t, _, v in unprotected if t in HASHES]
    for t, v in hash_tlvs:
        if hashlib.new(HASHES[t], hashed).digest() != v:
            raise Reject("digest-mismatch")
    if not hash_tlvs:
        raise Reject("digest-missing")
    counter = struct.unpack("<I", counters[0])[0] if counters else 0
    if counter < min_counter:
        raise Reject("security-counter-too-low")
    have = set()
    if pq is not None:
        alg, kid, sig, off = pq
        if alg not in MATCHED:
            raise Reject("unsupported-algorithm")
        key = next((k for k in keys if k.key_id == kid and k.matches(alg)), None)
        if key is None:
            raise Reject("untrusted-key")
        h = MATCHED[alg]
        msg = b"fwseal/mcuboot/v1\x00" + bytes([DIGEST_ID[h]]) + hashlib.new(h, img[:off]).digest()
        if not key.verify(alg, msg, sig):
            raise Reject("pq-signature-invalid")
        have.add("pq")
    first_hash = HASHES[hash_tlvs[0][0]]
    image_hash = hashlib.new(first_hash, hashed).digest()
    selector = None
    for t, _, v in unprotected:
        if t in (KEYHASH, PUBKEY):
            selector = (t, v)
    for t, _, v in unprotected:
        if t in (0x20, 0x23):
            raise Reject("unsupported-algorithm")
        if t != ECDSA_SIG:
            continue
        alg = {"sha256": 0x0001, "sha384": 0x0002}.get(first_hash)
        if alg is None:
            raise Reject("classical-signature-invalid")
        cands = [k for k in keys if k.alg == alg]
        if selector is not None:
            st, sv = selector
            cands = [k for k in cands if (k.spki == sv if st == PUBKEY else hashlib.new(first_hash, k.spki).digest() == sv)]
            if not cands:
                raise Reject("untrusted-key")
        # the signature is the DER SEQUENCE (short form); trailing padding is ignored
        sig = v[:2 + v[1]] if len(v) >= 2 and v[0] == 0x30 and v[1] < 0x80 else v
        h = hashes.SHA256() if alg == 0x0001 else hashes.SHA384()
        ok = False
        for k in cands:
            try:
                k.pub.verify(sig, image_hash, ec.ECDSA(utils.Prehashed(h)))
                ok = True
                break
            except Exception:  # InvalidSignature, or not DER
                pass
        if not ok:
            raise Reject("untrusted-key" if not cands else "classical-signature-invalid")
        have.add("classical")
    if require in ("both", "pq") and "pq" not in have:
        return "pq-signature-missing"
    if require in ("both", "classical") and "classical" not in have:
        return "classical-signature-missing"
    return "ok"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image")
    ap.add_argument("--key", action="append", required=True, help="SPKI DER")
    ap.add_argument("--require", default="both", choices=["both", "pq", "classical"])
    ap.add_argument("--min-counter", type=int, default=0)
    a = ap.parse_args()
    keys = [Key(open(p, "rb").read()) for p in a.key]
    try:
        r = judge(open(a.image, "rb").read(), keys, a.require, a.min_counter)
    except Unsupported as e:
        print("SKIP: %s" % e)
        return 2
    print("OK" if r == "ok" else "FAIL: %s" % r)
    return 0 if r == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
