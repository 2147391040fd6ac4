#!/usr/bin/env python3
"""Independent verifier for the fwseal signature block, written from formats/signature-block.md.

It shares no code with fwseal: parsing is done here from the spec, cryptography by pyca
`cryptography` (>= 47, for ML-DSA) and, for SLH-DSA, the pure-Python PyPI `slh-dsa` package when
installed. Used by the test suite as an outside judge.

Library use:
  judge(image, fmt, keys, require="both", min_counter=0) -> reason code ("ok", "bad-magic", ...)
      image: the byte string ending with the block whose first IMAGE_RANGE-length bytes the
      digests cover (raw file, DFU payload+block, DfuSe canonical encoding+block, HEX memory
      image from its lowest address); fmt: "raw" | "ihex" | "dfu". Reasons per the spec's
      "Rejection reasons" table, in its precedence order. Raises Unsupported for an algorithm
      this machine cannot verify.
  verify_block(data, fmt, covered, keys) -> meta, raises Bad (the older interface).
CLI (raw images):  sigblock.py --format raw --image FILE --key a.pem --key b.pem [--require-both]
Exit status 0 = every signature verified and both halves present (with --require-both).
"""
import argparse
import hashlib
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: F401

try:
    from cryptography.hazmat.primitives.asymmetric import mldsa
except ImportError:  # pragma: no cover
    mldsa = None
try:
    import slhdsa
except ImportError:
    slhdsa = None

FORMATS = {1: "raw", 2: "mcuboot", 3: "ihex", 4: "dfu", 5: "efi"}
DIGESTS = {1: ("sha256", 32), 2: ("sha384", 48), 3: ("sha512", 64)}
CLASSICAL = {0x0001, 0x0002, 0x0010, 0x0011}
# The digest matched to each signature algorithm: its DIGEST TLV must be present.
MATCHED = {0x0001: "sha256", 0x0002: "sha384", 0x0010: "sha256", 0x0011: "sha256",
           0x0101: "sha256", 0x0102: "sha512", 0x0103: "sha512",
           0x0201: "sha256", 0x0202: "sha256", 0x0203: "sha512", 0x0205: "sha512"}
PQ_LEN = {0x0101: 2420, 0x0102: 3309, 0x0103: 4627, 0x0201: 7856, 0x0202: 17088, 0x0203: 16224, 0x0205: 29792}
# SPKI DER prefixes of the spec (the key ids hash prefix || raw key).
PQ_OID_TAIL = {0x11: 0x0101, 0x12: 0x0102, 0x13: 0x0103, 0x14: 0x0201, 0x15: 0x0202, 0x16: 0x0203, 0x18: 0x0205}
SLH_PARAMS = {0x0201: "sha2_128s", 0x0202: "sha2_128f", 0x0203: "sha2_192s", 0x0205: "sha2_256s"}
MAX_BLOCK = 1 << 20


class Bad(Exception):
    def __init__(self, msg, reason="malformed"):
        super().__init__(msg)
        self.reason = reason


class Unsupported(Exception):
    """An algorithm this machine has no implementation of (not a verdict)."""


