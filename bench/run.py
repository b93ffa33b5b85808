#!/usr/bin/env python3
"""bench/run.py - kafkatos3's drain benchmark, side by side with the read ceiling and the original.

On one machine, in one run, against private services (a Tansu broker and an s3s-fs server on free
loopback ports, state under a fresh /tmp/kafkatos3-bench.* dir, both stopped on exit):

  1. prefill a topic (--partitions, --record-bytes, --total-bytes; records spread round-robin);
  2. (a) ceiling:  target/release/examples/read_ceiling, a plain librdkafka consumer that reads the
                   whole topic and throws it away (no group, no commits, no disk);
     (b) kafkatos3: the daemon drains the topic into the S3 server, once per codec in --codecs, until
                   its group's committed offsets equal every partition's end offset (it commits only
                   what is in S3);
     (b') snapshot: `kafkatos3 snapshot --config F` (--modes snapshot), the one-shot mode: no group, the
                   partitions assigned directly, until it exits (0 = every partition archived to its end);
     (c) original: the original kafkatos3 0.2.0 (PyPI package, its confluent-kafka consumer, gzip
                   subprocesses, boto3 uploads) through bench/original_py3.py, until every record is
                   in S3 (it auto-commits before uploading, so commits alone prove nothing);
  3. print one table (records/s, MB/s, CPU seconds, peak RSS, S3 requests per GiB, ratios), then
     kafkatos3's phases (join, consume, tail) with its consume rate against the ceiling's, its CPU by
     thread family, and the cores used by each run, the broker, the S3 server and the machine
     (bench/procstats.py; method in docs/benchmarks.md); and write the whole result as JSON.

Measurement, per run: wall time from spawning the process until the completion condition holds;
CPU seconds = utime+stime (+ cutime+cstime of reaped children, e.g. the original's gzip processes)
summed over the process tree from /proc, sampled just before it is stopped (os.wait4 rusage for the
ceiling, which exits by itself); peak RSS = the process's VmHWM, or for a process tree (the original:
4 Python processes + gzip) the peak of the summed VmRSS sampled every 0.2 s. S3 requests: counted from
the S3 server's request log (s3s debug log: one line per request), per bucket, each run having its
own bucket. MB = 10^6 bytes of record payload (key + value).

Usage: bench/run.py [--partitions 8] [--record-bytes 100] [--total-bytes 1GiB] [--codecs gzip]
                    [--mak-versions 2,3] [--rounds N] [--skip-original] [--daemon PATH] [--keep] [--json FILE]
                    (see --help)
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstats import (CLK_TCK, DrainSampler, RssSampler, cpu_by_family, cpu_seconds,  # noqa: E402
                       machine_busy_ticks, proc_status_kb, tree_cpu_seconds)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INFRA = os.path.join(ROOT, "scripts", "infra")
TOPIC = "bench"
S3_AK = "kafkatos3-bench-access"
S3_SK = "kafkatos3-bench-secret"

# Codec name -> extra config lines for the daemon, by section (README "[compression]").
CODECS = {
    "gzip": {"compression": {"compression": "gzip"}},
    "zstd": {"compression": {"compression": "zstd"}},
    "lz4": {"compression": {"compression": "lz4"}},
    "none": {"compression": {"compression": "none"}},
}


def log(msg):
    print(f"[bench] {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def parse_size(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 50MiB, 1GiB, 1000000)")
    mult = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]
    return int(float(m.group(1)) * mult)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


# ---------------------------------------------------------------- /proc sampling
def measure_before_stop(pid, sampler):
    """CPU seconds and peak RSS (MB) of a live process tree, just before it is stopped."""
    cpu = tree_cpu_seconds(pid)
    hwm_kb = proc_status_kb(pid, "VmHWM")
    sampler.stop()
    multi = sampler.processes > 1
    peak_kb = max(sampler.peak_kb, hwm_kb) if multi else hwm_kb
    return cpu, peak_kb / 1024, ("sum of tree VmRSS, sampled" if multi else "VmHWM")


def stop_tree(proc, grace_s):
    """SIGTERM the process (it was started in its own session), then SIGKILL its whole group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            log(f"pid {proc.pid} still running {grace_s} s after SIGTERM: SIGKILL to its process group")
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (the original's workers, gzip)
    except ProcessLookupError:
        pass
    if proc.poll() is None:
        proc.wait(10)
    return proc.returncode


# ---------------------------------------------------------------- services
class Services:
    def __init__(self, state):
        self.state = state
        self.env = dict(os.environ, KAFKATOS3_INFRA_DIR=state)
        self.env.pop("RUST_LOG", None)
        self.kafka_port = free_port()
        self.s3_port = free_port()
        while self.s3_port == self.kafka_port:
            self.s3_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.kafka_port}"
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"
        self.s3_log = os.path.join(state, "s3.log")
        self.started = []

    def start(self, buckets):
        env = dict(self.env, KAFKA_PORT=str(self.kafka_port))
        subprocess.run([os.path.join(INFRA, "start-kafka.sh")], env=env, check=True, stdout=subprocess.DEVNULL)
        self.started.append("stop-kafka.sh")
        # s3s logs one `req: Request { method, uri, headers }` line per request at debug level:
        # that log is how S3 requests are counted.
        env = dict(self.env, S3_PORT=str(self.s3_port), S3_ACCESS_KEY=S3_AK, S3_SECRET_KEY=S3_SK,
                   S3_BUCKETS=" ".join(buckets), RUST_LOG="s3s::service=debug")
        subprocess.run([os.path.join(INFRA, "start-s3.sh")], env=env, check=True, stdout=subprocess.DEVNULL)
        self.started.append("stop-s3.sh")

    def stop(self):
        for script in reversed(self.started):
            subprocess.run([os.path.join(INFRA, script)], env=self.env, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.started = []

    def pids(self):
        """{"broker": pid, "s3": pid} from the start scripts' pid files."""
        out = {}
        for name, pidfile in (("broker", "kafka.pid"), ("s3", "s3.pid")):
            try:
                with open(os.path.join(self.state, pidfile)) as f:
                    out[name] = int(f.read().strip())
            except (OSError, ValueError):
                pass
        return out

    def cpu(self):
        """CPU seconds (utime+stime) used so far by the broker and the S3 server, and by the whole
        machine (busy time of all its CPUs: other jobs on a shared machine included)."""
        out = {name: cpu_seconds(pid) for name, pid in self.pids().items()}
        out["machine"], out["machine_kernel"] = (t / CLK_TCK for t in machine_busy_ticks())
        return out

    def cpu_since(self, before, wall_s):
        """{service: {cpu_s, cores}} used since `before` (a cpu() reading), over wall_s seconds."""
        after = self.cpu()
        return {name: {"cpu_s": after[name] - before[name], "cores": (after[name] - before[name]) / wall_s}
                for name in after if after[name] is not None and before.get(name) is not None}

    def s3(self):
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=S3_AK, aws_secret_access_key=S3_SK,
                            config=Config(s3={"addressing_style": "path"}))


