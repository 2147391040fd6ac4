#!/usr/bin/env python3
"""Independent verifier of an fwseal audit export, written from crates/fwseal-store/README.md
only (no fwseal code). Used by the Rust tests as an outside judge.

usage: verify_export.py EXPORT.jsonl [--ecdsa PUB.pem] [--mldsa PUB.pem]
       verify_export.py --worked-example
Prints "OK <records> <checkpoints>" and exits 0, or prints "BAD seq=<n> <why>" and exits 1.

A checkpoint line's optional "note" (the signed tree head, formats/log.md) is checked too: its
size is the checkpoint's seq, its root is the RFC 9162 Merkle root of the canonical encodings of
records 1..seq (recomputed here), and with the keys given both its signature lines verify
(ECDSA P-256 type 0x02, ML-DSA-65 type 0xff "fwseal/ml-dsa-65/v1", key name = origin).
"""
import base64, hashlib, json, struct, sys

DOMAIN = b"fwseal/audit-record/v1\x00"
CP_DOMAIN = b"fwseal/audit-checkpoint/v1\x00"


def s(x):
    b = x.encode("utf-8")
    return struct.pack(">I", len(b)) + b


def opt_s(x):
    return b"\x00" if x is None else b"\x01" + s(x)


def opt32(x):
    if x is None:
        return b"\x00"
    b = bytes.fromhex(x)
    assert len(b) == 32
    return b"\x01" + b


def encode(r):
    out = DOMAIN + struct.pack(">Q", r["seq"]) + bytes.fromhex(r["prev_hash"])
    out += s(r["time"]) + s(r["client"]) + s(r["action"])
    out += opt_s(r.get("product"))
    keys = r.get("key_ids") or []
    out += struct.pack(">I", len(keys)) + b"".join(bytes.fromhex(k) for k in keys)
    out += opt32(r.get("cert_sha256")) + opt32(r.get("input_sha256")) + opt32(r.get("output_sha256"))
    out += opt_s(r.get("format")) + opt_s(r.get("mode"))
    out += s(r["decision"])
    out += opt_s(r.get("reason")) + opt_s(r.get("extra"))
    return out


def mth(leaves):
    """RFC 9162 2.1.1 Merkle tree hash of a list of leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


MLDSA_TYPE = b"\xfffwseal/ml-dsa-65/v1"


def check_note(c, leaf_hashes, keys):
    """The checkpoint's signed tree head (formats/log.md sections 4, 5)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    note = c["note"]
    cut = note.rfind("\n\n")
    if cut < 0:
        bad(c["seq"], "note has no signature block")
    text, sigs = note[: cut + 1], note[cut + 2 :]
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        bad(c["seq"], "note body is not origin/size/root")
    origin, size, root = lines[0], lines[1], lines[2]
    if size != str(c["seq"]):
        bad(c["seq"], "note size is not the checkpoint seq")
    if base64.b64decode(root, validate=True) != mth(leaf_hashes[: c["seq"]]):
        bad(c["seq"], "note root is not the Merkle root of the records")
    if not keys:
        return
    ec_pub = keys["--ecdsa"]
    ec_id = hashlib.sha256(
        ec_pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).digest()[:4]
    ml_raw = keys["--mldsa"].public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ml_id = hashlib.sha256(origin.encode() + b"\n" + MLDSA_TYPE + ml_raw).digest()[:4]
    ok = set()
    for line in sigs.split("\n"):
        if not line:
            continue
        if not line.startswith("\u2014 "):
            bad(c["seq"], "note signature line")
        name, _, b64 = line[2:].rpartition(" ")
        raw = base64.b64decode(b64, validate=True)
        if name != origin:
            continue
        kid, sig = raw[:4], raw[4:]
        if kid == ec_id:
            ec_pub.verify(sig, text.encode(), ec.ECDSA(hashes.SHA256()))
            ok.add("ecdsa")
        elif kid == ml_id:
            keys["--mldsa"].verify(sig, text.encode())
            ok.add("mldsa")
    if ok != {"ecdsa", "mldsa"}:
        bad(c["seq"], "note not signed by both keys")


def bad(seq, why):
    print(f"BAD seq={seq} {why}")
    sys.exit(1)


def worked_example():
    r = {
        "seq": 1, "prev_hash": "00" * 32, "time": "2026-05-01T12:00:00Z", "client": "ci-bot",
        "action": "sign", "product": "widget", "key_ids": ["11" * 32],
        "input_sha256": "22" * 32, "output_sha256": "33" * 32, "format": "raw",
        "mode": "embedded", "decision": "allow", "extra": '{"run":42}',
    }
    enc = encode(r)
    print("encoding", enc.hex())
    print("hash", hashlib.sha256(enc).hexdigest())


def main(argv):
    if argv[1:] == ["--worked-example"]:
        return worked_example()
    path = argv[1]
    keys = {}
    args = argv[2:]
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    while args:
        flag, pem = args[0], args[1]
        args = args[2:]
        keys[flag] = serialization.load_pem_public_key(open(pem, "rb").read())

    lines = [l for l in open(path, "rb").read().split(b"\n") if l.strip()]
    objs = [json.loads(l) for l in lines]
    if objs[0] != {"type": "header", "format": "fwseal-audit-export", "version": 1}:
        bad(None, "bad header")
    prev = bytes(32)
    expected = 1
    hashes_by_seq = {0: bytes(32)}
    leaf_hashes = []
    cps = []
    for o in objs[1:]:
        if o["type"] == "checkpoint":
            cps.append(o)
            continue
        if o["type"] != "record":
            bad(None, "unknown line type")
        if o["seq"] != expected:
            bad(expected, f"found seq {o['seq']}")
        if bytes.fromhex(o["prev_hash"]) != prev:
            bad(o["seq"], "prev_hash")
        h = hashlib.sha256(encode(o)).digest()
        leaf_hashes.append(hashlib.sha256(b"\x00" + encode(o)).digest())
        if h.hex() != o["hash"]:
            bad(o["seq"], "hash")
        hashes_by_seq[o["seq"]] = h
        prev = h
        expected += 1
    for c in cps:
        msg = CP_DOMAIN + struct.pack(">Q", c["seq"]) + bytes.fromhex(c["head_hash"])
        if hashes_by_seq.get(c["seq"]) != bytes.fromhex(c["head_hash"]):
            bad(c["seq"], "checkpoint head")
        algs = set()
        for sig in c["signatures"]:
            raw = base64.b64decode(sig["bytes"])
            if sig["alg"] == "ecdsa-p256-sha256":
                keys["--ecdsa"].verify(raw, msg, ec.ECDSA(hashes.SHA256()))
            elif sig["alg"] == "ml-dsa-65":
                keys["--mldsa"].verify(raw, msg)  # pure ML-DSA, empty context
            else:
                bad(c["seq"], "unexpected algorithm " + sig["alg"])
            algs.add(sig["alg"])
        if algs != {"ecdsa-p256-sha256", "ml-dsa-65"}:
            bad(c["seq"], "checkpoint not hybrid")
        if c.get("note") is not None:
            check_note(c, leaf_hashes, keys)
    print(f"OK {expected - 1} {len(cps)}")


if __name__ == "__main__":
    main(sys.argv)
