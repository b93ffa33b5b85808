#!/usr/bin/env python3
"""bench/memory.py - kafkatos3's peak RSS against its memory budget, by partition count.

For each partition count in --partitions (default 8,200,2000), against private services (bench/run.py's:
a Tansu broker and an s3s-fs server on free loopback ports, state under a fresh /tmp dir, stopped on exit):

  1. idle: an empty topic of N partitions; the daemon joins, is assigned all N, and sits idle for
     --idle-seconds; its VmRSS then is the idle footprint (fixed base + N idle partitions). Then
     10 records of --record-bytes go to every partition (each opens a file and fills a write
     buffer), and after --idle-seconds more VmRSS is read again: partitions that were busy and went
     idle (files stay open: max_age_seconds is 600 in this run);
  2. drain: the topic is prefilled with --total-bytes spread round-robin over the N partitions (so
     every partition is busy at once) and a second daemon (fresh group) drains it into S3 until its
     committed offsets reach every end offset; its VmHWM (peak RSS over its whole life) is the
     peak under load.

Both daemons run with [main] memory_limit_bytes = --memory-limit. The table: idle RSS, the idle
RSS per partition beyond the smallest count's, peak RSS, and peak RSS minus the limit (what the
fixed base must cover). MiB = 2^20 bytes.

Usage: bench/memory.py [--partitions 8,200,2000] [--memory-limit 256MiB] [--total-bytes 256MiB]
                       [--record-bytes 1000] [--json FILE] [--keep]
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
import run as bench  # noqa: E402  (bench/run.py: services, prefill, /proc sampling)


def start_daemon(args, svc, work, group, bucket):
    os.makedirs(os.path.join(work, "wd"))
    cfg = os.path.join(work, "kafkatos3.cfg")
    text = bench.daemon_config(args, svc, os.path.join(work, "wd"), group, bucket, "gzip")
    if args.memory_limit != "none":  # none: a daemon from before the budget existed
        text = text.replace("[main]\n", f"[main]\nmemory_limit_bytes = {args.memory_limit}\n", 1)
    with open(cfg, "w") as f:
        f.write(text)
    env = dict(os.environ)
    env.pop("RUST_LOG", None)
    out = open(os.path.join(work, "daemon.log"), "w")
    return subprocess.Popen([args.daemon, cfg], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True)


def assigned_count(log_path):
    """Partitions named in the daemon's last `assigned` log line (0 before the first)."""
    count = 0
    with open(log_path, errors="replace") as f:
        for line in f:
            if " assigned " in line and "partitions=" in line:
                count = line.split("partitions=", 1)[1].count(bench.TOPIC + ":")
    return count


