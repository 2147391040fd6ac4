#!/usr/bin/env python3
"""Independent verifier for fwseal-hsm tests: pyca `cryptography` (>= 47).

Usage: pyca_verify.py ALG SPKI_DER_FILE MESSAGE_FILE SIGNATURE_FILE

ALG is an fwseal algorithm name. MESSAGE_FILE holds the message bytes M: classical algorithms
hash M themselves (ECDSA P-256/SHA-256, P-384/SHA-384, RSA-PSS SHA-256/MGF1-SHA-256/salt 32,
RSA PKCS#1 v1.5 SHA-256); ML-DSA verifies M in pure mode with an empty context.
Prints "OK" and exits 0 on success, prints the reason and exits 1 on failure, exits 2 when the
algorithm is not supported by this pyca build (the caller treats that as a skip).
"""
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding


def main() -> int:
    alg, spki_path, msg_path, sig_path = sys.argv[1:5]
    spki = open(spki_path, "rb").read()
    msg = open(msg_path, "rb").read()
    sig = open(sig_path, "rb").read()
    if alg.startswith("slh-dsa"):
        print("UNSUPPORTED: pyca has no SLH-DSA")
        return 2
    try:
        key = serialization.load_der_public_key(spki)
    except Exception as e:  # noqa: BLE001 - report any parse failure
        if alg.startswith("ml-dsa"):
            print(f"UNSUPPORTED: cannot load {alg} key: {e}")
            return 2
        raise
    try:
        if alg == "ecdsa-p256-sha256":
            assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
            key.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
        elif alg == "ecdsa-p384-sha384":
            assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
            key.verify(sig, msg, ec.ECDSA(hashes.SHA384()))
        elif alg == "rsa-pss-sha256":
            key.verify(
                sig,
                msg,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                hashes.SHA256(),
            )
        elif alg == "rsa-pkcs1-sha256":
            key.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())
        elif alg in ("ml-dsa-44", "ml-dsa-65", "ml-dsa-87"):
            from cryptography.hazmat.primitives.asymmetric import mldsa

            want = {
                "ml-dsa-44": mldsa.MLDSA44PublicKey,
                "ml-dsa-65": mldsa.MLDSA65PublicKey,
                "ml-dsa-87": mldsa.MLDSA87PublicKey,
            }[alg]
            assert isinstance(key, want), f"key is {type(key).__name__}"
            key.verify(sig, msg, b"")
        else:
            print(f"UNSUPPORTED: unknown algorithm {alg}")
            return 2
    except InvalidSignature:
        print(f"INVALID: {alg} signature does not verify")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
