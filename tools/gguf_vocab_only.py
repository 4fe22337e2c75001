#!/usr/bin/env python3
"""
gguf_vocab_only.py - copies the vocabulary of a GGUF model into a small
vocab-only GGUF (no tensors): every tokenizer.* key plus general.architecture
and general.name, byte for byte. The tokenizer tests use these instead of the
multi-megabyte model files.

Usage: python3 tools/gguf_vocab_only.py MODEL.gguf OUT.gguf
"""
import struct
import sys

FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

def skip_value(buf, pos, t):
    if t in FIXED:
        return pos + FIXED[t]
    if t == 8:
        (n,) = struct.unpack_from("<Q", buf, pos)
        return pos + 8 + n
    if t == 9:
        at, n = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if at in FIXED:
            return pos + FIXED[at] * n
        for _ in range(n):
            pos = skip_value(buf, pos, at)
        return pos
    raise ValueError("bad GGUF value type %d at %d" % (t, pos))

def main():
    src, dst = sys.argv[1], sys.argv[2]
    buf = open(src, "rb").read()
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", buf, 0)
    assert magic == b"GGUF" and version in (2, 3), "not a GGUF v2/v3 file"
    pos = 24
    kept = []
    for _ in range(n_kv):
        start = pos
        (kl,) = struct.unpack_from("<Q", buf, pos)
        key = buf[pos + 8:pos + 8 + kl].decode()
        pos += 8 + kl
        (t,) = struct.unpack_from("<I", buf, pos)
        pos = skip_value(buf, pos + 4, t)
        if key.startswith("tokenizer.") and key != "tokenizer.chat_template" or \
                key in ("general.architecture", "general.name"):
            kept.append(buf[start:pos])
    with open(dst, "wb") as f:
        f.write(struct.pack("<4sIQQ", b"GGUF", 3, 0, len(kept)))
        for kv in kept:
            f.write(kv)

if __name__ == "__main__":
    main()
