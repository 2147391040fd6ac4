#!/usr/bin/env python3
"""Independent verifier for fwseal-signed Intel HEX files.

Written from formats/hex.md and formats/signature-block.md only (it shares no code with fwseal):
parse the HEX file into memory, find the fwseal signature block whose footer ends at the highest
address, check its digests against the memory image (gaps filled with the fill byte), and verify
the ECDSA P-256 (DER, SHA-256) and ML-DSA-65 (pure, empty context) signatures over
    b"fwseal/sigblock/v1/ihex\\0" || protected area.

usage: hex_verify.py FILE.hex --ecdsa-p256 EC.pem --mldsa65 PQ.pem [--fill 0xFF] [--product P]
Exit status 0 and "OK" when every check passes; 1 and a reason otherwise.
"""
import argparse
import hashlib
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa

MAX_SPAN = 256 << 20
DIGESTS = {1: ("sha256", 32), 2: ("sha384", 48), 3: ("sha512", 64)}
ALG_ECDSA_P256, ALG_MLDSA65 = 0x0001, 0x0102
FORMAT_IHEX = 3


class Fail(Exception):
    pass


def parse_hex(text):
    """Return {address: byte}-style memory as a sorted list of (start, bytearray) runs."""
    mem = {}
    base, segment = 0, False
    eof = False
    for no, raw in enumerate(text.split(b"\n"), 1):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line:
            continue
        if eof:
            raise Fail(f"line {no}: data after EOF")
        if not line.startswith(b":"):
            raise Fail(f"line {no}: no ':'")
        try:
            rec = bytes.fromhex(line[1:].decode("ascii"))
        except ValueError:
            raise Fail(f"line {no}: bad hex")
        if len(rec) < 5 or len(rec) != rec[0] + 5:
            raise Fail(f"line {no}: bad byte count")
        if sum(rec) & 0xFF:
            raise Fail(f"line {no}: bad checksum")
        n, off, typ, data = rec[0], (rec[1] << 8) | rec[2], rec[3], rec[4:-1]
        if typ == 0:
            for i, b in enumerate(data):
                if segment:
                    a = base + ((off + i) & 0xFFFF)
                else:
                    a = base + off + i
                if a >= 1 << 32:
                    raise Fail(f"line {no}: address past 4 GiB")
                if a in mem:
                    raise Fail(f"line {no}: overlapping data at {a:#x}")
                mem[a] = b
        elif typ == 1:
            eof = True
        elif typ == 2:
            base, segment = ((data[0] << 8) | data[1]) << 4, True
        elif typ == 4:
            base, segment = ((data[0] << 8) | data[1]) << 16, False
        elif typ in (3, 5):
            pass
        else:
            raise Fail(f"line {no}: unknown record type {typ:#x}")
    if not eof:
        raise Fail("missing EOF record")
    runs = []
    for a in sorted(mem):
        if runs and runs[-1][0] + len(runs[-1][1]) == a:
            runs[-1][1].append(mem[a])
        else:
            runs.append((a, bytearray([mem[a]])))
    return runs