def create_topic(svc, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": svc.bootstrap})
    for fut in admin.create_topics([NewTopic(bench.TOPIC, num_partitions=partitions,
                                             replication_factor=1)]).values():
        fut.result(timeout=60)


def idle_run(args, svc, state, n):
    bench.TOPIC = f"idle{n}"
    create_topic(svc, n)
    work = os.path.join(state, f"idle-{n}")
    # Files stay open (not sealed by age) while the partitions are idle.
    proc = start_daemon(argparse.Namespace(**dict(vars(args), max_age_seconds=600)), svc, work, f"idle-{n}",
                        "bench-mem")
    t0 = time.monotonic()
    try:
        while assigned_count(os.path.join(work, "daemon.log")) < n:
            if proc.poll() is not None or time.monotonic() - t0 > args.timeout:
                raise RuntimeError(f"daemon not assigned {n} partitions; see {work}/daemon.log")
            time.sleep(0.5)
        assigned_s = time.monotonic() - t0
        time.sleep(args.idle_seconds)
        rss_kb = bench.proc_status_kb(proc.pid, "VmRSS")
        touch_every_partition(svc, n, args.record_bytes)
        time.sleep(args.idle_seconds)
        touched_kb = bench.proc_status_kb(proc.pid, "VmRSS")
        hwm_kb = bench.proc_status_kb(proc.pid, "VmHWM")
    finally:
        bench.stop_tree(proc, 60)
    return {"assigned_s": assigned_s, "idle_rss_mib": rss_kb / 1024, "touched_idle_rss_mib": touched_kb / 1024,
            "idle_hwm_mib": hwm_kb / 1024}


def touch_every_partition(svc, n, record_bytes):
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": svc.bootstrap, "linger.ms": 20})
    for p in range(n):
        for _ in range(10):
            producer.produce(bench.TOPIC, value=b"x" * record_bytes, partition=p)
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("touching every partition: records undelivered")


def drain_run(args, svc, state, n):
    bench.TOPIC = f"drain{n}"
    records = args.total_bytes // args.record_bytes
    end_offsets, prefill_s = bench.prefill(svc.bootstrap, n, args.record_bytes, records)
    work = os.path.join(state, f"drain-{n}")
    group = f"drain-{n}"
    probe = bench.CommitProbe(svc.bootstrap, group, n)
    proc = start_daemon(args, svc, work, group, "bench-mem")
    t0 = time.monotonic()
    try:
        while not bench.reached(probe.committed(), end_offsets):
            if proc.poll() is not None or time.monotonic() - t0 > args.timeout:
                raise RuntimeError(f"daemon did not drain {n} partitions; see {work}/daemon.log")
            time.sleep(0.5)
        wall = time.monotonic() - t0
        hwm_kb = bench.proc_status_kb(proc.pid, "VmHWM")
    finally:
        rc = bench.stop_tree(proc, 60)
        probe.close()
    return {"prefill_s": prefill_s, "records": records, "drain_s": wall, "peak_rss_mib": hwm_kb / 1024,
            "exit_status": rc}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--partitions", default="8,200,2000")
    ap.add_argument("--skip-drain", action="store_true", help="only the idle and busy-then-idle phases")
    ap.add_argument("--memory-limit", default="256MiB",
                    help="memory_limit_bytes; 'none' leaves it out (to measure a daemon without the budget)")
    ap.add_argument("--total-bytes", type=bench.parse_size, default=bench.parse_size("256MiB"))
    ap.add_argument("--record-bytes", type=int, default=1000)
    ap.add_argument("--idle-seconds", type=float, default=5)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--daemon", default=os.path.join(bench.ROOT, "target", "release", "kafkatos3"))
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    # What bench.daemon_config reads.
    args.max_age_seconds, args.max_file_bytes, args.ours_check_interval = 5, "64MiB", 60
    args.compressor_workers, args.uploader_workers, args.consumer_processes = 2, 2, 1
    args.kafka, args.metrics = [], False
    counts = [int(x) for x in args.partitions.split(",")]

    state = tempfile.mkdtemp(prefix="kafkatos3-membench.", dir="/tmp")
    svc = bench.Services(state)
    results = {"machine": bench.machine(), "args": vars(args), "load_before": bench.loadavg(), "runs": {}}
    ok = False
    try:
        svc.start(["bench-mem"])
        for n in counts:
            bench.log(f"{n} partitions: idle run; load {bench.loadavg()}")
            r = idle_run(args, svc, state, n)
            bench.log(f"  idle RSS {r['idle_rss_mib']:.1f} MiB (assigned after {r['assigned_s']:.1f} s), "
                      f"busy then idle {r['touched_idle_rss_mib']:.1f} MiB")
            if not args.skip_drain:
                bench.log(f"{n} partitions: drain run, {args.total_bytes >> 20} MiB; load {bench.loadavg()}")
                r.update(drain_run(args, svc, state, n))
                bench.log(f"  peak RSS {r['peak_rss_mib']:.1f} MiB, drained in {r['drain_s']:.1f} s")
            r["load_after"] = bench.loadavg()
            results["runs"][n] = r
        ok = True
    finally:
        svc.stop()
        runs = results["runs"]
        if runs:
            base_n = min(runs)
            limit_mib = 0 if args.memory_limit == "none" else bench.parse_size(args.memory_limit) / (1 << 20)
            print(f"\nmemory_limit_bytes = {args.memory_limit}; {args.total_bytes >> 20} MiB of "
                  f"{args.record_bytes} B records per drain; load before {results['load_before']}\n")
            print(f"| partitions | idle RSS MiB | bytes/partition (vs {base_n}) | busy-then-idle RSS MiB "
                  f"| bytes/partition (vs {base_n}) | peak RSS MiB (drain) | peak - limit MiB | drain s |")
            print("|---:|---:|---:|---:|---:|---:|---:|---:|")

            def per(r, n, key):
                if n == base_n:
                    return "-"
                return "%.0f" % ((r[key] - runs[base_n][key]) * (1 << 20) / (n - base_n))
            for n, r in sorted(runs.items()):
                print(f"| {n} | {r['idle_rss_mib']:.1f} | {per(r, n, 'idle_rss_mib')} | "
                      f"{r['touched_idle_rss_mib']:.1f} | {per(r, n, 'touched_idle_rss_mib')} | "
                      f"{r.get('peak_rss_mib', 0):.1f} | {r.get('peak_rss_mib', 0) - limit_mib:+.1f} | "
                      f"{r.get('drain_s', 0):.0f} |")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2, default=str)
        if args.keep or not ok:
            bench.log(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
