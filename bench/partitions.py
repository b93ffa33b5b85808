#!/usr/bin/env python3
"""bench/partitions.py - many partitions with a few records each, on one daemon, under an open-files limit.

Issue 15 item 4's measurement: a topic set of --partitions partitions (default 10,000) with
--records-per-partition records each (default 3) is archived completely by one kafkatos3 instance run
under `prlimit --nofile=N:N` (soft AND hard limit, default 1024: the daemon raises its soft limit to the
hard one at start, so only a hard limit binds), with peak RSS inside `memory_limit_bytes`.

Against private services (bench/run.py's: a Tansu broker and, with --store s3, an s3s-fs server, on free
loopback ports, state under a fresh /tmp/kafkatos3-partitions.* dir, stopped on exit):

  1. create --topics topics (default 10) sharing the partitions evenly, in one CreateTopics request,
     and wait until the broker's metadata shows every partition (creation time);
  2. produce --records-per-partition records of --record-bytes to every partition, with an explicit
     partition (produce time); end offsets from the delivery reports;
  3. run the daemon (consumer_processes --consumer-processes, memory_limit_bytes --memory-limit,
     max_age_seconds --max-age-seconds, flush_interval_ms its default) under prlimit, sampling every
     --sample-interval s its open file descriptors (entries of /proc/PID/fd) and VmRSS, until its group's
     committed offsets equal every partition's end offset (it commits only what is archived);
  4. read its VmHWM, SIGTERM it and time its exit (must be 0 within shutdown_timeout_seconds);
  5. check the archive on its own: `kafkatos3 verify --offline` (every partition covered, no gap) and
     `kafkatos3 ls --json` (objects, records per partition against the end offsets), and count the
     objects in the store; count the daemon log's "too many open files" lines (must be 0), its WARN and
     ERROR lines, and its "open files limit" line;
  6. print a table and write the result as JSON (--json).

Usage: bench/partitions.py [--partitions 10000] [--topics 10] [--records-per-partition 3]
                           [--nofile 1024 | --nofile 0 (no prlimit)] [--store s3|dir]
                           [--consumer-processes 2] [--memory-limit 256MiB] [--daemon PATH] [--json FILE]
                           (see --help)
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (bench/run.py: services, /proc readings, helpers)


def log(msg):
    bench.log(msg)


# ---------------------------------------------------------------- services
def start_services(svc, store, bucket):
    """bench.Services.start for s3; with a directory store only the broker."""
    if store == "s3":
        svc.start([bucket])
        return
    env = dict(svc.env, KAFKA_PORT=str(svc.kafka_port))
    subprocess.run([os.path.join(bench.INFRA, "start-kafka.sh")], env=env, check=True, stdout=subprocess.DEVNULL)
    svc.started.append("stop-kafka.sh")


# ---------------------------------------------------------------- topics and records
def topic_names(args):
    return [f"{args.topic_prefix}{i}" for i in range(args.topics)]


def partitions_of(args):
    """[(topic, partition count)]: the partitions shared evenly, the first topics taking the remainder."""
    base, extra = divmod(args.partitions, args.topics)
    return [(t, base + (1 if i < extra else 0)) for i, t in enumerate(topic_names(args))]


def create_topics(bootstrap, layout, timeout):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    t0 = time.monotonic()
    futures = admin.create_topics([NewTopic(t, num_partitions=n, replication_factor=1) for t, n in layout],
                                  request_timeout=timeout, operation_timeout=timeout)
    for fut in futures.values():
        fut.result(timeout=timeout)
    created_s = time.monotonic() - t0
    want = dict(layout)
    while True:
        md = admin.list_topics(timeout=timeout)
        have = {t: len(md.topics[t].partitions) if t in md.topics else 0 for t in want}
        if have == want:
            break
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"topics did not reach their partition counts in {timeout} s: {have}")
        time.sleep(0.5)
    return created_s, time.monotonic() - t0


def produce(bootstrap, layout, per_partition, record_bytes):
    """Every partition gets `per_partition` records, sent with an explicit partition. Returns
    ({(topic, partition): end offset}, seconds)."""
    from confluent_kafka import Producer
    end_offsets, errors = {}, []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            key = (msg.topic(), msg.partition())
            if msg.offset() + 1 > end_offsets.get(key, 0):
                end_offsets[key] = msg.offset() + 1

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 50,
                         "queue.buffering.max.messages": 1_000_000, "compression.type": "none"})
    t0 = time.monotonic()
    sent = 0
    for r in range(per_partition):
        for topic, n in layout:
            for p in range(n):
                value = (b"record %d of %s/%d " % (r, topic.encode(), p)).ljust(record_bytes, b".")
                while True:
                    try:
                        producer.produce(topic, value=value, partition=p, on_delivery=on_delivery)
                        break
                    except BufferError:
                        producer.poll(0.05)
                sent += 1
                if sent % 1000 == 0:
                    producer.poll(0)
    remaining = producer.flush(300)
    if errors or remaining:
        raise RuntimeError(f"produce failed: {remaining} undelivered, errors {errors[:3]}")
    want = {(t, p): per_partition for t, n in layout for p in range(n)}
    if end_offsets != want:
        odd = {k: v for k, v in end_offsets.items() if want.get(k) != v}
        raise RuntimeError(f"end offsets differ from the records sent: {list(odd.items())[:5]} "
                           f"({len(end_offsets)} partitions delivered, {len(want)} expected)")
    return end_offsets, time.monotonic() - t0


class CommitProbe:
    """A group's committed offsets for every (topic, partition) (OffsetFetch), without joining it."""

    def __init__(self, bootstrap, group, keys):
        from confluent_kafka import Consumer, TopicPartition
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        self.tps = [TopicPartition(t, p) for t, p in keys]

    def committed(self):
        try:
            return {(tp.topic, tp.partition): tp.offset for tp in self.consumer.committed(self.tps, timeout=30)}
        except Exception as e:  # the group may not exist yet
            log(f"  committed(): {e}")
            return {}

    def close(self):
        self.consumer.close()


