#!/usr/bin/env python3
"""mak_v3_layouts.py - how the layout of a MAK v3 record block changes the compressed size.

Usage:   python3 bench/mak_v3_layouts.py [--records N] [--partitions N]
Needs:   pip install zstandard lz4   (gzip is zlib's, as in the daemon: level 6; zstd level 3; lz4 frame)

The experiment behind docs/format.md's choice of columns (docs/benchmarks.md, "Archive size"). The
same two corpora as `cargo run --release -p mak --example size_bench` (8 partitions x 250,000 records,
100 records per millisecond, round robin): `repetitive` (key `key-000000123`, value the number
repeated to 87 bytes) and `log-like` (no key, a 100-byte log-line-like value). Each partition is laid
out in blocks of 64 KiB and of 1 MiB three ways, all with varint lengths and delta timestamps and one
CRC per block (zlib's CRC-32 stands in for CRC-32C: random bytes either way):

- `rows`:    per record: timestamp delta, key length, key, value length, value, header count;
- `v3`:      the chosen layout: columns of timestamp deltas, key lengths, value lengths and header
             counts, then each record's key and value side by side (a data column);
- `columns`: every field its own column, keys and values apart too.

It prints bytes per record after each codec, next to the floor (the codec on the bare keys and
values). A prototype, not the format: `size_bench` measures the real writer.
"""
import argparse
import random
import struct
import zlib

import lz4.frame
import zstandard

START_MS = 1_764_504_000_000


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def repetitive(partitions: int, per: int) -> list[list[tuple]]:
    out = [[] for _ in range(partitions)]
    for seq in range(partitions * per):
        value = (str(seq) * 30).encode()[:87]
        out[seq % partitions].append((START_MS + seq // 100, b"key-%09d" % seq, value))
    return out


def log_like(partitions: int, per: int) -> list[list[tuple]]:
    rng = random.Random(1)
    words = ["GET", "POST", "/api/v1/orders", "/api/v1/users", "200", "404", "status", "user", "latency_ms",
             "region=eu-west-1", "region=us-east-1", "ok", "cache=miss", "cache=hit"]
    pool = []
    for _ in range(4096):
        text = ""
        while len(text) < 100:
            text += rng.choice(words) + " " + "%08x" % rng.getrandbits(32) + " "
        pool.append(text.encode())
    out = [[] for _ in range(partitions)]
    for seq in range(partitions * per):
        out[seq % partitions].append((START_MS + seq // 100, None, (b"%d " % seq + pool[seq % 4096])[:100]))
    return out


def blocks(records: list[tuple], bound: int):
    block, size = [], 0
    for record in records:
        block.append(record)
        size += len(record[1] or b"") + len(record[2]) + 4
        if size >= bound:
            yield block
            block, size = [], 0
    if block:
        yield block


def seal(block: list[tuple], body: bytes) -> bytes:
    head = struct.pack(">IBBBIqq", len(body) + 27, 1, 0, 1, len(block), 0, block[0][0])
    return head + body + struct.pack(">I", zlib.crc32(head + body))


def columns_of(block: list[tuple]) -> dict[str, bytearray]:
    cols = {name: bytearray() for name in ("deltas", "key_lens", "value_lens", "headers", "keys", "values", "data")}
    previous = block[0][0]
    for i, (ts, key, value) in enumerate(block):
        if i:
            cols["deltas"] += varint(zigzag(ts - previous))
        previous = ts
        cols["key_lens"] += varint(0 if key is None else len(key) + 1)
        cols["value_lens"] += varint(len(value) + 1)
        cols["headers"] += varint(0)
        cols["keys"] += key or b""
        cols["values"] += value
        cols["data"] += (key or b"") + value
    return cols


def layout(records: list[tuple], bound: int, how: str) -> bytes:
    out = bytearray()
    for block in blocks(records, bound):
        if how == "rows":
            body, previous = bytearray(), block[0][0]
            for ts, key, value in block:
                body += varint(zigzag(ts - previous)) + varint(0 if key is None else len(key) + 1) + (key or b"")
                body += varint(len(value) + 1) + value + varint(0)
                previous = ts
        else:
            cols = columns_of(block)
            names = ["deltas", "key_lens", "value_lens", "headers"]
            names += ["data"] if how == "v3" else ["keys", "values"]
            body = b"".join(cols[name] for name in names)
        out += seal(block, bytes(body))
    return bytes(out)


CODECS = {
    "gzip": lambda data: len(zlib.compress(data, 6)),
    "zstd": lambda data: len(zstandard.ZstdCompressor(level=3).compress(data)),
    "lz4": lambda data: len(lz4.frame.compress(data)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=250_000, help="records per partition")
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    total = args.records * args.partitions
    print(f"bytes per record after the codec; {args.partitions} partitions x {args.records} records")
    print(f"{'corpus':<11} {'layout':<17} {'raw':>6} | " + " ".join(f"{c:>6}" for c in CODECS))
    for name, corpus in (("repetitive", repetitive(args.partitions, args.records)),
                         ("log-like", log_like(args.partitions, args.records))):
        rows = [("floor", [b"".join((k or b"") + v for _, k, v in p) for p in corpus])]
        for bound in (64 << 10, 1 << 20):
            for how in ("rows", "v3", "columns"):
                rows.append((f"{how}, {bound >> 10} KiB", [layout(p, bound, how) for p in corpus]))
        for label, files in rows:
            raw = sum(map(len, files)) / total
            sizes = " ".join(f"{sum(CODECS[c](f) for f in files) / total:>6.2f}" for c in CODECS)
            print(f"{name:<11} {label:<17} {raw:>6.1f} | {sizes}", flush=True)


if __name__ == "__main__":
    main()
