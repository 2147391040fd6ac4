#!/usr/bin/env python3
"""Cross-check fwseal's SLH-DSA (RustCrypto) against an independent FIPS 205 implementation
(PyPI `slh-dsa`, pure Python): same seeds -> same public key; deterministic signing (opt_rand =
PK.seed) -> byte-identical signature; fwseal's signature verifies (pure, empty context); a
modified message does not.

  slhdsa_cross.py CASES.json     (list of {param, seed, pk, msg, sig} in hex)
"""
import json
import sys

import slhdsa

PARAMS = {"slh-dsa-sha2-128s": slhdsa.sha2_128s, "slh-dsa-sha2-128f": slhdsa.sha2_128f,
          "slh-dsa-sha2-192s": slhdsa.sha2_192s, "slh-dsa-sha2-256s": slhdsa.sha2_256s}


def main():
    cases = json.load(open(sys.argv[1]))
    for c in cases:
        par = PARAMS[c["param"]]
        seed, pk, msg, sig = (bytes.fromhex(c[k]) for k in ("seed", "pk", "msg", "sig"))
        n = len(seed) // 3
        sk = slhdsa.SecretKey.from_digest(seed + pk[n:], par)
        pub = slhdsa.PublicKey.from_digest(pk, par)
        if pub.digest() != pk:
            print("FAIL %s: public key encoding differs" % c["param"])
            return 1
        mine = sk.sign_pure(msg, randomize=False, ctx=b"")
        if mine != sig:
            print("FAIL %s: deterministic signatures differ" % c["param"])
            return 1
        if not pub.verify_pure(msg, sig, b""):
            print("FAIL %s: fwseal's signature does not verify" % c["param"])
            return 1
        if pub.verify_pure(msg + b"x", sig, b""):
            print("FAIL %s: verified a modified message" % c["param"])
            return 1
    print("OK %d cases" % len(cases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