REQ_RE = re.compile(r"s3s::service: req: Request \{ method: (\w+), uri: (\S+), .*")


def count_s3_requests(log_path):
    """{bucket: {operation: count}} from the s3s debug log."""
    counts = {}
    with open(log_path, errors="replace") as f:
        for line in f:
            m = REQ_RE.search(line)
            if not m:
                continue
            method, uri = m.group(1), m.group(2)
            path, _, query = uri.partition("?")
            parts = path.lstrip("/").split("/", 1)
            bucket = parts[0]
            copy = "x-amz-copy-source" in line
            if method == "POST":
                op = "CreateMultipartUpload" if query.startswith("uploads") or "&uploads" in query \
                    else "CompleteMultipartUpload" if "uploadId=" in query \
                    else "DeleteObjects" if query.startswith("delete") else "POST"
            elif method == "PUT":
                if len(parts) == 1 or not parts[1]:
                    op = "CreateBucket"
                elif "partNumber=" in query:
                    op = "UploadPartCopy" if copy else "UploadPart"
                else:
                    op = "CopyObject" if copy else "PutObject"
            elif method == "DELETE":
                op = "AbortMultipartUpload" if "uploadId=" in query else "DeleteObject"
            else:
                op = method
            counts.setdefault(bucket, {}).setdefault(op, 0)
            counts[bucket][op] += 1
    return counts


# ---------------------------------------------------------------- prefill
def prefill(bootstrap, partitions, record_bytes, total_records, seed=1):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(TOPIC, num_partitions=partitions, replication_factor=1)]).values():
        fut.result(timeout=30)
    deadline = time.time() + 30
    while len(admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions) < partitions:
        if time.time() > deadline:
            sys.exit(f"topic {TOPIC} did not get {partitions} partitions")
        time.sleep(0.2)

    # Values: log-line-like text, half fixed words and half random hex, so gzip has something
    # realistic to do (about 2:1) rather than a constant or incompressible noise. A pool of 4096
    # distinct values, each prefixed by the record's sequence number.
    rng = random.Random(seed)
    words = ["GET", "POST", "/api/v1/orders", "/api/v1/users", "200", "404", "status", "user", "latency_ms",
             "region=eu-west-1", "region=us-east-1", "ok", "cache=miss", "cache=hit"]
    pool = []
    for _ in range(4096):
        text = ""
        while len(text) < record_bytes:
            text += rng.choice(words) + " " + "%08x" % rng.getrandbits(32) + " "
        pool.append(text.encode())
    end_offsets, errors = {}, []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            p = msg.partition()
            if msg.offset() + 1 > end_offsets.get(p, 0):
                end_offsets[p] = msg.offset() + 1

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20,
                         "batch.size": 1 << 20, "queue.buffering.max.kbytes": 1 << 20,
                         "compression.type": "none"})
    t0 = time.time()
    produce = producer.produce
    for i in range(total_records):
        head = b"%d " % i
        value = (head + pool[i & 4095])[:record_bytes]
        while True:
            try:
                produce(TOPIC, value=value, partition=i % partitions, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        if i & 1023 == 0:
            producer.poll(0)
        if i and i % 1_000_000 == 0:
            log(f"  produced {i} records ({time.time() - t0:.0f} s)")
    remaining = producer.flush(120)
    if errors or remaining:
        sys.exit(f"prefill failed: {remaining} undelivered, errors {errors[:3]}")
    want = {p: (total_records - p + partitions - 1) // partitions for p in range(partitions)}
    if end_offsets != want:
        sys.exit(f"prefill: end offsets {end_offsets} differ from the records sent per partition {want}")
    return end_offsets, time.time() - t0


class CommitProbe:
    """Reads a group's committed offsets (OffsetFetch) without joining it."""

    def __init__(self, bootstrap, group, partitions):
        from confluent_kafka import Consumer, TopicPartition
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "enable.auto.commit": False})
        self.tps = [TopicPartition(TOPIC, p) for p in range(partitions)]

    def committed(self):
        try:
            return {tp.partition: tp.offset for tp in self.consumer.committed(self.tps, timeout=10)}
        except Exception as e:  # the group may not exist yet
            log(f"  committed(): {e}")
            return {}

    def close(self):
        self.consumer.close()


