#!/usr/bin/env python3
"""Independent judge for fwseal's transparency-log proofs (formats/log.md, "Proof JSON").

Written from RFC 9162 section 2.1 alone (hashlib, json, base64 from the standard library;
nothing shared with the Rust implementation):

  tlog.py CASES.json        -> prints one JSON verdict per case on stdout:
                               {"id": ..., "ok": true|false, "reason": "..."}
Exit status 0 when every case was judged (valid or not); 2 on unreadable input.

A case is a proof object of formats/log.md with an extra "id":
  {"id": "...", "type": "inclusion", "tree_size": N, "leaf_index": I,
   "leaf": base64 leaf bytes, "root": base64, "proof": [base64, ...]}
  {"id": "...", "type": "consistency", "old_size": M, "new_size": N,
   "old_root": base64, "new_root": base64, "proof": [base64, ...]}
"""
import base64
import binascii
import hashlib
import json
import sys

MAX_PROOF = 64          # formats/log.md: longer proofs are refused unread
MAX_SIZE = 1 << 63      # formats/log.md: larger tree sizes are refused
EMPTY = hashlib.sha256(b"").digest()


class Reject(Exception):
    pass


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def b64_hash(s, what):
    if not isinstance(s, str):
        raise Reject(what + " is not a string")
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise Reject(what + " is not base64")
    if base64.b64encode(raw).decode() != s:
        raise Reject(what + " is not canonical base64")
    if len(raw) != 32:
        raise Reject(what + " is not 32 bytes")
    return raw


def size_field(case, key):
    v = case.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise Reject(key + " is not a non-negative integer")
    if v > MAX_SIZE:
        raise Reject(key + " exceeds 2^63")
    return v


def path_field(case):
    p = case.get("proof")
    if not isinstance(p, list):
        raise Reject("proof is not a list")
    if len(p) > MAX_PROOF:
        raise Reject("proof longer than 64")
    return [b64_hash(x, "proof hash") for x in p]


def inclusion(case):
    """RFC 9162 2.1.3.2."""
    tree_size = size_field(case, "tree_size")
    leaf_index = size_field(case, "leaf_index")
    root = b64_hash(case.get("root"), "root")
    try:
        leaf = base64.b64decode(case.get("leaf", ""), validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise Reject("leaf is not base64")
    path = path_field(case)
    # 1. leaf_index against tree_size.
    if leaf_index >= tree_size:
        raise Reject("leaf_index >= tree_size")
    # 2, 3.
    fn = leaf_index
    sn = tree_size - 1
    r = leaf_hash(leaf)
    # 4.
    for p in path:
        if sn == 0:
            raise Reject("sn reached 0 before the end of the path")
        if fn & 1 == 1 or fn == sn:
            r = node(p, r)
            if fn & 1 == 0:
                while not (fn & 1 == 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    # 5.
    if sn != 0:
        raise Reject("sn is not 0 at the end of the path")
    if r != root:
        raise Reject("computed root differs")


def consistency(case):
    """RFC 9162 2.1.4.2, with formats/log.md's rules for old_size 0 and old_size == new_size."""
    first = size_field(case, "old_size")
    second = size_field(case, "new_size")
    first_hash = b64_hash(case.get("old_root"), "old_root")
    second_hash = b64_hash(case.get("new_root"), "new_root")
    path = path_field(case)
    if first > second:
        raise Reject("old_size > new_size")
    if first == 0 or first == second:
        if path:
            raise Reject("proof must be empty")
        if first == 0 and first_hash != EMPTY:
            raise Reject("old_root of the empty tree must be SHA-256('')")
        if first == second and first_hash != second_hash:
            raise Reject("equal sizes with different roots")
        return
    # 1.
    if not path:
        raise Reject("empty consistency path")
    # 2.
    if first & (first - 1) == 0:
        path = [first_hash] + path
    # 3.
    fn = first - 1
    sn = second - 1
    # 4.
    while fn & 1 == 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = path[0]
    sr = path[0]
    # 6.
    for c in path[1:]:
        if sn == 0:
            raise Reject("sn reached 0 before the end of the path")
        if fn & 1 == 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            if fn & 1 == 0:
                while not (fn & 1 == 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    # 7.
    if sn != 0:
        raise Reject("sn is not 0 at the end of the path")
    if fr != first_hash:
        raise Reject("computed old root differs")
    if sr != second_hash:
        raise Reject("computed new root differs")


def judge(case):
    kind = case.get("type")
    if kind == "inclusion":
        inclusion(case)
    elif kind == "consistency":
        consistency(case)
    else:
        raise Reject("unknown type")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1]) as f:
            cases = json.load(f)
    except (OSError, ValueError) as e:
        print("cannot read cases: %s" % e, file=sys.stderr)
        return 2
    for case in cases:
        try:
            judge(case)
            verdict = {"id": case.get("id"), "ok": True, "reason": ""}
        except Reject as e:
            verdict = {"id": case.get("id"), "ok": False, "reason": str(e)}
        print(json.dumps(verdict))
    return 0


if __name__ == "__main__":
    sys.exit(main())
