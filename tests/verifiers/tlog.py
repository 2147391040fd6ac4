#!/usr/bin/env python3
"""Independent judge for fwseal's transparency-log proofs (formats/log.md, "Proof JSON").

Written from RFC 9162 section 2.1 alone (hashlib, json, base64 from the standard library;
nothing shared with the Rust implementation):

  tlog.py CASES.json        -> prints one JSON verdict per case on stdout:
                               {"id": ..., "ok": true|false, "reason": "..."}
Exit status 0 when every case was judged (valid or not); 2 on unreadable input.

  tlog.py --served PROOF.json  -> one verdict for a proof as the appliance serves it: the JSON of
                               GET /v1/log/inclusion, or a fwseal-bundle/v1 (formats/log.md),
                               whose "checkpoint" note body gives the root and must name the
                               proof's tree size. Exit 0 valid, 1 rejected, 2 unreadable.
  tlog.py --served-consistency PROOF.json OLD_NOTE NEW_NOTE
                            -> the JSON of GET /v1/log/consistency between the two notes' trees.
The served modes check the note *body* (origin, size, root lines, C2SP tlog-checkpoint); the
signature lines are not checked here (that needs the appliance's keys).

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


def note_body(text, what):
    """C2SP signed note -> (origin, size, root) from its tlog-checkpoint body."""
    if not isinstance(text, str):
        raise Reject(what + " is not a string")
    body, sep, _sigs = text.partition("\n\n")
    if not sep:
        raise Reject(what + " has no blank line before its signatures")
    lines = body.split("\n")
    if len(lines) < 3:
        raise Reject(what + " body has fewer than 3 lines")
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    if not origin:
        raise Reject(what + " origin is empty")
    if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
        raise Reject(what + " size is not a decimal without leading zeros")
    return origin, int(size_s), b64_hash(root_s, what + " root")


def served_inclusion(doc):
    if not isinstance(doc, dict):
        raise Reject("not a JSON object")
    if "bundle_format" in doc:
        if doc.get("bundle_format") != "fwseal-bundle/v1":
            raise Reject("unknown bundle_format")
        proof = doc.get("inclusion_proof")
    else:
        proof = doc.get("proof")
    rec = doc.get("record")
    if not isinstance(rec, dict) or rec.get("seq") != doc.get("leaf_index", -1) + 1:
        raise Reject("record seq is not leaf_index + 1")
    _origin, size, root = note_body(doc.get("checkpoint"), "checkpoint")
    if size != doc.get("tree_size"):
        raise Reject("checkpoint size differs from tree_size")
    leaf_b64 = doc.get("canonical_encoding")
    try:
        leaf = base64.b64decode(leaf_b64 or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise Reject("canonical_encoding is not base64")
    if not isinstance(rec.get("hash"), str) or hashlib.sha256(leaf).hexdigest() != rec["hash"]:
        raise Reject("record hash is not SHA-256 of the canonical encoding")
    inclusion({"tree_size": doc.get("tree_size"), "leaf_index": doc.get("leaf_index"),
               "leaf": leaf_b64, "root": base64.b64encode(root).decode(), "proof": proof})


def served_consistency(doc, old_note, new_note):
    o_origin, o_size, o_root = note_body(old_note, "old note")
    n_origin, n_size, n_root = note_body(new_note, "new note")
    if o_origin != n_origin:
        raise Reject("the notes name different origins")
    if not isinstance(doc, dict) or doc.get("old_size") != o_size or doc.get("new_size") != n_size:
        raise Reject("proof sizes differ from the notes'")
    consistency({"old_size": o_size, "new_size": n_size,
                 "old_root": base64.b64encode(o_root).decode(),
                 "new_root": base64.b64encode(n_root).decode(), "proof": doc.get("proof")})


def served_main(argv):
    try:
        with open(argv[0]) as f:
            doc = json.load(f)
        notes = []
        for n in argv[1:]:
            with open(n) as f:
                notes.append(f.read())
    except (OSError, ValueError) as e:
        print("cannot read input: %s" % e, file=sys.stderr)
        return 2
    try:
        if notes:
            served_consistency(doc, notes[0], notes[1])
        else:
            served_inclusion(doc)
    except Reject as e:
        print(json.dumps({"ok": False, "reason": str(e)}))
        return 1
    print(json.dumps({"ok": True, "reason": ""}))
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--served":
        return served_main(sys.argv[2:])
    if len(sys.argv) == 5 and sys.argv[1] == "--served-consistency":
        return served_main(sys.argv[2:])
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