# ---------------------------------------------------------------- the daemon
def daemon_config(args, svc, work, group, bucket, topics, archive_dir):
    if args.store == "s3":
        store = f"""s3_bucket_name = {bucket}
s3_endpoint = {svc.endpoint}
s3_region = us-east-1
s3_access_key = {bench.S3_AK}
s3_secret_key = {bench.S3_SK}
"""
        store_section = ""
    else:
        store = ""
        store_section = f"\n[store]\nurl = file://{archive_dir}\n"
    return f"""# written by bench/partitions.py
[main]
log.level = INFO
working_directory = {work}
memory_limit_bytes = {args.memory_limit}
shutdown_timeout_seconds = {args.shutdown_timeout}

[consumer]
consumer_processes = {args.consumer_processes}
kafka_bootstrap = {svc.bootstrap}
kafka_consumer_group = {group}
kafka_auto_offset_reset = earliest
consumer_nice_level = 0
topic_whitelist = {",".join(topics)}
max_age_seconds = {args.max_age_seconds}

[compression]
compressor_workers = {args.compressor_workers}
compression_nice_level = 0

[s3]
s3uploader_workers = {args.uploader_workers}
{store}topic_whitelist = {",".join(topics)}
{store_section}
[kafka]
# the test broker (Tansu) takes session.timeout.ms / 2 for every group join
session.timeout.ms = 6000
"""