class Key:
    """A trusted public key from its SPKI DER: algorithm id, key id, verify()."""

    def __init__(self, spki):
        self.spki = spki
        self.key_id = hashlib.sha256(spki).digest()
        self.pub = None
        oid_tail = None
        # ML-DSA / SLH-DSA: the fixed prefixes of the spec (NIST OID 2.16.840.1.101.3.4.3.x).
        nist = bytes.fromhex("0609608648016503040300")[:10]
        for off in (6, 4):
            if spki[off:off + 10] == nist:
                oid_tail = spki[off + 10]
        if oid_tail in PQ_OID_TAIL:
            self.alg = PQ_OID_TAIL[oid_tail]
            self.raw = spki[22 if self.alg < 0x0200 else 18:]
            if self.alg < 0x0200:
                self.pub = serialization.load_der_public_key(spki)
        else:
            self.pub = serialization.load_der_public_key(spki)
            if isinstance(self.pub, ec.EllipticCurvePublicKey):
                self.alg = {"secp256r1": 0x0001, "secp384r1": 0x0002}[self.pub.curve.name]
            else:
                self.alg = None  # RSA: either 0x0010 or 0x0011

    def matches(self, alg):
        return self.alg == alg or (self.alg is None and alg in (0x0010, 0x0011))

    def verify(self, alg, message, sig):
        """True/False; raises Unsupported when no implementation is installed."""
        try:
            if alg == 0x0001:
                self.pub.verify(sig, message, ec.ECDSA(hashes.SHA256()))
            elif alg == 0x0002:
                self.pub.verify(sig, message, ec.ECDSA(hashes.SHA384()))
            elif alg == 0x0010:
                self.pub.verify(sig, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                                hashes.SHA256())
            elif alg == 0x0011:
                self.pub.verify(sig, message, padding.PKCS1v15(), hashes.SHA256())
            elif alg in (0x0101, 0x0102, 0x0103):
                self.pub.verify(sig, message)  # pure ML-DSA, empty context
            elif alg in SLH_PARAMS:
                if slhdsa is None:
                    raise Unsupported("SLH-DSA needs the `slh-dsa` package")
                params = getattr(slhdsa, SLH_PARAMS[alg])
                return bool(slhdsa.PublicKey.from_digest(self.raw, params).verify_pure(message, sig, b""))
            else:
                raise Unsupported("algorithm 0x%04x" % alg)
        except InvalidSignature:
            return False
        except ValueError:  # e.g. an ECDSA signature that is not DER
            return False
        return True


def find_block(data):
    """The block's start offset, or None if there is no footer magic (raises Bad)."""
    n = len(data)
    if n < 16 or data[-8:] != b"fwsealSB":
        return None
    length, reserved = struct.unpack_from("<II", data, n - 16)
    if length < 32 or length > MAX_BLOCK:
        raise Bad("footer length %d out of range" % length, "bad-length")
    if length > n:
        raise Bad("image shorter than its block", "truncated")
    if reserved != 0:
        raise Bad("footer reserved not zero")
    start = n - length
    if data[start:start + 4] != b"FWSB":
        raise Bad("footer does not point at FWSB", "bad-magic")
    return start


def tlvs(area):
    out, i = [], 0
    while i < len(area):
        if i + 8 > len(area):
            raise Bad("truncated TLV header", "bad-length")
        t, r, n = struct.unpack_from("<HHI", area, i)
        if i + 8 + n > len(area):
            raise Bad("TLV runs past its area", "bad-length")
        out.append((t, r, area[i + 8:i + 8 + n]))
        i += 8 + n
    return out


ONCE = {1: "format", 3: "product", 4: "version", 5: "counter", 6: "range", 7: "fill"}
VALUE_LEN = {1: 1, 4: 8, 5: 4, 6: 16, 7: 1}


def parse_block(block):
    version, hlen, p, u = struct.unpack_from("<HHII", block, 4)
    if version != 1 or hlen != 16:
        raise Bad("unsupported version/header length")
    if 16 + p + u + 16 != len(block):
        raise Bad("area lengths disagree with block length", "bad-length")
    protected = block[16:16 + p]
    meta = {"digests": {}}
    for t, r, v in tlvs(protected):
        if not 1 <= t <= 7:
            raise Bad("unknown protected TLV 0x%04x" % t, "unknown-tlv")
        if t == 2:
            if v and v[0] in DIGESTS and DIGESTS[v[0]][0] in meta["digests"]:
                raise Bad("two DIGESTs of one algorithm", "duplicate-tlv")
        elif ONCE[t] in meta:
            raise Bad("protected TLV 0x%04x twice" % t, "duplicate-tlv")
        if r != 0:
            raise Bad("reserved TLV field not zero")
        if t == 2:
            name, size = DIGESTS.get(v[0], (None, None)) if v else (None, None)
            if name is None or len(v) != 1 + size:
                raise Bad("bad DIGEST")
            meta["digests"][name] = v[1:]
            continue
        if t in VALUE_LEN and len(v) != VALUE_LEN[t]:
            raise Bad("TLV 0x%04x of the wrong length" % t)
        if t == 1:
            if v[0] not in FORMATS:
                raise Bad("unknown format id")
            meta["format"] = FORMATS[v[0]]
        elif t == 3:
            if not 1 <= len(v) <= 255:
                raise Bad("bad PRODUCT")
            try:
                meta["product"] = v.decode("utf-8")
            except UnicodeDecodeError:
                raise Bad("PRODUCT not UTF-8")
        elif t == 4:
            meta["version"] = struct.unpack("<BBHI", v)
        elif t == 5:
            meta["counter"] = struct.unpack("<I", v)[0]
        elif t == 6:
            meta["range"] = struct.unpack("<QQ", v)
        elif t == 7:
            meta["fill"] = v[0]
    sigs = []
    for t, r, v in tlvs(block[16 + p:16 + p + u]):
        if t != 0x0101:
            raise Bad("unknown unprotected TLV 0x%04x" % t, "unknown-tlv")
        if r != 0 or len(v) < 37:
            raise Bad("bad SIGNATURE TLV")
        alg, res = struct.unpack_from("<HH", v, 0)
        if res != 0:
            raise Bad("SIGNATURE reserved not zero")
        if alg in PQ_LEN and len(v) - 36 != PQ_LEN[alg]:
            raise Bad("PQ signature of wrong length")
        sigs.append((alg, v[4:36], v[36:]))
    for k in ("format", "product", "range"):
        if k not in meta:
            raise Bad("missing %s" % k)
    if not meta["digests"] or not sigs:
        raise Bad("no DIGEST or no SIGNATURE")
    return meta, protected, sigs


