#!/usr/bin/env python3
"""Run the independent Python verifiers over the conformance kit.

  kit.py VECTORS_DIR        (reads VECTORS_DIR/manifest.json)

For every vector whose `verifiers` include "python" it prints one line
  name <TAB> accept|reject|skip <TAB> reason
with the reason code of sigblock.judge (raw, HEX, DFU, DfuSe) or mcuboot_pq.judge (MCUboot)
over the vector's device image. "skip" means an algorithm this machine cannot verify (SLH-DSA
without the `slh-dsa` package). For DFU, DfuSe and HEX vectors it also derives the device
image from the file itself (DFU suffix CRC; DfuSe prefix, targets, elements, sizes and CRC;
HEX records and checksums, formats/dfu.md and formats/hex.md), and a file that does not yield
the device image is a reject with reason "file-mismatch" (the kit's re-sealing is wrong).
Exit status 0 when every verdict matches the manifest's `expect`, 1 otherwise.
"""
import json
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mcuboot_pq  # noqa: E402
import sigblock  # noqa: E402

FMT = {"raw": "raw", "hex": "ihex", "dfu": "dfu", "dfuse": "dfu"}


def dfu_payload(f):
    """File -> bytes before the suffix; None when the suffix or its CRC is wrong."""
    if len(f) < 16 or f[-8:-5] != b"UFD" or f[-5] != 16:
        return None
    if struct.unpack_from("<I", f, len(f) - 4)[0] != (~zlib.crc32(f[:-4])) & 0xFFFFFFFF:
        return None
    return f[:-16]


def dfuse_device(f):
    """DfuSe file -> canonical element encoding || the signature element's data (formats/dfu.md §3)."""
    body = dfu_payload(f)
    if body is None or body[:5] != b"DfuSe" or body[5] != 1:
        return None
    if struct.unpack_from("<I", body, 6)[0] not in (len(f), len(f) - 16):
        return None
    n_targets, i, out, sig = body[10], 11, bytearray([body[10]]), None
    for t in range(n_targets):
        if body[i:i + 6] != b"Target":
            return None
        alt = body[i + 6]
        size, count = struct.unpack_from("<II", body, i + 266)
        i += 274
        end = i + size
        elements = []
        while i < end:
            addr, n = struct.unpack_from("<II", body, i)
            elements.append(body[i:i + 8 + n])
            i += 8 + n
        if i != end:
            return None
        if t == n_targets - 1 and elements:
            # The device knows the signature address: the last element of the last target is
            # where the block goes, whatever it holds (a broken block is still read there).
            sig = elements[-1][8:]
            elements = elements[:-1]
        out += bytes([alt]) + struct.pack("<I", len(elements)) + b"".join(elements)
    if i != len(body) or sig is None:
        return None
    return bytes(out) + sig


def hex_device(f, fill=0xFF):
    """HEX file -> memory image from the lowest written address to the top (linear records)."""
    mem, base = {}, 0
    for line in f.split(b"\n"):
        line = line.rstrip(b"\r")
        if not line:
            continue
        if line[:1] != b":":
            return None
        r = bytes.fromhex(line[1:].decode())
        if sum(r) & 0xFF or r[0] != len(r) - 5:
            return None
        n, off, t, d = r[0], (r[1] << 8) | r[2], r[3], r[4:-1]
        if t == 0:
            for k, b in enumerate(d):
                if base + off + k in mem:
                    return None
                mem[base + off + k] = b
        elif t == 4:
            base = ((d[0] << 8) | d[1]) << 16
        elif t == 1:
            break
    if not mem:
        return None
    lo, hi = min(mem), max(mem) + 1
    return bytes(mem.get(a, fill) for a in range(lo, hi))


def main():
    kit = sys.argv[1]
    vectors = json.load(open(os.path.join(kit, "manifest.json")))
    rd = lambda rel: open(os.path.join(kit, rel), "rb").read()  # noqa: E731
    disagree = 0
    for v in vectors:
        if "python" not in v["verifiers"]:
            continue
        image = rd(v["device_image"])
        keys = [sigblock.Key(rd(k)) for k in v["keys"]]
        pol = v["policy"]
        fmt = v["format"]
        derive = {"dfu": dfu_payload, "dfuse": dfuse_device, "hex": hex_device}.get(fmt)
        try:
            if derive and v["file"] and derive(rd(v["file"])) != image:
                reason = "file-mismatch"
            elif fmt == "mcuboot":
                reason = mcuboot_pq.judge(image, keys, pol["require"], pol["min_security_counter"])
            else:
                reason = sigblock.judge(image, FMT[fmt], keys, pol["require"], pol["min_security_counter"])
            verdict = "accept" if reason == "ok" else "reject"
        except sigblock.Unsupported as e:
            verdict, reason = "skip", str(e).replace("\t", " ")
        if verdict != "skip" and verdict != v["expect"]:
            disagree += 1
        print("%s\t%s\t%s" % (v["name"], verdict, reason))
    print("kit.py: %d disagreements" % disagree, file=sys.stderr)
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