def tlvs(area):
    i, out = 0, []
    while i < len(area):
        if i + 8 > len(area):
            raise Fail("truncated TLV")
        t, r, l = struct.unpack_from("<HHI", area, i)
        if r != 0 or i + 8 + l > len(area):
            raise Fail("bad TLV")
        out.append((t, bytes(area[i + 8 : i + 8 + l])))
        i += 8 + l
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--ecdsa-p256", required=True)
    ap.add_argument("--mldsa65", required=True)
    ap.add_argument("--fill", default="0xFF")
    ap.add_argument("--product")
    a = ap.parse_args()
    fill = int(a.fill, 0)

    runs = parse_hex(open(a.file, "rb").read())
    if not runs:
        raise Fail("empty memory image")
    top_start, top = runs[-1]
    # 1. The block: its 16-byte footer ends at the highest address.
    if len(top) < 32 or bytes(top[-8:]) != b"fwsealSB":
        raise Fail("no fwseal signature block at the top of memory")
    total, reserved = struct.unpack_from("<II", top, len(top) - 16)
    if reserved != 0 or total < 32 or total > len(top):
        raise Fail("bad footer")
    block = bytes(top[len(top) - total :])
    block_addr = top_start + len(top) - total
    magic, version, hlen, plen, ulen = struct.unpack_from("<4sHHII", block, 0)
    if magic != b"FWSB" or version != 1 or hlen != 16 or 16 + plen + ulen + 16 != total:
        raise Fail("bad block header")
    protected = block[16 : 16 + plen]
    unprotected = block[16 + plen : 16 + plen + ulen]

    # 2. The image = memory without the block.
    del top[len(top) - total :]
    if not top:
        runs.pop()
    if not runs:
        raise Fail("no image data below the block")
    lo, hi = runs[0][0], runs[-1][0] + len(runs[-1][1])
    if hi - lo > MAX_SPAN:
        raise Fail("span too large")

    fmt, digests, product, rng = None, {}, None, None
    for t, v in tlvs(protected):
        if t == 1:
            fmt = v[0]
        elif t == 2:
            digests[v[0]] = v[1:]
        elif t == 3:
            product = v.decode()
        elif t == 6:
            rng = struct.unpack("<QQ", v)
        elif t == 7:
            if len(v) != 1:
                raise Fail("FILL TLV must be 1 byte")
            fill = v[0]  # recorded and signed: it wins over --fill
        elif t not in (4, 5):
            raise Fail(f"unknown protected TLV {t:#x}")
    if fmt != FORMAT_IHEX:
        raise Fail(f"block format id {fmt} is not ihex (3)")
    if rng != (lo, hi - lo):
        raise Fail(f"IMAGE_RANGE {rng} != image {(lo, hi - lo)}")
    if a.product is not None and product != a.product:
        raise Fail(f"product {product!r} != {a.product!r}")
    if not digests:
        raise Fail("no DIGEST TLV")

    # 3. Digests over lowest..highest address, gaps = fill.
    hs = {i: hashlib.new(DIGESTS[i][0]) for i in digests if i in DIGESTS}
    if len(hs) != len(digests):
        raise Fail("unknown digest algorithm")
    at = lo
    for start, data in runs:
        gap = start - at
        while gap > 0:
            n = min(gap, 1 << 16)
            for h in hs.values():
                h.update(bytes([fill]) * n)
            gap -= n
        for h in hs.values():
            h.update(data)
        at = start + len(data)
    for i, h in hs.items():
        if h.digest() != digests[i]:
            raise Fail(f"{DIGESTS[i][0]} digest does not match the memory image")

    # 4. Signatures, matched to the given keys by key id = SHA-256(SPKI DER).
    message = b"fwseal/sigblock/v1/ihex\x00" + protected
    keys = {}
    for path in (a.ecdsa_p256, a.mldsa65):
        pk = serialization.load_pem_public_key(open(path, "rb").read())
        spki = pk.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        keys[hashlib.sha256(spki).digest()] = pk
    verified = set()
    for t, v in tlvs(unprotected):
        if t != 0x0101:
            raise Fail(f"unknown unprotected TLV {t:#x}")
        alg, reserved = struct.unpack_from("<HH", v, 0)
        kid, sig = v[4:36], v[36:]
        matched = {ALG_ECDSA_P256: 1, ALG_MLDSA65: 3}.get(alg)  # SHA-256 / SHA-512 DIGEST ids
        if matched is not None and matched not in digests:
            raise Fail(f"signature (alg {alg:#06x}) without its matched DIGEST (id {matched})")
        pk = keys.get(kid)
        if pk is None:
            raise Fail(f"signature (alg {alg}) by an unknown key {kid.hex()}")
        try:
            if reserved != 0:
                raise Fail("SIGNATURE TLV reserved field is not zero")
            if isinstance(pk, ec.EllipticCurvePublicKey) and alg == ALG_ECDSA_P256:
                pk.verify(sig, message, ec.ECDSA(hashes.SHA256()))
                verified.add("ecdsa-p256")
            elif isinstance(pk, mldsa.MLDSA65PublicKey) and alg == ALG_MLDSA65:
                if len(sig) != 3309:
                    raise Fail("ML-DSA-65 signature is not 3309 bytes")
                pk.verify(sig, message)
                verified.add("ml-dsa-65")
            else:
                raise Fail(f"algorithm id {alg:#06x} does not match the key")
        except InvalidSignature:
            raise Fail(f"signature by {kid.hex()} (alg {alg}) does not verify")
    if verified != {"ecdsa-p256", "ml-dsa-65"}:
        raise Fail(f"missing signatures: only {sorted(verified)} verified")
    print(f"OK: {a.file}: image {lo:#x}+{hi - lo}, block at {block_addr:#x}, "
          f"product {product!r}, verified {sorted(verified)}")


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
