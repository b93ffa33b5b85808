#!/usr/bin/env python3
"""bench/restore.py - how fast `kafkatos3 restore` puts an archive back, next to a plain producer.

On one machine, against private services (a Tansu broker and an s3s-fs server on free loopback
ports, state under a fresh /tmp/kafkatos3-bench.* dir, stopped on exit):

  1. prefill topic `bench` as bench/run.py does (--partitions, --record-bytes, --total-bytes);
  2. archive it with the daemon (zstd by default, --codec) until its committed offsets reach the end;
  3. then, --rounds times, alternating:
     (a) ceiling: target/release/examples/produce_ceiling reads every record of `bench` into memory
         (not timed), then produces them to a new topic with exactly the restore's producer settings
         and waits for every acknowledgement: the time of the produce alone;
     (b) restore: `kafkatos3 restore` of the whole archive into a new topic (--topic-map, one new
         topic per run, created by the restore): wall time from spawn to exit, which includes
         listing the archive, the preflight, downloading and decoding the objects, producing,
         the acknowledgements and the final count check.
  4. print records/s of each run and restore/ceiling, and write JSON.

Usage: bench/restore.py [--total-bytes 200MiB] [--partitions 8] [--codec zstd] [--rounds 3]
                        [--no-build] [--json FILE] [--keep]
       bench/restore.py --kill-loop 10 [--kill-rate 10000] [--seed N] [--max-file-bytes 1MiB] --total-bytes 20MiB
                        (a soak: one restore killed 10 times, finished, read back: exactly once?)
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: services, prefill, daemon config)

ROOT = run.ROOT


def archive(args, svc, state, end_offsets):
    """Runs the daemon until everything is in the bucket; returns its config path."""
    work = os.path.join(state, "daemon")
    os.makedirs(os.path.join(work, "wd"))
    cfg = os.path.join(work, "kafkatos3.cfg")
    daemon_args = argparse.Namespace(consumer_processes=1, max_age_seconds=2, max_file_bytes=args.max_file_bytes,
                                     ours_check_interval=60, compressor_workers=os.cpu_count() or 1,
                                     uploader_workers=2, kafka=[], metrics=False, metrics_port=0)
    with open(cfg, "w") as f:
        f.write(run.daemon_config(daemon_args, svc, os.path.join(work, "wd"), "bench-archive", "bench-restore",
                                  args.codec))
    probe = run.CommitProbe(svc.bootstrap, "bench-archive", len(end_offsets))
    t0 = time.monotonic()
    with open(os.path.join(work, "daemon.log"), "w") as out:
        proc = subprocess.Popen([os.path.join(ROOT, "target/release/kafkatos3"), cfg], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while not run.reached(probe.committed(), end_offsets):
            if proc.poll() is not None:
                sys.exit(f"the daemon exited ({proc.returncode}); see {work}/daemon.log")
            if time.monotonic() - t0 > 1800:
                sys.exit("the daemon did not archive the topic in 30 minutes")
            time.sleep(0.5)
    finally:
        probe.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    run.log(f"archived in {time.monotonic() - t0:.1f} s")
    return cfg


def run_ceiling(svc, target):
    out = subprocess.run([os.path.join(ROOT, "target/release/examples/produce_ceiling"), svc.bootstrap, run.TOPIC,
                          target], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_restore(svc, cfg, state, target, perf=False, extra=()):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=run.S3_AK, AWS_SECRET_ACCESS_KEY=run.S3_SK)
    # Profiling only (--perf): perf's own cost makes these timings unfit for the table.
    wrap = ["perf", "record", "-F", "999", "-g", "-o", os.path.join(state, f"perf-{target}.data")] if perf else []
    t0 = time.monotonic()
    out = subprocess.run(wrap + [os.path.join(ROOT, "target/release/kafkatos3"), "restore", "--config", cfg,
                          "--topic-map", f"{run.TOPIC}={target}", "--create-topics",
                          "--state", os.path.join(state, f"{target}.state.json"),
                          "--report", os.path.join(state, f"{target}.report.json"), *extra],
                         env=env, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    if out.returncode != 0:
        sys.exit(f"restore failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    with open(os.path.join(state, f"{target}.report.json")) as f:
        report = json.load(f)
    return {"records": report["records"], "seconds": seconds, "restore_reported_s": report["seconds"],
            "phases": report.get("phases", {})}


def kill_loop(args, svc, cfg, state, end_offsets):
    """--kill-loop N: one restore killed with SIGKILL at N random moments while it produces, then
    run to the end; the target is then read back whole and every partition must hold the source's
    records exactly once, in order (the prefill's values start with their sequence number)."""
    import random
    from confluent_kafka import Consumer, TopicPartition
    rng = random.Random(args.seed)
    target = "bench-killed"
    st = os.path.join(state, f"{target}.state.json")
    cmd = [os.path.join(ROOT, "target/release/kafkatos3"), "restore", "--config", cfg,
           "--topic-map", f"{run.TOPIC}={target}", "--create-topics", "--state", st, "--settle-ms", "1000",
           "--rate-limit", str(args.kill_rate)]
    total = sum(end_offsets.values())
    for i in range(args.kill_loop):
        # Killed while it produces: a run plans for about half a second, and a re-run first waits
        # --settle-ms (1 s here) for the targets' ends to settle.
        delay = (0.5 if i == 0 else 1.5) + rng.uniform(0.1, 1.5)
        with open(os.path.join(state, f"kill-{i + 1}.log"), "w") as log_file:
            proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        run.log(f"kill -9 #{i + 1} after {delay:.1f} s (exit {proc.returncode})")
    report_path = os.path.join(state, "final-report.json")
    out = subprocess.run(cmd + ["--report", report_path], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"the final run failed:\n{out.stdout}{out.stderr}")
    run.log(out.stdout.strip().splitlines()[-1])
    with open(report_path) as f:
        report = json.load(f)
    skipped = sum(p.get("objects_skipped", 0) for p in report["partitions"])
    run.log(f"final run: {sum(p['already_there'] for p in report['partitions']):,} records found there, "
            f"{skipped} objects not read again")
    # Consecutive offsets on both sides: each partition's offset map is one run, whatever was skipped.
    bad_maps = [p["target"] for p in report["partitions"]
                if p["offset_map"] != [{"source_first": 0, "target_first": 0, "count": end_offsets[int(p["source"].rsplit(":", 1)[1])]}]]
    consumer = Consumer({"bootstrap.servers": svc.bootstrap, "group.id": "bench-check", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(target, p, 0) for p in end_offsets])
    seen = {p: [] for p in end_offsets}
    done = set()
    while len(done) < len(end_offsets):
        msg = consumer.poll(5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == -191:  # _PARTITION_EOF
                done.add(msg.partition())
            continue
        seen[msg.partition()].append(int(msg.value().split(b" ", 1)[0]))
    consumer.close()
    problems = 0
    for p, count in end_offsets.items():
        want = list(range(p, p + count * args.partitions, args.partitions))
        if seen[p] != want:
            problems += 1
            run.log(f"partition {p}: {len(seen[p])} records, expected {count}; "
                    f"duplicates {len(seen[p]) - len(set(seen[p]))}, missing {len(set(want) - set(seen[p]))}")
    if bad_maps:
        problems += len(bad_maps)
        run.log(f"offset maps not one run from 0: {bad_maps}")
    verdict = "PASS" if problems == 0 else "FAIL"
    print(f"restore kill loop: {verdict} ({args.kill_loop} kill -9, seed {args.seed}, {total:,} records, "
          f"{problems} partitions wrong)")
    return problems == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--record-bytes", type=int, default=100)
    ap.add_argument("--total-bytes", type=run.parse_size, default=run.parse_size("200MiB"))
    ap.add_argument("--codec", default="zstd", choices=sorted(run.CODECS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-build", action="store_true", help="use target/release as it is")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--restore-args", default="", help="more flags for kafkatos3 restore, e.g. '--parallel 2'")
    ap.add_argument("--perf", action="store_true", help="profile the restores (STATE/perf-TARGET.data; implies --keep)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--kill-loop", type=int, default=0,
                    help="instead of timing: kill -9 one restore N times, finish it, check exactly once")
    ap.add_argument("--kill-rate", type=float, default=10000, help="--rate-limit of the killed restore")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-file-bytes", default="64MiB",
                    help="the archiving daemon's max_file_bytes (smaller: more objects per partition)")
    args = ap.parse_args()
    args.keep = args.keep or args.perf
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "kafkatos3", "--example",
                        "produce_ceiling"], cwd=ROOT, check=True)
    total_records = args.total_bytes // args.record_bytes
    state = tempfile.mkdtemp(prefix="kafkatos3-bench.")
    svc = run.Services(state)
    results = []
    try:
        svc.start(["bench-restore"])
        end_offsets, _ = run.prefill(svc.bootstrap, args.partitions, args.record_bytes, total_records)
        cfg = archive(args, svc, state, end_offsets)
        if args.kill_loop:
            ok = kill_loop(args, svc, cfg, state, end_offsets)
            svc.stop()
            sys.exit(0 if ok else 1)
        for round_ in range(1, args.rounds + 1):
            order = ["ceiling", "restore"] if round_ % 2 else ["restore", "ceiling"]
            for kind in order:
                target = f"bench-{kind}-{round_}"
                run.log(f"{kind} #{round_} -> {target}; load average {run.loadavg()}")
                result = (run_ceiling(svc, target) if kind == "ceiling"
                          else run_restore(svc, cfg, state, target, perf=args.perf, extra=args.restore_args.split()))
                result.update(kind=kind, round=round_, load_after=run.loadavg())
                result["records_per_s"] = result["records"] / result["seconds"]
                phases = ", ".join(f"{k} {v:.2f} s" for k, v in result.get("phases", {}).items())
                run.log(f"  {result['records']} records in {result['seconds']:.2f} s = "
                        f"{result['records_per_s']:,.0f} records/s" + (f" ({phases})" if phases else ""))
                results.append(result)
    finally:
        svc.stop()
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    mean = {k: sum(r["records_per_s"] for r in results if r["kind"] == k) / args.rounds
            for k in ("ceiling", "restore")}
    print(f"\n{total_records:,} records x {args.record_bytes} B, {args.partitions} partitions, {args.codec} objects")
    print("| run | records/s (mean) | runs |")
    print("|---|---|---|")
    for kind in ("ceiling", "restore"):
        runs = ", ".join(f"{r['records_per_s']:,.0f}" for r in results if r["kind"] == kind)
        print(f"| {kind} | {mean[kind]:,.0f} | {runs} |")
    print(f"restore / ceiling: {mean['restore'] / mean['ceiling']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": run.machine(), "args": vars(args), "results": results,
                       "ratio": mean["restore"] / mean["ceiling"]}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