def reached(committed, end_offsets):
    return all(committed.get(p, -1) >= o for p, o in end_offsets.items())


ORIG_KEY_RE = re.compile(r"_(\d+)-(\d+)_\d{6}\.mak\.gz$")


def original_archived(s3, bucket, end_offsets):
    """Records of each partition present in the bucket, from the original's object names."""
    have = {p: 0 for p in end_offsets}
    objects = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            m = ORIG_KEY_RE.search(obj["Key"])
            p = int(obj["Key"].split("/")[-2]) if m else None
            if m and p in have:
                have[p] += int(m.group(2)) - int(m.group(1)) + 1
                objects += 1
    return have, objects


def bucket_objects(s3, bucket):
    n = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            n += 1
            size += obj["Size"]
    return n, size


# ---------------------------------------------------------------- the runs
def run_ceiling(args, svc, total_records, state):
    binary = os.path.join(ROOT, "target", "release", "examples", "read_ceiling")
    out_path = os.path.join(state, "ceiling.out")
    services_before = svc.cpu()
    t0 = time.monotonic()
    with open(out_path, "w") as out, open(os.path.join(state, "ceiling.log"), "w") as err:
        # librdkafka pauses a partition whose local queue is full for fetch.queue.backoff.ms, 1 s by
        # default: a reader that falls behind for a moment then idles a second at a time, and the
        # ceiling swung from 4 to 10 s between runs of the same drain. kafkatos3 sets 10 ms
        # (config/kafka.rs); the ceiling reads with the same, so it measures reading, not that pause.
        proc = subprocess.Popen([binary, svc.bootstrap, TOPIC, str(total_records), str(args.timeout),
                                 "fetch.queue.backoff.ms=10"],
                                stdout=out, stderr=err, start_new_session=True)
        sampler = RssSampler(proc.pid)
        sampler.start()
        cores = DrainSampler(dict(svc.pids(), process=proc.pid, bench=os.getpid()), t0, consumer="read_ceiling",
                             threads_every=4)
        cores.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        services = svc.cpu_since(services_before, wall)
        cores.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
    with open(out_path) as f:
        result = json.loads(f.read().strip().splitlines()[-1])
    if not result.get("complete"):
        raise RuntimeError(f"read_ceiling did not read every record: {result}")
    # Its own clock starts after the consumer is created (a few ms after the spawn): it reports when
    # it read its first and its last record. No group, so no join phase, and no tail.
    phases = {"assigned_s": None, "first_record_s": result["first_record_s"], "last_record_s": result["seconds"],
              "consume_s": result["seconds"], "tail_s": wall - result["seconds"],
              "cores_in_consume": cores.cores_between(0, result["seconds"]),
              "consumer_cpu_share_in_consume": cores.consumer_between(0, result["seconds"])}
    # Its threads' CPU from the sampler's last reading (every 0.2 s) before it exited, at threads_cpu_at_s.
    at, threads = cores.last_threads or (None, None)
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024,
            "rss_method": "ru_maxrss (= VmHWM)", "detail": result, "phases": phases, "services_cpu": services,
            "threads_cpu": threads, "threads_cpu_at_s": at}


def daemon_config(args, svc, work, group, bucket, codec, mak_version=None):
    version_line = f"mak_format_version = {mak_version}\n" if mak_version else ""
    seal = getattr(args, "seal_at_end_bytes", None)
    seal_line = f"seal_at_end_bytes = {seal}\n" if seal is not None else ""
    lines = f"""# written by bench/run.py
[main]
log.level = INFO
working_directory = {work}
{version_line}
[consumer]
consumer_processes = {args.consumer_processes}
kafka_bootstrap = {svc.bootstrap}
kafka_consumer_group = {group}
kafka_auto_offset_reset = earliest
consumer_nice_level = 0
topic_whitelist = {TOPIC}
max_age_seconds = {args.max_age_seconds}
max_file_bytes = {args.max_file_bytes}
{seal_line}
[compression]
compression_check_interval = {args.ours_check_interval}
compressor_workers = {args.compressor_workers}
compression_nice_level = 0

[s3]
s3upload_check_interval = {args.ours_check_interval}
s3uploader_workers = {args.uploader_workers}
s3_bucket_name = {bucket}
s3_endpoint = {svc.endpoint}
s3_region = us-east-1
s3_access_key = {S3_AK}
s3_secret_key = {S3_SK}
topic_whitelist = {TOPIC}

[kafka]
# the test broker (Tansu) takes session.timeout.ms / 2 for every group join
session.timeout.ms = 6000
""" + "".join(f"{setting}\n" for setting in args.kafka) + (
        f"\n[metrics]\nlisten = 127.0.0.1:{args.metrics_port}\n" if args.metrics else "")
    # Codec-specific lines go into their section.
    for section, entries in CODECS[codec].items():
        extra = "".join(f"{k} = {v}\n" for k, v in entries.items())
        lines = lines.replace(f"[{section}]\n", f"[{section}]\n{extra}", 1)
    return lines


