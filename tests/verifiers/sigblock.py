#!/usr/bin/env python3
"""Independent verifier for the fwseal signature block, written from formats/signature-block.md.

It shares no code with fwseal: parsing is done here from the spec, cryptography by pyca
`cryptography` (>= 47, for ML-DSA). Used by the test suite as an outside judge.

Library use:  verify_block(data, fmt, covered, keys) where `covered` is the byte string the
DIGEST TLVs cover (raw: everything before the block) and `keys` a list of PEM public keys.
CLI (raw images):  sigblock.py --format raw --image FILE --key a.pem --key b.pem [--require-both]
Exit status 0 = every signature verified and both halves present (with --require-both).
"""
import argparse
import hashlib
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

try:
    from cryptography.hazmat.primitives.asymmetric import mldsa
except ImportError:  # pragma: no cover
    mldsa = None

FORMATS = {1: "raw", 2: "mcuboot", 3: "ihex", 4: "dfu", 5: "efi"}
DIGESTS = {1: ("sha256", 32), 2: ("sha384", 48), 3: ("sha512", 64)}
CLASSICAL = {0x0001, 0x0002, 0x0010, 0x0011}
# The digest matched to each signature algorithm: its DIGEST TLV must be present.
MATCHED = {0x0001: "sha256", 0x0002: "sha384", 0x0010: "sha256", 0x0011: "sha256",
           0x0101: "sha256", 0x0102: "sha512", 0x0103: "sha512",
           0x0201: "sha256", 0x0202: "sha256", 0x0203: "sha512", 0x0205: "sha512"}
PQ_LEN = {0x0101: 2420, 0x0102: 3309, 0x0103: 4627, 0x0201: 7856, 0x0202: 17088, 0x0203: 16224, 0x0205: 29792}


class Bad(Exception):
    pass


def find_block(data):
    """Return the block's start offset, or None if there is no footer magic."""
    n = len(data)
    if n < 16 or data[-8:] != b"fwsealSB":
        return None
    (length,) = struct.unpack_from("<I", data, n - 16)
    if length < 32 or length > n or length > (1 << 20):
        raise Bad("footer length out of range")
    start = n - length
    if data[start:start + 4] != b"FWSB":
        raise Bad("footer does not point at FWSB")
    return start


def tlvs(area):
    out, i = [], 0
    while i < len(area):
        if i + 8 > len(area):
            raise Bad("truncated TLV header")
        t, r, n = struct.unpack_from("<HHI", area, i)
        if r != 0:
            raise Bad("reserved TLV field not zero")
        if i + 8 + n > len(area):
            raise Bad("TLV runs past its area")
        out.append((t, area[i + 8:i + 8 + n]))
        i += 8 + n
    return out


def parse_block(block):
    if len(block) < 32 or block[:4] != b"FWSB":
        raise Bad("bad header magic")
    version, hlen, p, u = struct.unpack_from("<HHII", block, 4)
    if version != 1 or hlen != 16:
        raise Bad("unsupported version/header length")
    if 16 + p + u + 16 != len(block):
        raise Bad("area lengths disagree with block length")
    length, reserved = struct.unpack_from("<II", block, 16 + p + u)
    if length != len(block) or reserved != 0 or block[-8:] != b"fwsealSB":
        raise Bad("bad footer")
    protected = block[16:16 + p]
    meta = {"digests": {}}
    for t, v in tlvs(protected):
        if t == 1:
            if "format" in meta or len(v) != 1 or v[0] not in FORMATS:
                raise Bad("bad FORMAT")
            meta["format"] = FORMATS[v[0]]
        elif t == 2:
            name, size = DIGESTS.get(v[0], (None, None)) if v else (None, None)
            if name is None or len(v) != 1 + size or name in meta["digests"]:
                raise Bad("bad DIGEST")
            meta["digests"][name] = v[1:]
        elif t == 3:
            if "product" in meta or not 1 <= len(v) <= 255:
                raise Bad("bad PRODUCT")
            meta["product"] = v.decode("utf-8")
        elif t == 4:
            if "version" in meta or len(v) != 8:
                raise Bad("bad IMAGE_VERSION")
            meta["version"] = struct.unpack("<BBHI", v)
        elif t == 5:
            if "counter" in meta or len(v) != 4:
                raise Bad("bad SECURITY_COUNTER")
            meta["counter"] = struct.unpack("<I", v)[0]
        elif t == 6:
            if "range" in meta or len(v) != 16:
                raise Bad("bad IMAGE_RANGE")
            meta["range"] = struct.unpack("<QQ", v)
        elif t == 7:
            if "fill" in meta or len(v) != 1:
                raise Bad("bad FILL")
            meta["fill"] = v[0]
        else:
            raise Bad("unknown protected TLV 0x%04x" % t)
    for k in ("format", "product", "range"):
        if k not in meta:
            raise Bad("missing %s" % k)
    if not meta["digests"]:
        raise Bad("no DIGEST")
    sigs = []
    for t, v in tlvs(block[16 + p:16 + p + u]):
        if t != 0x0101 or len(v) < 37:
            raise Bad("bad unprotected TLV 0x%04x" % t)
        alg, res = struct.unpack_from("<HH", v, 0)
        if res != 0:
            raise Bad("SIGNATURE reserved not zero")
        if alg not in MATCHED:
            raise Bad("unknown signature algorithm 0x%04x" % alg)
        if alg in PQ_LEN and len(v) - 36 != PQ_LEN[alg]:
            raise Bad("PQ signature of wrong length")
        if MATCHED[alg] not in meta["digests"]:
            raise Bad("signature 0x%04x without its matched %s DIGEST" % (alg, MATCHED[alg]))
        sigs.append((alg, v[4:36], v[36:]))
    if not sigs:
        raise Bad("no SIGNATURE")
    return meta, protected, sigs


