#!/usr/bin/env python3
"""bench/export.py - how fast `kafkatos3 export` turns an archive into Parquet, next to decoding
the same objects to nowhere.

On one machine, against private services (a Tansu broker and an s3s-fs server on free loopback
ports, state under a fresh /tmp/kafkatos3-bench.* dir, stopped on exit):

  1. prefill topic `bench` as bench/run.py does (--partitions, --record-bytes, --total-bytes);
  2. archive it with the daemon (zstd by default, --codec) until its committed offsets reach the end;
  3. then, --rounds times, in turn:
     (a) decode: `kafkatos3 verify --deep --offline`, which downloads every object and decodes and
         checks every record, writing nothing: the archive's read-and-decode speed (what `parse`
         does, without printing);
     (b) export to a directory: `kafkatos3 export --to file:///STATE/lake-N` (a new one each round);
     (c) export to S3: `kafkatos3 export --to s3://bench-restore/lake-N` (the same S3 server);
     each timed from spawn to exit, with its peak RSS and CPU seconds (wait4).
  4. print MB/s of archive in and records/s of each, export/decode, and write JSON.

Usage: bench/export.py [--total-bytes 200MiB] [--partitions 8] [--record-bytes 100] [--codec zstd]
                       [--rounds 3] [--export-args '--parallel 2'] [--no-build] [--json FILE] [--keep]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import restore  # noqa: E402  (bench/restore.py: the archive the daemon makes)
import run  # noqa: E402  (bench/run.py: services, prefill)

ROOT = run.ROOT
BIN = os.path.join(ROOT, "target/release/kafkatos3")


def rusage_run(cmd, env):
    """Runs cmd and waits for it with wait4: (seconds, peak RSS MiB, CPU s, stdout)."""
    t0 = time.monotonic()
    out_path = tempfile.mktemp(prefix="kafkatos3-bench-out.")
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path) as f:
        text = f.read()
    os.unlink(out_path)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{text}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--record-bytes", type=int, default=100)
    ap.add_argument("--total-bytes", type=run.parse_size, default=run.parse_size("200MiB"))
    ap.add_argument("--codec", default="zstd", choices=sorted(run.CODECS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-file-bytes", default="64MiB", help="the archiving daemon's max_file_bytes")
    ap.add_argument("--export-args", default="", help="more flags for kafkatos3 export, e.g. '--parallel 1'")
    ap.add_argument("--no-build", action="store_true", help="use target/release as it is")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "kafkatos3"], cwd=ROOT, check=True)
    total_records = args.total_bytes // args.record_bytes
    state = tempfile.mkdtemp(prefix="kafkatos3-bench.")
    svc = run.Services(state)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=run.S3_AK, AWS_SECRET_ACCESS_KEY=run.S3_SK)
    results = []
    try:
        svc.start(["bench-restore"])
        end_offsets, _ = run.prefill(svc.bootstrap, args.partitions, args.record_bytes, total_records)
        cfg = restore.archive(args, svc, state, end_offsets)
        listing = json.loads(subprocess.run([BIN, "ls", "--config", cfg, "--json"], env=env, check=True,
                                            capture_output=True, text=True).stdout)
        archive_bytes = sum(p["bytes"] for p in listing["partitions"])
        run.log(f"archive: {archive_bytes / 1e6:.1f} MB")
        for round_ in range(1, args.rounds + 1):
            kinds = {
                "decode": [BIN, "verify", "--config", cfg, "--deep", "--offline"],
                "export-dir": [BIN, "export", "--config", cfg, "--to", f"file://{state}/lake-{round_}", "--json",
                               *args.export_args.split()],
                "export-s3": [BIN, "export", "--config", cfg, "--to", f"s3://bench-restore/lake-{round_}", "--json",
                              *args.export_args.split()],
            }
            for kind, cmd in kinds.items():
                run.log(f"{kind} #{round_}; load average {run.loadavg()}")
                seconds, rss, cpu, out = rusage_run(cmd, env)
                result = {"kind": kind, "round": round_, "seconds": seconds, "peak_rss_mib": rss, "cpu_s": cpu,
                          "records": total_records, "archive_bytes": archive_bytes}
                if kind != "decode":
                    report = json.loads(out[out.index("{"):])
                    assert report["records"] == total_records, (report["records"], total_records)
                    result["parquet_bytes"] = report["bytes_written"]
                    result["files"] = report["files_written"]
                result["mb_per_s"] = archive_bytes / 1e6 / seconds
                result["records_per_s"] = total_records / seconds
                run.log(f"  {seconds:.2f} s = {result['mb_per_s']:.1f} MB/s of archive, "
                        f"{result['records_per_s']:,.0f} records/s, peak RSS {rss:.0f} MiB, CPU {cpu:.1f} s")
                results.append(result)
    finally:
        svc.stop()
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    kinds = ["decode", "export-dir", "export-s3"]
    mean = {k: sum(r["seconds"] for r in results if r["kind"] == k) / args.rounds for k in kinds}
    print(f"\n{total_records:,} records x {args.record_bytes} B, {args.partitions} partitions, "
          f"{args.codec} objects: {archive_bytes / 1e6:.1f} MB of archive")
    print("| run | seconds (mean) | MB/s of archive | records/s | peak RSS MiB | CPU s | Parquet MB |")
    print("|---|---|---|---|---|---|---|")
    for kind in kinds:
        rows = [r for r in results if r["kind"] == kind]
        parquet = rows[0].get("parquet_bytes")
        print(f"| {kind} | {mean[kind]:.2f} | {archive_bytes / 1e6 / mean[kind]:.1f} | "
              f"{total_records / mean[kind]:,.0f} | {max(r['peak_rss_mib'] for r in rows):.0f} | "
              f"{sum(r['cpu_s'] for r in rows) / len(rows):.1f} | "
              f"{'' if parquet is None else f'{parquet / 1e6:.1f}'} |")
    for kind in kinds[1:]:
        print(f"{kind} / decode (time): {mean[kind] / mean['decode']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": run.machine(), "args": vars(args), "results": results}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