def ours_variants(args, codecs):
    """(mode, codec, MAK version or None for the daemon's default, round, name) of every kafkatos3 run, in the
    order they run: each round runs every mode with every codec in every version, so repeated runs alternate."""
    versions = [v.strip() for v in args.mak_versions.split(",") if v.strip()] or [None]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    variants = []
    for rnd in range(1, args.rounds + 1):
        for mode in modes:
            for codec in codecs:
                for version in versions:
                    name = ("ours-" if mode == "daemon" else "snapshot-") + codec + (f"-v{version}" if version else "") \
                        + (f"-r{rnd}" if args.rounds > 1 else "")
                    variants.append((mode, codec, version, rnd, name))
    return variants


def prepare_run(args, svc, state, name, codec, mak_version):
    """A run's directory, config file (its own group and bucket, both bench-NAME) and environment (no RUST_LOG:
    the daemon's own log level)."""
    work = os.path.join(state, name)
    os.makedirs(os.path.join(work, "wd"))
    group = bucket = f"bench-{name}"
    cfg = os.path.join(work, "kafkatos3.cfg")
    with open(cfg, "w") as f:
        f.write(daemon_config(args, svc, os.path.join(work, "wd"), group, bucket, codec, mak_version))
    env = dict(os.environ)
    env.pop("RUST_LOG", None)
    return work, cfg, group, bucket, env


