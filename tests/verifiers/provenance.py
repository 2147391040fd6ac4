#!/usr/bin/env python3
"""Outside judges for fwseal provenance (formats/provenance.md):
- the ECDSA P-256 half with securesystemslib's DSSE verification,
- the ML-DSA-65 half with pyca `cryptography` over the DSSE PAE (pure, empty context).

  provenance.py --envelope FILE.intoto.jsonl --ec ec.pem --pq pq.pem [--subject SHA256]
                [--verified KEY=VALUE ...] [--source-commit SHA]
Exit 0 = both halves verify (and the subject matches when given). `--verified` checks a claim
of `externalParameters.verifiedClaims` (exact; buildType v2, formats/provenance.md) — never
`clientClaims`; `--source-commit` checks the source entry of `resolvedDependencies`
(`git+…@ref` of the verified source and ref, `digest.gitCommit`).
"""
import argparse
import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from securesystemslib import dsse
from securesystemslib.signer import SSlibKey


def key_id(pub):
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--envelope", required=True)
    ap.add_argument("--ec", required=True)
    ap.add_argument("--pq", required=True)
    ap.add_argument("--subject")
    ap.add_argument("--verified", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--source-commit")
    a = ap.parse_args()
    raw = json.loads(open(a.envelope).read().strip().splitlines()[0])
    ec = serialization.load_pem_public_key(open(a.ec, "rb").read())
    pq = serialization.load_pem_public_key(open(a.pq, "rb").read())

    # Classical half: securesystemslib DSSE, threshold 1, with only the ECDSA key trusted.
    env = dsse.Envelope.from_dict({"payload": raw["payload"], "payloadType": raw["payloadType"],
                                   "signatures": [dict(s) for s in raw["signatures"] if s["keyid"] == key_id(ec)]})
    try:
        env.verify([SSlibKey.from_crypto(ec, keyid=key_id(ec))], 1)
    except Exception as e:  # securesystemslib raises VerificationError
        print("FAIL: securesystemslib: %s" % e)
        return 1

    # Post-quantum half: ML-DSA-65 over PAE(payloadType, payload), empty context.
    body = base64.b64decode(raw["payload"])
    ptype = raw["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(body), body)
    sigs = [s for s in raw["signatures"] if s["keyid"] == key_id(pq)]
    if not sigs:
        print("FAIL: no ML-DSA signature by the given key")
        return 1
    try:
        pq.verify(base64.b64decode(sigs[0]["sig"]), pae)
    except InvalidSignature:
        print("FAIL: ML-DSA signature does not verify")
        return 1

    stmt = json.loads(body)
    if a.subject and not any(s["digest"].get("sha256") == a.subject for s in stmt["subject"]):
        print("FAIL: subject does not name %s" % a.subject)
        return 1
    bd = stmt["predicate"]["buildDefinition"]
    if bd["buildType"] not in ("https://fwseal.dev/buildtypes/firmware-sign/v2",
                               "https://fwseal.dev/buildtypes/firmware-sign/v1"):
        print("FAIL: unknown buildType %r" % bd["buildType"])
        return 1
    claims = bd["externalParameters"].get("verifiedClaims")
    if (a.verified or a.source_commit) and not isinstance(claims, dict):
        print("FAIL: no verifiedClaims: the signing was not OIDC-authenticated")
        return 1
    for kv in a.verified:
        key, _, want = kv.partition("=")
        if claims.get(key) != want:
            print("FAIL: verifiedClaims.%s is %r, expected %r" % (key, claims.get(key), want))
            return 1
    if a.source_commit:
        uri = claims["sourceRepository"]
        if not uri.startswith("git+"):
            uri = "git+" + uri
        if claims.get("ref"):
            uri += "@" + claims["ref"]
        deps = [d for d in bd["resolvedDependencies"] if d.get("uri") == uri]
        if len(deps) != 1 or deps[0].get("digest", {}).get("gitCommit") != a.source_commit:
            print("FAIL: resolvedDependencies has no %s with gitCommit %s" % (uri, a.source_commit))
            return 1
    print("OK: %s" % bd["buildType"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