class FdRssSampler(threading.Thread):
    """Every `interval` s: the process's open file descriptors (entries of /proc/PID/fd) and VmRSS."""

    def __init__(self, pid, t0, interval):
        super().__init__(daemon=True)
        self.pid, self.t0, self.interval = pid, t0, interval
        self.series = []  # [seconds since spawn, fds, VmRSS KiB]
        self.peak_fds = self.peak_rss_kb = 0
        self.peak_fds_at = None
        self.stop_flag = threading.Event()

    def sample(self):
        try:
            fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return
        rss = bench.proc_status_kb(self.pid, "VmRSS")
        t = time.monotonic() - self.t0
        self.series.append([round(t, 2), fds, rss])
        if fds > self.peak_fds:
            self.peak_fds, self.peak_fds_at = fds, t
        self.peak_rss_kb = max(self.peak_rss_kb, rss)

    def run(self):
        while not self.stop_flag.is_set():
            self.sample()
            self.stop_flag.wait(self.interval)

    def stop(self):
        self.stop_flag.set()
        self.join()


LEVEL_RE = re.compile(r"^\S+Z +(ERROR|WARN)\b")


def scan_log(path):
    """Counts and first lines of what matters in the daemon's log."""
    out = {"too_many_open_files": 0, "warn": 0, "error": 0, "open_files_limit_lines": [], "first_errors": [],
           "first_warnings": [], "assigned_lines": 0, "sealed": 0, "uploaded": 0}
    with open(path, errors="replace") as f:
        for line in f:
            low = line.lower()
            if "too many open files" in low or "emfile" in low:
                out["too_many_open_files"] += 1
            if "open files limit" in low and len(out["open_files_limit_lines"]) < 4:
                out["open_files_limit_lines"].append(line.rstrip()[:400])
            m = LEVEL_RE.match(line)
            if m:
                key = m.group(1).lower()
                out[key] += 1
                first = out["first_errors" if key == "error" else "first_warnings"]
                if len(first) < 10:
                    first.append(line.rstrip()[:400])
            if " assigned " in line:
                out["assigned_lines"] += 1
            if " sealed " in line:
                out["sealed"] += 1
            if " uploaded " in line:
                out["uploaded"] += 1
    return out


def store_objects(args, svc, bucket, archive_dir):
    """(objects, bytes) of MAK objects in the store (claims and the store probe under _kafkatos3/ not counted)."""
    n = size = 0
    if args.store == "s3":
        s3 = svc.s3()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                if "/_kafkatos3/" not in "/" + obj["Key"] and ".mak" in obj["Key"]:
                    n += 1
                    size += obj["Size"]
    else:
        for root, dirs, files in os.walk(archive_dir):
            if "_kafkatos3" in dirs:
                dirs.remove("_kafkatos3")
            for name in files:
                if ".mak" in name:
                    n += 1
                    size += os.path.getsize(os.path.join(root, name))
    return n, size


def check_archive(args, svc, cfg, work, end_offsets, env):
    """`verify --offline` and `ls --json` against the store; returns a dict."""
    out = {}
    t0 = time.monotonic()
    v = subprocess.run([args.daemon, "verify", "--config", cfg, "--offline", "--json"], capture_output=True,
                       text=True, env=env)
    out["verify_s"] = time.monotonic() - t0
    out["verify_exit_status"] = v.returncode
    with open(os.path.join(work, "verify.json"), "w") as f:
        f.write(v.stdout)
    with open(os.path.join(work, "verify.stderr"), "w") as f:
        f.write(v.stderr)
    t0 = time.monotonic()
    ls = subprocess.run([args.daemon, "ls", "--config", cfg, "--json"], capture_output=True, text=True, env=env)
    out["ls_s"] = time.monotonic() - t0
    out["ls_exit_status"] = ls.returncode
    with open(os.path.join(work, "ls.json"), "w") as f:
        f.write(ls.stdout)
    try:
        listing = json.loads(ls.stdout)
    except ValueError:
        out["ls_error"] = (ls.stdout + ls.stderr)[-2000:]
        return out
    # Partitions listed with their highest archived offset + 1, against the end offsets.
    covered = {}
    for entry in find_partition_entries(listing):
        covered[(entry["topic"], entry["partition"])] = entry
    out["ls_partitions"] = len(covered)
    short = []
    for key, end in end_offsets.items():
        e = covered.get(key)
        last = None
        if e is not None:
            for k in ("last_offset", "to_offset", "max_offset", "end_offset"):
                if isinstance(e.get(k), int):
                    last = e[k] + (1 if k != "end_offset" else 0)
                    break
        if last is None or last < end:
            short.append([key[0], key[1], last, end])
    out["ls_partitions_short"] = len(short)
    out["ls_short_examples"] = short[:10]
    return out