def judge(image, fmt, keys, require="both", min_counter=0):
    """The reason code for `image` (see the module doc). keys: list of Key."""
    try:
        start = find_block(image)
        if start is None:
            return "no-signature-block"
        meta, protected, sigs = parse_block(image[start:])
        if "fill" in meta and fmt != "ihex":
            raise Bad("FILL outside Intel HEX")
        if meta["format"] != fmt:
            return "format-mismatch"
        rstart, rlen = meta["range"]
        if rlen == 0 or rlen > start or (fmt != "ihex" and (rstart, rlen) != (0, start)):
            # HEX: the covered length must leave the block alone (formats/hex.md §3)
            return "malformed" if fmt == "ihex" and rlen == 0 else "bad-length"
        if start == 0:
            raise Bad("nothing before the block")
    except Bad as e:
        return e.reason
    covered = image[:rlen]
    for name, want in meta["digests"].items():
        if hashlib.new(name, covered).digest() != want:
            return "digest-mismatch"
    for alg, _, _ in sigs:
        if alg in MATCHED and MATCHED[alg] not in meta["digests"]:
            return "digest-missing"
    if meta.get("counter", 0) < min_counter:
        return "security-counter-too-low"
    message = b"fwseal/sigblock/v1/" + fmt.encode() + b"\x00" + protected
    have = set()
    for alg, kid, sig in sigs:
        if alg not in MATCHED:
            return "unsupported-algorithm"
        key = next((k for k in keys if k.key_id == kid and k.matches(alg)), None)
        if key is None:
            return "untrusted-key"
        half = "classical" if alg in CLASSICAL else "pq"
        if not key.verify(alg, message, sig):
            return half + "-signature-invalid"
        have.add(half)
    if require in ("both", "pq") and "pq" not in have:
        return "pq-signature-missing"
    if require in ("both", "classical") and "classical" not in have:
        return "classical-signature-missing"
    return "ok"


def verify_block(data, fmt, covered, keys, require_both=True, expect_range=None):
    """The older interface: data ends with a block; keys are pyca public keys. Returns meta."""
    ks = [Key(k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
          for k in keys]
    start = find_block(data)
    image = data if start is None else covered + data[start:]
    reason = judge(image, fmt, ks, "both" if require_both else "any")
    if reason != "ok":
        raise Bad(reason, reason)
    meta, _, _ = parse_block(image[find_block(image):])
    if expect_range is not None and tuple(meta["range"]) != tuple(expect_range):
        raise Bad("IMAGE_RANGE %r != %r" % (meta["range"], expect_range), "bad-length")
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--format", default="raw", choices=["raw"])
    ap.add_argument("--image", required=True)
    ap.add_argument("--key", action="append", required=True)
    ap.add_argument("--require-both", action="store_true")
    a = ap.parse_args()
    data = open(a.image, "rb").read()
    keys = [serialization.load_pem_public_key(open(p, "rb").read()) for p in a.key]
    try:
        meta = verify_block(data, "raw", data[:find_block(data) or 0], keys, a.require_both)
    except Bad as e:
        print("FAIL: %s" % e)
        return 1
    print("OK: product=%s digests=%s" % (meta["product"], ",".join(sorted(meta["digests"]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