def key_id(pub):
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


def verify_one(alg, pub, message, sig):
    if alg == 0x0001:
        pub.verify(sig, message, ec.ECDSA(hashes.SHA256()))
    elif alg == 0x0002:
        pub.verify(sig, message, ec.ECDSA(hashes.SHA384()))
    elif alg == 0x0010:
        pub.verify(sig, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    elif alg == 0x0011:
        pub.verify(sig, message, padding.PKCS1v15(), hashes.SHA256())
    elif alg in (0x0101, 0x0102, 0x0103):
        pub.verify(sig, message)  # pure ML-DSA, empty context
    else:
        raise Bad("algorithm 0x%04x not supported by this verifier" % alg)


def verify_block(data, fmt, covered, keys, require_both=True, expect_range=None):
    """data: bytes ending with a block; covered: bytes the digests cover. Returns meta."""
    start = find_block(data)
    if start is None:
        raise Bad("no signature block")
    meta, protected, sigs = parse_block(data[start:])
    if meta["format"] != fmt:
        raise Bad("block is for %s, not %s" % (meta["format"], fmt))
    if "fill" in meta and fmt != "ihex":
        raise Bad("FILL TLV outside an Intel HEX block")
    if expect_range is not None and tuple(meta["range"]) != tuple(expect_range):
        raise Bad("IMAGE_RANGE %r != %r" % (meta["range"], expect_range))
    for name, want in meta["digests"].items():
        if hashlib.new(name, covered).digest() != want:
            raise Bad("%s digest mismatch" % name)
    message = b"fwseal/sigblock/v1/" + fmt.encode() + b"\x00" + protected
    by_id = {key_id(k): k for k in keys}
    families = set()
    for alg, kid, sig in sigs:
        pub = by_id.get(kid)
        if pub is None:
            raise Bad("signature by unknown key %s" % kid.hex())
        try:
            verify_one(alg, pub, message, sig)
        except InvalidSignature:
            raise Bad("signature 0x%04x does not verify" % alg)
        families.add("classical" if alg in CLASSICAL else "pq")
    if require_both and families != {"classical", "pq"}:
        raise Bad("need both a classical and a post-quantum signature, have %s" % sorted(families))
    return meta


def load_keys(paths):
    return [serialization.load_pem_public_key(open(p, "rb").read()) for p in paths]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--format", default="raw", choices=["raw"])
    ap.add_argument("--image", required=True)
    ap.add_argument("--key", action="append", required=True)
    ap.add_argument("--require-both", action="store_true")
    a = ap.parse_args()
    data = open(a.image, "rb").read()
    try:
        start = find_block(data)
        if start is None:
            raise Bad("no signature block")
        meta = verify_block(data, "raw", data[:start], load_keys(a.key), a.require_both, (0, start))
    except Bad as e:
        print("FAIL: %s" % e)
        return 1
    print("OK: product=%s digests=%s" % (meta["product"], ",".join(sorted(meta["digests"]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