def run_snapshot(args, svc, state, codec, mak_version, name):
    """`kafkatos3 snapshot` until it exits by itself; exit 0 means every partition is archived to its end."""
    work, cfg, _group, bucket, env = prepare_run(args, svc, state, name, codec, mak_version)
    log_path = os.path.join(work, "snapshot.log")
    services_before = svc.cpu()
    t0_wall, t0 = time.time(), time.monotonic()
    with open(log_path, "w") as out:
        consumers = ["--consumers", str(args.snapshot_consumers)] if args.snapshot_consumers else []
        proc = subprocess.Popen([args.daemon, "snapshot", "--config", cfg, *consumers],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    sampler = RssSampler(proc.pid)
    sampler.start()
    drain = DrainSampler(dict(svc.pids(), process=proc.pid, bench=os.getpid()), t0, workdir=os.path.join(work, "wd"))
    drain.start()
    try:
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        services = svc.cpu_since(services_before, wall)
        drain.stop()
    finally:
        sampler.stop_flag.set()
        drain.stop_flag.set()
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc
    if rc != 0:
        raise RuntimeError(f"kafkatos3 snapshot exited {rc}; see {log_path}")
    objects, size = bucket_objects(svc.s3(), bucket)
    phases = drain_phases(log_path, t0_wall, drain, wall)
    result = {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024,
              "rss_method": "ru_maxrss (= VmHWM)", "exit_status": rc, "objects": objects, "object_bytes": size,
              "bucket": bucket, "config": cfg, "phases": phases, "services_cpu": services}
    if args.verify:
        v = subprocess.run([args.daemon, "verify", "--config", cfg, "--offline", "--deep"], capture_output=True,
                           text=True, env=env)
        result["verify_exit_status"] = v.returncode
        log(f"  kafkatos3 verify --deep: exit {v.returncode}")
        if v.returncode != 0:
            raise RuntimeError(f"kafkatos3 verify found a problem in the archive: {v.stdout[-2000:]}")
    return result


class MetricsScraper(threading.Thread):
    """Scrapes the daemon's /metrics every 5 s during a run, as Prometheus would (--metrics)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.scrapes = port, 0
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.wait(5):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
                    response.read()
                self.scrapes += 1
            except OSError:
                pass


def run_ours(args, svc, end_offsets, state, codec, mak_version=None, name=None):
    name = name or f"ours-{codec}"
    work, cfg, group, bucket, env = prepare_run(args, svc, state, name, codec, mak_version)
    probe = CommitProbe(svc.bootstrap, group, len(end_offsets))
    log_path = os.path.join(work, "daemon.log")
    services_before = svc.cpu()
    t0_wall, t0 = time.time(), time.monotonic()
    with open(log_path, "w") as out:
        proc = subprocess.Popen([args.daemon, cfg], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
    sampler = RssSampler(proc.pid)
    sampler.start()
    scraper = MetricsScraper(args.metrics_port) if args.metrics else None
    if scraper:
        scraper.start()
    drain = DrainSampler(dict(svc.pids(), process=proc.pid, bench=os.getpid()), t0, workdir=os.path.join(work, "wd"))
    drain.start()
    perf = None
    if args.perf:
        # Profiling only: perf's own cost makes this run's numbers unfit for the table. Attach once the
        # process has exec'd the daemon (perf -p on a process still in fork/exec records nothing);
        # threads the daemon starts later are followed.
        while os.readlink(f"/proc/{proc.pid}/exe") != os.path.realpath(args.daemon):
            time.sleep(0.01)
        perf = subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384", "-p", str(proc.pid),
                                 "-o", os.path.join(work, "perf.data")],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "perf.log"), "w"))
    try:
        while True:
            committed = probe.committed()
            if reached(committed, end_offsets):
                wall = time.monotonic() - t0
                break
            if proc.poll() is not None:
                raise RuntimeError(f"kafkatos3 exited ({proc.returncode}) before the drain ended; see {log_path}")
            if time.monotonic() - t0 > args.timeout:
                raise RuntimeError(f"kafkatos3 did not drain in {args.timeout} s; committed {committed}")
            time.sleep(0.05)
        threads = cpu_by_family(proc.pid)
        services = svc.cpu_since(services_before, wall)
        cpu, rss, method = measure_before_stop(proc.pid, sampler)
        drain.stop()
    finally:
        sampler.stop_flag.set()
        drain.stop_flag.set()
        if scraper:
            scraper.stop_flag.set()
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait(120)
        rc = stop_tree(proc, 60)
        probe.close()
    objects, size = bucket_objects(svc.s3(), bucket)
    stall = longest_compress_wait(log_path)
    if stall and stall[0] > 10:
        log(f"  note: {stall[1]} waited {stall[0]:.1f} s between sealed and compressed (a missed wake-up: "
            f"it was picked up by the compression_check_interval rescan)")
    phases = drain_phases(log_path, t0_wall, drain, wall)
    result = {"longest_seal_to_compress_s": stall[0] if stall else None,
              "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss, "rss_method": method, "exit_status": rc,
              "objects": objects, "object_bytes": size, "bucket": bucket, "config": cfg,
              "phases": phases, "threads_cpu": threads, "services_cpu": services,
              "consumer_busy_series": drain.series,
              "metrics_scrapes": scraper.scrapes if scraper else None}
    if args.verify:
        # After the measurement: `kafkatos3 verify --deep` decodes every archived record (its GETs
        # land in the S3 log but only PUT/POST are counted).
        v = subprocess.run([args.daemon, "verify", "--config", cfg, "--offline", "--deep"], capture_output=True,
                           text=True, env=env)
        with open(os.path.join(work, "verify.txt"), "w") as f:
            f.write(v.stdout + v.stderr)
        result["verify_exit_status"] = v.returncode
        log(f"  kafkatos3 verify --deep: exit {v.returncode} ({os.path.join(work, 'verify.txt')})")
        if v.returncode != 0:
            raise RuntimeError(f"kafkatos3 verify found a problem in the archive: {v.stdout[-2000:]}")
    return result


LOG_EVENT_RE = re.compile(r"^(\S+Z) +\w+ [\w:]+: (assigned|sealed|compressed|uploaded|shutdown requested)\b")


def drain_phases(log_path, t0_wall, drain, wall):
    """The drain's phases, in seconds since the daemon was spawned (see docs/benchmarks.md):
    assigned (its log's first "assigned" line), first and last record consumed (DrainSampler), and
    the tail's steps from its log: the last file sealed, compressed, uploaded; then `wall`, when the
    benchmark saw the last offset committed (polled every 0.05 s)."""
    from datetime import datetime
    events = {}
    with open(log_path, errors="replace") as f:
        for line in f:
            m = LOG_EVENT_RE.search(line)
            if not m:
                continue
            if m.group(2) == "shutdown requested":
                break
            t = datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp() - t0_wall
            if m.group(2) == "assigned":
                events.setdefault("assigned_s", t)
            else:
                events[f"last_{m.group(2)}_s"] = t
    assigned, last = events.get("assigned_s"), drain.last_busy
    return dict(events, first_record_s=drain.first_record, last_record_s=last, last_inprogress_write_s=drain.last_write,
                consume_s=last - assigned if last is not None and assigned is not None else None,
                tail_s=wall - last if last is not None else None, cores_in_consume=drain.cores_between(assigned, last),
                consumer_cpu_share_in_consume=drain.consumer_between(assigned, last),
                files_opened_s=drain.files_opened)


def longest_compress_wait(log_path):
    """(seconds, file) of the file that waited longest between sealed and compressed, from the daemon log."""
    from datetime import datetime
    sealed, worst = {}, None
    with open(log_path, errors="replace") as f:
        for line in f:
            m = re.search(r"^(\S+Z) .* (sealed|compressed) file=(\S+)", line)
            if not m:
                continue
            t = datetime.fromisoformat(m.group(1).rstrip("Z"))
            if m.group(2) == "sealed":
                sealed[m.group(3)] = t
            elif m.group(3) in sealed:
                wait = (t - sealed[m.group(3)]).total_seconds()
                if worst is None or wait > worst[0]:
                    worst = (wait, m.group(3))
    return worst


def original_config(args, svc, work, group, bucket):
    return f"""# written by bench/run.py for the original kafkatos3 0.2.0
[main]
log.level = INFO
working_directory = {work}

[consumer]
consumer_processes = 1
kafka_bootstrap = {svc.bootstrap}
kafka_consumer_group = {group}
kafka_auto_offset_reset = earliest
consumer_nice_level = 0
topic_whitelist = {TOPIC}
max_age_seconds = {args.max_age_seconds}
consumer_class = KafkaConfluentConsumer

[compression]
compression_check_interval = 1
compressor_workers = {args.compressor_workers}
compression_nice_level = 0

[s3]
s3upload_check_interval = 1
s3uploader_workers = {args.uploader_workers}
s3_bucket_name = {bucket}
s3_access_key = {S3_AK}
s3_secret_key = {S3_SK}
topic_whitelist = {TOPIC}
"""


def run_original(args, svc, end_offsets, state):
    work = os.path.join(state, "original")
    os.makedirs(os.path.join(work, "wd"))
    group, bucket = "bench-original", "bench-original"
    cfg = os.path.join(work, "kafkatos3.cfg")
    with open(cfg, "w") as f:
        f.write(original_config(args, svc, os.path.join(work, "wd"), group, bucket))
    env = dict(os.environ, AWS_ENDPOINT_URL=svc.endpoint, AWS_DEFAULT_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true", PYTHONWARNINGS="ignore")
    s3 = svc.s3()
    probe = CommitProbe(svc.bootstrap, group, len(end_offsets))
    log_path = os.path.join(work, "daemon.log")
    consumed_s = None
    t0 = time.monotonic()
    with open(log_path, "w") as out:
        proc = subprocess.Popen([args.python, os.path.join(ROOT, "bench", "original_py3.py"), cfg], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    sampler = RssSampler(proc.pid)
    sampler.start()
    try:
        last_check = 0.0
        while True:
            now = time.monotonic()
            if consumed_s is None and reached(probe.committed(), end_offsets):
                consumed_s = now - t0
                log(f"  original: every record consumed and auto-committed after {consumed_s:.1f} s")
            if now - last_check >= 1.0:
                last_check = now
                have, objects = original_archived(s3, bucket, end_offsets)
                if have == end_offsets:
                    wall = time.monotonic() - t0
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"the original exited ({proc.returncode}) before the drain ended; see {log_path}")
            if now - t0 > args.timeout:
                raise RuntimeError(f"the original did not archive everything in {args.timeout} s: {have}")
            time.sleep(0.25)
        cpu, rss, method = measure_before_stop(proc.pid, sampler)
    finally:
        sampler.stop_flag.set()
        rc = stop_tree(proc, 15)
        probe.close()
    n, size = bucket_objects(s3, bucket)
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss, "rss_method": method, "exit_status": rc,
            "consumed_s": consumed_s, "objects": n, "object_bytes": size, "bucket": bucket, "config": cfg}


# ---------------------------------------------------------------- report
def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kb / (1 << 20), 1),
            "kernel": os.uname().release}


def table(results, total_records, payload_bytes):
    ceiling = next((r for k, r in results.items() if k.startswith("ceiling")), None)
    original = next((r for k, r in results.items() if k.startswith("original")), None)
    gib = payload_bytes / (1 << 30)
    head = ["run", "wall s", "records/s", "MB/s", "CPU s", "peak RSS MB", "S3 PUT+POST /GiB", "ours/ceiling",
            "ours/original", "load 1m at end"]
    rows = []
    for name, r in results.items():
        if not isinstance(r, dict) or "wall_s" not in r:
            continue
        rps = total_records / r["wall_s"]
        mbps = payload_bytes / 1e6 / r["wall_s"]
        r.update(records_per_s=rps, mb_per_s=mbps)
        writes = r.get("s3_writes")
        row = [name, f"{r['wall_s']:.1f}", f"{rps:,.0f}", f"{mbps:.1f}", f"{r['cpu_s']:.1f}",
               f"{r['peak_rss_mb']:.0f}", f"{writes / gib:.1f}" if writes is not None else "-", "", "",
               f"{r['load_after'][0]:.2f}" if r.get("load_after") else "-"]
        if name.startswith("kafkatos3"):
            if ceiling:
                r["ratio_ceiling"] = ceiling["wall_s"] / r["wall_s"]
                row[7] = f"{r['ratio_ceiling']:.2f}"
            if original:
                r["ratio_original"] = original["wall_s"] / r["wall_s"]
                row[8] = f"{r['ratio_original']:.2f}"
        rows.append(row)
    return markdown(head, rows)


def markdown(head, rows):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    lines = [fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [fmt(r) for r in rows]
    return "\n".join(lines)


def num(value, fmt=".1f"):
    return "-" if value is None else format(value, fmt)


def diff(a, b):
    return None if a is None or b is None else a - b


def phase_table(results, total_records):
    """Where each run's wall time went (docs/benchmarks.md, "Phases"); adds consume_records_per_s and
    ratio_consume_ceiling to each run."""
    ceiling = next((r for k, r in results.items() if k.startswith("ceiling")), None)
    head = ["run", "wall s", "(a) join s", "first record s", "(b) consume s", "consume rec/s", "vs ceiling",
            "(c) tail s", "tail: to last seal", "compress", "upload", "commit seen"]
    rows = []
    for name, r in results.items():
        ph = r.get("phases") if isinstance(r, dict) else None
        if not ph:
            continue
        rate = total_records / ph["consume_s"] if ph.get("consume_s") else None
        r["consume_records_per_s"] = rate
        ratio = None
        if ceiling and ceiling is not r and rate and ceiling.get("consume_records_per_s"):
            ratio = r["ratio_consume_ceiling"] = rate / ceiling["consume_records_per_s"]
        rows.append([name, num(r["wall_s"]), num(ph.get("assigned_s")), num(ph.get("first_record_s")),
                     num(ph.get("consume_s")), num(rate, ",.0f"), num(ratio, ".2f"), num(ph.get("tail_s")),
                     num(diff(ph.get("last_sealed_s"), ph.get("last_record_s"))),
                     num(diff(ph.get("last_compressed_s"), ph.get("last_sealed_s"))),
                     num(diff(ph.get("last_uploaded_s"), ph.get("last_compressed_s"))),
                     num(diff(r["wall_s"], ph.get("last_uploaded_s")))])
    return markdown(head, rows) if rows else ""


def thread_table(results):
    """CPU seconds by thread family (docs/benchmarks.md, "CPU by thread"): kafkatos3's read just before
    it is stopped, the ceiling's at the sampler's last reading before it exited (its main thread,
    read_ceiling, counts as its consumer); "other" includes threads that had already exited."""
    fams = ["consumer", "writer", "compressor", "compress-dispatch", "uploader", "rdk:main", "rdk:broker", "rdk:other"]
    head = ["run", "CPU s"] + fams + ["other", "consumer in (b): on CPU", "waiting for CPU"]
    rows = []
    for name, r in results.items():
        by = (r.get("threads_cpu") or {}).get("cpu_s") if isinstance(r, dict) else None
        if not by:
            continue
        consume_s = (r.get("phases") or {}).get("consume_s")
        on_cpu, waiting = (r.get("phases") or {}).get("consumer_cpu_share_in_consume") or (None, None)
        if r.get("threads_cpu_at_s") is not None:
            name += f" (at {r['threads_cpu_at_s']:.1f} s)"
        rows.append([name, num(r["threads_cpu"]["process_cpu_s"])] + [num(by[f]) for f in fams]
                    + [num(by["other"] + by["exited"]), num(on_cpu, ".2f"), num(waiting, ".2f")])
    return markdown(head, rows) if rows else ""


def cores_table(results):
    """Cores used by the measured process, the broker, the S3 server, the benchmark itself and the whole
    machine, over the whole run and during its consume phase (b); "rest" is the machine's busy time
    that none of those account for: other jobs, and kernel threads (e.g. writing files back)."""
    head = ["run", "wall s", "process", "broker", "s3", "machine", "(b) s", "(b) process", "broker", "s3", "bench",
            "machine", "rest"]
    rows = []
    for name, r in results.items():
        if not isinstance(r, dict) or "services_cpu" not in r:
            continue
        whole = dict({k: v["cores"] for k, v in r["services_cpu"].items()}, process=r["cpu_s"] / r["wall_s"])
        ph = r.get("phases") or {}
        during = ph.get("cores_in_consume") or {}
        rest = None
        if "machine" in during:
            rest = during["machine"] - sum(during.get(k, 0) for k in ("process", "broker", "s3", "bench"))
        rows.append([name, num(r["wall_s"])]
                    + [num(whole.get(k), ".2f") for k in ("process", "broker", "s3", "machine")]
                    + [num(ph.get("consume_s"))]
                    + [num(during.get(k), ".2f") for k in ("process", "broker", "s3", "bench", "machine")]
                    + [num(rest, ".2f")])
    return markdown(head, rows) if rows else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--record-bytes", type=int, default=100, help="value size of each record (no key)")
    ap.add_argument("--total-bytes", type=parse_size, default=parse_size("1GiB"),
                    help="payload to prefill (records = total / record size), e.g. 50MiB, 1GiB")
    ap.add_argument("--codecs", default="gzip", help=f"comma-separated, of: {', '.join(CODECS)}")
    ap.add_argument("--mak-versions", default="",
                    help="comma-separated MAK versions (mak_format_version) to run kafkatos3 with, e.g. 2,3 "
                         "(default: the daemon's default)")
    ap.add_argument("--modes", default="daemon",
                    help="comma-separated, of: daemon (drain in the group until committed), snapshot "
                         "(kafkatos3 snapshot until it exits)")
    ap.add_argument("--snapshot-consumers", type=int, default=None,
                    help="kafkatos3 snapshot --consumers (default: the command's, one per core)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every kafkatos3 variant this many times, alternating (A/B comparisons)")
    ap.add_argument("--skip-original", action="store_true", help="do not run the original kafkatos3 0.2.0")
    ap.add_argument("--skip-ceiling", action="store_true", help="do not run the read ceiling")
    ap.add_argument("--daemon", help="kafkatos3 binary to measure (default: cargo build --release, then "
                                     "target/release/kafkatos3)")
    ap.add_argument("--no-build", action="store_true", help="use target/release as it is")
    ap.add_argument("--keep", action="store_true", help="keep the state dir (configs, logs, working dirs, S3 data)")
    ap.add_argument("--json", help="write the results here (default: STATE/results.json, printed)")
    ap.add_argument("--max-age-seconds", type=int, default=5,
                    help="max_age_seconds for both daemons (seals the tail of the drain)")
    ap.add_argument("--max-file-bytes", default="64MiB", help="kafkatos3's max_file_bytes (the original has none)")
    ap.add_argument("--seal-at-end-bytes", default=None,
                    help="kafkatos3's seal_at_end_bytes (default: the daemon's, 16MiB; 0: seal by age only)")
    ap.add_argument("--ours-check-interval", type=float, default=60,
                    help="kafkatos3's compression_check_interval and s3upload_check_interval (its default, 60: "
                         "a fallback rescan only; the original gets 1 s, it relies on the rescan alone)")
    ap.add_argument("--perf", action="store_true",
                    help="profile each kafkatos3 run with perf record (STATE/ours-CODEC/perf.data; implies --keep; "
                         "its timings are then perf-distorted)")
    ap.add_argument("--verify", action="store_true",
                    help="after each kafkatos3 run, check its archive with `kafkatos3 verify --deep --offline`")
    ap.add_argument("--compressor-workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--consumer-processes", type=int, default=1, help="kafkatos3's consumer_processes")
    ap.add_argument("--kafka", action="append", default=[], metavar="KEY=VALUE",
                    help="a librdkafka property for kafkatos3's [kafka] section (repeatable), e.g. to compare fetch settings")
    ap.add_argument("--uploader-workers", type=int, default=2)
    ap.add_argument("--metrics", action="store_true",
                    help="serve [metrics] listen and scrape /metrics every 5 s during each daemon run (its cost)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds each run may take")
    ap.add_argument("--python", default=sys.executable, help="python3 with confluent-kafka, boto3, kafkatos3 0.2.0")
    args = ap.parse_args()
    args.metrics_port = free_port() if args.metrics else None
    args.keep = args.keep or args.perf

    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    for c in codecs:
        if c not in CODECS:
            sys.exit(f"unknown codec {c!r}: the daemon has {', '.join(CODECS)} (add new ones to CODECS in {__file__})")
    total_records = args.total_bytes // args.record_bytes
    payload = total_records * args.record_bytes

    if not args.no_build:
        targets = ["--example", "read_ceiling"] + ([] if args.daemon else ["--bin", "kafkatos3"])
        log(f"cargo build --release {' '.join(targets)}")
        subprocess.run(["cargo", "build", "--release", "--locked", *targets], cwd=ROOT, check=True)
    args.daemon = os.path.abspath(args.daemon or os.path.join(ROOT, "target", "release", "kafkatos3"))

    state = tempfile.mkdtemp(prefix="kafkatos3-bench.", dir="/tmp")
    svc = Services(state)
    variants = ours_variants(args, codecs)
    buckets = [f"bench-{name}" for *_, name in variants] + ([] if args.skip_original else ["bench-original"])
    results = {"machine": machine(), "args": {k: v for k, v in vars(args).items()},
               "records": total_records, "payload_bytes": payload, "state_dir": state,
               "load_before": loadavg()}
    runs = {}
    ok = False
    try:
        log(f"state {state}; load average {results['load_before']}")
        svc.start(buckets)
        log(f"broker {svc.bootstrap}, s3 {svc.endpoint}; prefilling {total_records:,} records x "
            f"{args.record_bytes} B = {payload / (1 << 20):.0f} MiB in {args.partitions} partitions")
        end_offsets, prefill_s = prefill(svc.bootstrap, args.partitions, args.record_bytes, total_records)
        results["prefill_s"] = prefill_s
        results["end_offsets"] = end_offsets
        log(f"prefilled in {prefill_s:.1f} s; end offsets {end_offsets}")

        if not args.skip_ceiling:
            log("(a) read ceiling")
            runs["ceiling (librdkafka read)"] = run_ceiling(args, svc, total_records, state)
            runs["ceiling (librdkafka read)"]["load_after"] = loadavg()
            log(f"  {runs['ceiling (librdkafka read)']['wall_s']:.1f} s")
        for mode, codec, version, rnd, name in variants:
            label = ("kafkatos3 " if mode == "daemon" else "kafkatos3 snapshot ") + codec + (
                f" MAK v{version}" if version else "") + (f" #{rnd}" if args.rounds > 1 else "") + (
                " (under perf)" if args.perf else "")
            log(f"(b) {label} ({args.daemon}); load average {loadavg()}")
            if mode == "snapshot":
                r = run_snapshot(args, svc, state, codec, version, name)
            else:
                r = run_ours(args, svc, end_offsets, state, codec, version, name)
            r["load_after"] = loadavg()
            runs[label] = r
            log(f"  {r['wall_s']:.1f} s, {r['objects']} objects")
        if not args.skip_original:
            log(f"(c) original kafkatos3 0.2.0 (gzip); load average {loadavg()}")
            r = run_original(args, svc, end_offsets, state)
            r["load_after"] = loadavg()
            runs["original 0.2.0 gzip"] = r
            log(f"  {r['wall_s']:.1f} s, {r['objects']} objects")
        ok = True
    finally:
        svc.stop()
        results["load_after"] = loadavg()
        if os.path.exists(svc.s3_log):
            counts = count_s3_requests(svc.s3_log)
            results["s3_requests"] = counts
            for r in runs.values():
                if "bucket" in r:
                    ops = counts.get(r["bucket"], {})
                    r["s3_requests"] = ops
                    # Every PUT and POST but the bucket's creation (POST ?delete, DeleteObjects, counts:
                    # it is a POST); GET, HEAD and DELETE are not counted.
                    r["s3_writes"] = sum(v for k, v in ops.items()
                                         if k not in ("GET", "HEAD", "CreateBucket", "DeleteObject",
                                                      "AbortMultipartUpload"))
        results["runs"] = runs
        text = table(runs, total_records, payload) if runs else "(no run completed)"
        extras = [("Phases (seconds since the process was spawned; docs/benchmarks.md)",
                   phase_table(runs, total_records)),
                  ("CPU seconds by thread family", thread_table(runs)),
                  (f"Cores used (of {os.cpu_count()}), whole run and consume phase (b)", cores_table(runs))]
        json_path = args.json or os.path.join(state, "results.json")
        if args.keep or args.json:
            with open(json_path, "w") as f:
                json.dump(results, f, indent=2, default=str)
        print(f"\n{total_records:,} records x {args.record_bytes} B = {payload / (1 << 20):.0f} MiB, "
              f"{args.partitions} partitions; load average before {results['load_before']}, "
              f"after {results['load_after']}\n")
        print(text)
        for title, extra in extras:
            if extra:
                print(f"\n{title}:\n\n{extra}")
        for name, r in runs.items():
            if r.get("consumed_s") is not None:
                print(f"\n{name}: every record read, written and auto-committed after {r['consumed_s']:.1f} s "
                      f"({total_records / r['consumed_s']:,.0f} records/s); the rest of its wall time is waiting "
                      f"for its consumer's 60 s poll timeout to rotate the last files, then gzip and upload.")
        if args.keep or not ok:
            log(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)
        if args.json:
            log(f"results written to {json_path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
