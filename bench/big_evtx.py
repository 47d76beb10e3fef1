#!/usr/bin/env python3
"""Writes one big EVTX file made of the real chunks of the EVTX-ATTACK-SAMPLES
corpus (cycled), with EventRecordIDs renumbered 1.. in file order and every
CRC32 rewritten, so no chunk is a copy of another (issue #20 item 7: peak
RSS must stay flat from 0.2 GB to >= 4 GB for one EVTX file).

usage: big_evtx.py CORPUS_DIR OUT_FILE CHUNKS   (CHUNKS <= 65535: a u16 in the header)
"""
import os
import struct
import sys
import zlib

HDR, CHUNK = 4096, 65536


def chunks_of(path):
    with open(path, "rb") as f:
        b = f.read()
    if not b.startswith(b"ElfFile\0"):
        return
    for c in range((len(b) - HDR) // CHUNK):
        ch = b[HDR + c * CHUNK: HDR + (c + 1) * CHUNK]
        if not ch.startswith(b"ElfChnk\0"):
            break
        free = struct.unpack_from("<I", ch, 48)[0]
        if 512 < free <= CHUNK:
            yield ch


def main():
    corpus, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    assert 0 < n <= 65535
    files = sorted(
        os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs if f.endswith(".evtx")
    )
    src = [c for p in files for c in chunks_of(p)]
    with open(files[0], "rb") as f:
        header = bytearray(f.read(HDR))
    next_id = 1
    with open(out, "wb") as o:
        o.write(b"\0" * HDR)
        for i in range(n):
            c = bytearray(src[i % len(src)])
            free = struct.unpack_from("<I", c, 48)[0]
            first, at = next_id, 512
            while at + 24 <= free and c[at: at + 4] == b"\x2a\x2a\0\0":
                size = struct.unpack_from("<I", c, at + 4)[0]
                if size < 24:
                    break
                struct.pack_into("<Q", c, at + 8, next_id)
                next_id += 1
                at += size
            last = next_id - 1
            for off in (8, 24):
                struct.pack_into("<Q", c, off, first)
            for off in (16, 32):
                struct.pack_into("<Q", c, off, last)
            struct.pack_into("<I", c, 52, zlib.crc32(c[512:free]))
            struct.pack_into("<I", c, 124, zlib.crc32(bytes(c[:120]) + bytes(c[128:512])))
            o.write(c)
        struct.pack_into("<Q", header, 8, 0)
        struct.pack_into("<Q", header, 16, n - 1)
        struct.pack_into("<Q", header, 24, next_id)
        struct.pack_into("<H", header, 0x2A, n)
        struct.pack_into("<I", header, 124, zlib.crc32(bytes(header[:120])))
        o.seek(0)
        o.write(header)
    print(f"{out}: {n} chunks, {next_id - 1} records", file=sys.stderr)


if __name__ == "__main__":
    main()
