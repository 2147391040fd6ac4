#!/usr/bin/env python3
"""Independent verifier for fwseal detached signature documents over raw images (.bin/.fw),
written from formats/detached.md. Uses pyca `cryptography` only.

  detached.py --image FILE --doc FILE.sig.json --key a.pem --key b.pem
Exit 0 when the digests match the file and every signature verifies (both halves required).
"""
import argparse
import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

DOC_TYPE = "https://fwseal.dev/detached-signature/v1"
MATCHED = {"ecdsa-p256-sha256": "sha256", "ecdsa-p384-sha384": "sha384",
           "ml-dsa-44": "sha256", "ml-dsa-65": "sha512", "ml-dsa-87": "sha512"}
IDS = {"sha256": 1, "sha384": 2, "sha512": 3}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--key", action="append", required=True)
    a = ap.parse_args()
    data = open(a.image, "rb").read()
    doc = json.load(open(a.doc))
    if doc.get("type") != DOC_TYPE or doc.get("format") != "raw":
        print("FAIL: not a raw detached document")
        return 1
    for d in doc["digests"] + [doc["digest"]]:
        if hashlib.new(d["alg"], data).hexdigest() != d["value"]:
            print("FAIL: %s digest does not match the file" % d["alg"])
            return 1
    keys = {}
    for p in a.key:
        k = serialization.load_pem_public_key(open(p, "rb").read())
        der = k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        keys[hashlib.sha256(der).hexdigest()] = k
    fams = set()
    for s in doc["signatures"]:
        k = keys.get(s["key_id"])
        sig = base64.b64decode(s["bytes"])
        h = MATCHED.get(s["alg"])
        if k is None or h is None:
            print("FAIL: unknown key or algorithm %s" % s["alg"])
            return 1
        digest = hashlib.new(h, data).digest()
        try:
            if s["alg"].startswith("ecdsa"):
                algo = hashes.SHA256() if h == "sha256" else hashes.SHA384()
                k.verify(sig, digest, ec.ECDSA(utils.Prehashed(algo)))
                fams.add("classical")
            else:
                msg = b"fwseal/detached/v1/raw\x00" + bytes([IDS[h]]) + digest
                k.verify(sig, msg)
                fams.add("pq")
        except InvalidSignature:
            print("FAIL: %s does not verify" % s["alg"])
            return 1
    if fams != {"classical", "pq"}:
        print("FAIL: both halves required, have %s" % sorted(fams))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