def find_partition_entries(doc):
    """Dicts with 'topic' and 'partition' keys anywhere in `ls --json`'s document (its exact shape aside)."""
    stack = [(doc, None)]
    while stack:
        node, topic = stack.pop()
        if isinstance(node, dict):
            t = node.get("topic", topic) if isinstance(node.get("topic", topic), str) else topic
            if isinstance(node.get("partition"), int) and t is not None:
                yield dict(node, topic=t)
                continue
            for v in node.values():
                stack.append((v, t))
        elif isinstance(node, list):
            for v in node:
                stack.append((v, topic))


def run_daemon(args, svc, state, end_offsets, topics, bucket, archive_dir, result):
    """Fills `result` (so that a failure leaves what was measured)."""
    work = os.path.join(state, "daemon")
    os.makedirs(os.path.join(work, "wd"))
    group = "partitions-bench"
    cfg = os.path.join(work, "kafkatos3.cfg")
    with open(cfg, "w") as f:
        f.write(daemon_config(args, svc, os.path.join(work, "wd"), group, bucket, topics, archive_dir))
    env = dict(os.environ)
    env.pop("RUST_LOG", None)
    log_path = os.path.join(work, "daemon.log")
    cmd = [args.daemon, cfg]
    if args.nofile:
        # prlimit execs the daemon: the pid is the daemon's.
        cmd = ["prlimit", f"--nofile={args.nofile}:{args.nofile}", "--"] + cmd
    probe = CommitProbe(svc.bootstrap, group, list(end_offsets))
    result.update(command=cmd, config=cfg, log=log_path, work=work)
    t0 = time.monotonic()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    sampler = FdRssSampler(proc.pid, t0, args.sample_interval)
    sampler.start()
    done = False
    try:
        last_report = 0
        while True:
            committed = probe.committed()
            behind = sum(1 for k, o in end_offsets.items() if committed.get(k, -1) < o)
            now = time.monotonic() - t0
            if behind == 0:
                result["archive_all_s"] = now
                done = True
                break
            if now - last_report >= 15:
                last_report = now
                log(f"  {now:.0f} s: {len(end_offsets) - behind} of {len(end_offsets)} partitions committed to "
                    f"their end; fds {sampler.series[-1][1] if sampler.series else '-'}, "
                    f"RSS {(sampler.series[-1][2] / 1024) if sampler.series else 0:.1f} MiB")
            if proc.poll() is not None:
                raise RuntimeError(f"kafkatos3 exited ({proc.returncode}) before archiving everything; see {log_path}")
            if now > args.timeout:
                result["partitions_behind_at_timeout"] = behind
                raise RuntimeError(f"kafkatos3 did not archive everything in {args.timeout} s: {behind} partitions "
                                   f"behind; see {log_path}")
            time.sleep(args.poll_interval)
        # Keep sampling a little after the end: files close at the flush after the last record.
        time.sleep(args.settle_seconds)
        result["hwm_kb"] = bench.proc_status_kb(proc.pid, "VmHWM")
        result["fds_at_end"] = sampler.series[-1][1] if sampler.series else None
        result["cpu_s"] = bench.cpu_seconds(proc.pid)
        try:
            with open(f"/proc/{proc.pid}/limits") as f:
                result["limits_nofile"] = next((ln.strip() for ln in f if ln.startswith("Max open files")), None)
        except OSError:
            pass
    finally:
        if "hwm_kb" not in result and proc.poll() is None:  # a timeout: the peak so far
            result["hwm_kb"] = bench.proc_status_kb(proc.pid, "VmHWM")
        sampler.stop()
        probe.close()
        # SIGTERM, then time the exit against shutdown_timeout_seconds (+ 10 s of slack before SIGKILL).
        ts = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(args.shutdown_timeout + 10)
            except subprocess.TimeoutExpired:
                log(f"kafkatos3 still running {args.shutdown_timeout + 10} s after SIGTERM: SIGKILL")
                result["killed"] = True
        result["shutdown_s"] = time.monotonic() - ts
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            proc.wait(10)
        result["exit_status"] = proc.returncode
        result["fd_rss_series"] = sampler.series
        result["peak_fds"], result["peak_fds_at_s"] = sampler.peak_fds, sampler.peak_fds_at
        result["peak_sampled_rss_kb"] = sampler.peak_rss_kb
        result["log_scan"] = scan_log(log_path)
    result["done"] = done
    if done:
        result["archive"] = check_archive(args, svc, cfg, work, end_offsets, env)
        result["objects"], result["object_bytes"] = store_objects(args, svc, bucket, archive_dir)


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--partitions", type=int, default=10000, help="partitions in total, over --topics topics")
    ap.add_argument("--topics", type=int, default=10, help="topics sharing the partitions evenly")
    ap.add_argument("--topic-prefix", default="parts")
    ap.add_argument("--records-per-partition", type=int, default=3)
    ap.add_argument("--record-bytes", type=int, default=100)
    ap.add_argument("--nofile", type=int, default=1024,
                    help="run the daemon under prlimit --nofile=N:N (soft and hard); 0: no prlimit (the shell's)")
    ap.add_argument("--store", choices=["s3", "dir"], default="s3",
                    help="s3: a private s3s-fs server; dir: a file:// archive directory in the state dir")
    ap.add_argument("--consumer-processes", type=int, default=2)
    ap.add_argument("--memory-limit", default="256MiB", help="memory_limit_bytes")
    ap.add_argument("--max-age-seconds", type=int, default=5)
    ap.add_argument("--shutdown-timeout", type=float, default=30, help="shutdown_timeout_seconds")
    ap.add_argument("--compressor-workers", type=int, default=2)
    ap.add_argument("--uploader-workers", type=int, default=2)
    ap.add_argument("--sample-interval", type=float, default=0.5, help="seconds between fd / RSS samples")
    ap.add_argument("--poll-interval", type=float, default=2, help="seconds between committed-offset reads")
    ap.add_argument("--settle-seconds", type=float, default=3,
                    help="keep sampling this long after everything is committed, before SIGTERM")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds the daemon may take to archive all")
    ap.add_argument("--daemon", default=os.path.join(bench.ROOT, "target", "release", "kafkatos3"))
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--keep", action="store_true", help="keep the state dir (always kept after a failure)")
    args = ap.parse_args()
    args.daemon = os.path.abspath(args.daemon)
    if args.topics < 1 or args.partitions < args.topics:
        sys.exit("need --partitions >= --topics >= 1")
    budget = bench.parse_size(args.memory_limit)

    state = tempfile.mkdtemp(prefix="kafkatos3-partitions.", dir="/tmp")
    svc = bench.Services(state)
    bucket = "partitions-bench"
    archive_dir = os.path.join(state, "archive")
    layout = partitions_of(args)
    results = {"machine": bench.machine(), "args": vars(args), "state_dir": state, "load_before": bench.loadavg(),
               "layout": layout, "memory_limit_bytes": budget}
    ok = False
    try:
        log(f"state {state}; load average {results['load_before']}")
        start_services(svc, args.store, bucket)
        log(f"broker {svc.bootstrap}" + (f", s3 {svc.endpoint}" if args.store == "s3" else f", archive {archive_dir}"))
        log(f"creating {args.topics} topics x ~{args.partitions // args.topics} partitions = {args.partitions}")
        results["create_request_s"], results["create_s"] = create_topics(svc.bootstrap, layout, 600)
        log(f"  created in {results['create_request_s']:.1f} s, all partitions in metadata after "
            f"{results['create_s']:.1f} s")
        end_offsets, results["produce_s"] = produce(svc.bootstrap, layout, args.records_per_partition,
                                                    args.record_bytes)
        results["records"] = sum(end_offsets.values())
        log(f"  produced {results['records']:,} records in {results['produce_s']:.1f} s")
        log(f"kafkatos3 {args.daemon}" + (f" under prlimit --nofile={args.nofile}:{args.nofile}" if args.nofile
                                          else " (no prlimit)") + f"; load average {bench.loadavg()}")
        r = results["daemon"] = {}
        run_daemon(args, svc, state, end_offsets, [t for t, _ in layout], bucket, archive_dir, r)
        ok = (r["done"] and r["exit_status"] == 0 and r["log_scan"]["too_many_open_files"] == 0
              and r["archive"].get("verify_exit_status") == 0)
    finally:
        results["load_after"] = bench.loadavg()
        svc.stop()
        r = results.get("daemon")
        if r and "log_scan" in r:
            scan = r["log_scan"]
            a = r.get("archive", {})
            rows = [
                ["partitions (topics)", f"{args.partitions:,} ({args.topics})"],
                ["records (per partition, bytes)", f"{results.get('records', 0):,} ({args.records_per_partition}, "
                                                   f"{args.record_bytes} B)"],
                ["topic creation s (request / all in metadata)",
                 f"{results['create_request_s']:.1f} / {results['create_s']:.1f}"],
                ["produce s", f"{results['produce_s']:.1f}"],
                ["open-files limit", f"prlimit {args.nofile}:{args.nofile}" if args.nofile else "none (shell's)"],
                ["daemon's open files limit line", (scan["open_files_limit_lines"] or ["-"])[0].split(": ", 1)[-1]],
                ["time to archive all s (spawn to all committed)", bench.num(r.get("archive_all_s"))],
                ["peak open fds (sampled every %.1f s)" % args.sample_interval,
                 f"{r['peak_fds']} at {bench.num(r['peak_fds_at_s'])} s"],
                ["open fds at the end", str(r.get("fds_at_end"))],
                ["peak RSS MiB (VmHWM) / memory_limit_bytes MiB",
                 f"{r.get('hwm_kb', 0) / 1024:.1f} / {budget / (1 << 20):.0f}"],
                ["peak sampled VmRSS MiB", f"{r['peak_sampled_rss_kb'] / 1024:.1f}"],
                ["daemon CPU s", bench.num(r.get("cpu_s"))],
                ["objects in the store (bytes)", f"{r.get('objects', '-')} ({r.get('object_bytes', '-')})"],
                ["verify --offline exit", str(a.get("verify_exit_status"))],
                ["ls: partitions listed / short of the end", f"{a.get('ls_partitions')} / {a.get('ls_partitions_short')}"],
                ["'too many open files' log lines", str(scan["too_many_open_files"])],
                ["WARN / ERROR log lines", f"{scan['warn']} / {scan['error']}"],
                ["SIGTERM to exit s (exit status)", f"{r['shutdown_s']:.1f} ({r['exit_status']})"],
            ]
            print(f"\n{args.partitions:,} partitions, load average before {results['load_before']}, after "
                  f"{results['load_after']}\n")
            print(bench.markdown(["", "value"], rows))
            for line in scan["first_errors"][:5] + scan["first_warnings"][:5]:
                print("  log: " + line)
            print(f"\ndaemon log: {r['log']}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1, default=str)
            log(f"results written to {args.json}")
        if args.keep or not ok:
            log(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
