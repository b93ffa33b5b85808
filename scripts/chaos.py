#!/usr/bin/env python3
"""chaos.py - exactly-once under faults: archive a topic while daemons, S3 and the broker are knocked over.

Usage:
  scripts/chaos.py --short            ~2-3 min: 50k records, 8 kill -9 (2 lost machines), 1 SIGTERM restart,
                                      an extra instance joining and leaving, 1 S3 outage, 1 broker restart
                                      (scripts/test.sh runs this unless KAFKATOS3_CHAOS=0)
  scripts/chaos.py                    full: 1,000,000 records, 64 kill -9 (13 lost machines), 8 SIGTERM restarts,
                                      12 extra-instance joins/leaves, 4 S3 outages, 3 broker restarts (~25 min)
Options:
  --seed N          seed of the fault plan (default: random, printed; rerun with it to replay the same plan)
  --daemon PATH     the kafkatos3 binary to test (default: target/release/kafkatos3, built with
                    `cargo build --release -p kafkatos3` first so a stale binary is never tested)
  --inject KINDS    comma-separated fault kinds to use (default all): kill, term, extra, s3, broker
  --records N       override the mode's record count        --rate R   records per second
  --keep            keep the state dir (it is also kept when the run fails)

What it does. It starts private services on free loopback ports, all under one temp state dir: a Tansu broker
whose storage engine is an s3s-fs instance of its own (records and committed offsets survive broker restarts),
and a second s3s-fs instance holding the archive bucket (so an archive outage does not take the broker down).
A producer writes records carrying unique sequence numbers to 6 partitions at a steady rate (acks=all, retries;
only delivery-confirmed records count as produced; not idempotent: see SeqProducer for why). Two daemon instances in one consumer group archive
the topic, each in its own working dir (small max_age_seconds, so many objects). Meanwhile a seeded plan of
faults runs: kill -9 an instance and restart it (every fifth of those on an EMPTY working dir: a lost machine),
SIGTERM and restart, start/stop a third instance (rebalances), take the archive S3 server away for a while
(stopped, or frozen with SIGSTOP), restart the broker. A watchdog acts when the archive makes no progress for a
long time outside outages: it restarts every daemon and, only if no consumer then gets any partition at all (the
test broker's group wedge), moves them to a fresh group id seeded with the exact committed offsets. It is counted
and reported, never silent (see Chaos.watchdog).

Then it drains (no more faults, every instance up, until the bucket covers every partition's end, or a
timeout), stops the daemons with SIGTERM, and checks:
  - `kafkatos3 verify --deep` on the bucket must exit 0;
  - an independent reader (this file's own MAK v1, v2 and v3 parsers, docs/format.md) reads EVERY object and counts every
    sequence number, against both the delivery-confirmed set and a full read-back of the topic from Kafka. It reads
    both object namings (<topic>-<p>_<first>-<last>_<yymmdd>.mak.gz, and the fenced <topic>-<p>_<first>.mak.gz whose
    last offset is in the MAK header).
It prints one table and `chaos: PASS/FAIL (mode, seconds, seed)`. Exit 0 only when duplicates == 0, missing == 0,
mismatched == 0, every object reads and matches its name, verify is clean, and the daemons stored group snapshots ([groups]) that read; 1 on FAIL; 2 when the harness itself could not run (services would not start).
It never retries a failed verdict and never loosens a count: a FAIL is a finding (or, when the table's notes say
so, a fault of the test infrastructure, explained there).
"""
from __future__ import annotations

import argparse
import array
import concurrent.futures
import dataclasses
import gzip
import heapq
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config as BotoConfig
from confluent_kafka import KafkaError, Producer, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "scripts" / "infra"
TOPIC = "chaos"
PREFIX = "chaos"
ARCHIVE_BUCKET = "chaos-archive"
BROKER_BUCKET = "tansu"
ACCESS_KEY = "chaos-access"
KINDS = ("kill", "term", "extra", "s3", "broker")


# --------------------------------------------------------------------------------------------------------------
# Modes and the fault plan
# --------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Mode:
    """Sizes of one run. The counts are minimums the plan guarantees (the bag holds exactly that many of each kind);
    the rate sets how long the faults are spread over (records / rate seconds)."""
    name: str
    records: int
    partitions: int
    rate: int
    kills: int
    terms: int
    extra_toggles: int
    s3_outages: int
    broker_restarts: int
    outage_s: tuple[float, float]
    max_age_s: int
    shutdown_timeout_s: int
    rebalance_timeout_s: int
    drain_timeout_s: int
    watchdog_s: int
    # [s3] max_local_backlog_bytes, or None for the daemon's default.
    backlog_limit: str | None = None


SHORT = Mode("short", records=50_000, partitions=6, rate=500, kills=8, terms=1, extra_toggles=2, s3_outages=1,
             broker_restarts=1, outage_s=(8, 14), max_age_s=2, shutdown_timeout_s=15, rebalance_timeout_s=10,
             drain_timeout_s=150, watchdog_s=60)
FULL = Mode("full", records=1_000_000, partitions=6, rate=800, kills=64, terms=8, extra_toggles=12, s3_outages=4,
            broker_restarts=3, outage_s=(10, 30), max_age_s=3, shutdown_timeout_s=20, rebalance_timeout_s=15,
            drain_timeout_s=600, watchdog_s=90)


def make_plan(mode: Mode, kinds: set[str], rng: random.Random) -> list[tuple[str, bool]]:
    """The shuffled bag of actions: (kind, lost_machine). Exactly mode.kills kill actions, a fifth of them (rounded,
    at least one) on an empty working dir, and so on; the seed fixes the order."""
    bag: list[tuple[str, bool]] = []
    if "kill" in kinds:
        lost = max(1, round(mode.kills / 5))
        flags = [True] * lost + [False] * (mode.kills - lost)
        rng.shuffle(flags)
        bag += [("kill", f) for f in flags]
    counts = {"term": mode.terms, "extra": mode.extra_toggles, "s3": mode.s3_outages, "broker": mode.broker_restarts}
    for kind, n in counts.items():
        if kind in kinds:
            bag += [(kind, False)] * n
    rng.shuffle(bag)
    return bag


# --------------------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------------------

T0 = time.monotonic()
LOG_FILE = None
# librdkafka's own messages (connection refused while the broker restarts, ...) go to clients.log in the state
# dir instead of cluttering the timeline; main() attaches the file.
CLIENT_LOG = logging.getLogger("chaos.librdkafka")
CLIENT_LOG.propagate = False
CLIENT_LOG.setLevel(logging.DEBUG)


def say(msg: str) -> None:
    """One timeline line, on stdout and in the state dir's chaos.log (for correlating with daemon logs)."""
    line = f"[chaos +{time.monotonic() - T0:7.1f}s] {msg}"
    print(line, flush=True)
    if LOG_FILE:
        LOG_FILE.write(time.strftime("%H:%M:%S ") + line + "\n")
        LOG_FILE.flush()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class InfraError(Exception):
    """The test infrastructure (not the daemon) failed: exit 2."""


# --------------------------------------------------------------------------------------------------------------
# Services: broker + its S3, archive S3 (through the repo's scripts/infra, by pid file)
# --------------------------------------------------------------------------------------------------------------

class Services:
    """The three private services. Each has its own KAFKATOS3_INFRA_DIR, so pid files and S3 data never mix:
    broker/ holds kafka.pid and the broker's S3 (s3.pid, s3-data/), archive/ the archive S3."""

    def __init__(self, state: Path):
        self.state = state
        self.broker_dir = state / "broker"
        self.archive_dir = state / "archive"
        self.kafka_port = free_port()
        self.broker_s3_port = free_port()
        self.archive_s3_port = free_port()
        while len({self.kafka_port, self.broker_s3_port, self.archive_s3_port}) < 3:
            self.archive_s3_port = free_port()
        self.secret = f"chaos-secret-{random.SystemRandom().randrange(10**9)}"
        self.infra_log = open(state / "infra.log", "a")
        self.frozen_pid: int | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def archive_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.archive_s3_port}"

    def _run(self, script: str, env: dict[str, str]) -> None:
        full = {**os.environ, **env, "S3_ACCESS_KEY": ACCESS_KEY, "S3_SECRET_KEY": self.secret}
        rc = subprocess.run([str(INFRA / script)], env=full, stdout=subprocess.DEVNULL, stderr=self.infra_log).returncode
        if rc != 0:
            raise InfraError(f"{script} failed (exit {rc}); see {self.state / 'infra.log'}")

    def _broker_s3_env(self) -> dict[str, str]:
        return {"KAFKATOS3_INFRA_DIR": str(self.broker_dir), "S3_PORT": str(self.broker_s3_port)}

    def _archive_env(self) -> dict[str, str]:
        return {"KAFKATOS3_INFRA_DIR": str(self.archive_dir), "S3_PORT": str(self.archive_s3_port)}

    def _kafka_env(self) -> dict[str, str]:
        # Tansu's s3:// storage engine reads these; the endpoint is loopback by construction.
        return {"KAFKATOS3_INFRA_DIR": str(self.broker_dir), "KAFKA_PORT": str(self.kafka_port),
                "KAFKA_STORAGE": f"s3://{BROKER_BUCKET}/",
                "AWS_ENDPOINT": f"http://127.0.0.1:{self.broker_s3_port}", "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": self.secret, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}

    def start_all(self) -> None:
        self._run("start-s3.sh", {**self._broker_s3_env(), "S3_BUCKETS": BROKER_BUCKET})
        self._run("start-s3.sh", {**self._archive_env(), "S3_BUCKETS": ARCHIVE_BUCKET})
        self.start_broker()

    def start_broker(self) -> None:
        # The old socket may linger briefly after a stop; a few attempts, then give up loudly (infra, exit 2).
        for attempt in range(5):
            try:
                self._run("start-kafka.sh", self._kafka_env())
                return
            except InfraError:
                if attempt == 4:
                    raise
                time.sleep(1)

    def stop_broker(self) -> None:
        self._run("stop-kafka.sh", self._kafka_env())

    def stop_archive_s3(self) -> None:
        self._run("stop-s3.sh", self._archive_env())

    def start_archive_s3(self) -> None:
        for attempt in range(5):
            try:
                self._run("start-s3.sh", self._archive_env())
                return
            except InfraError:
                if attempt == 4:
                    raise
                time.sleep(1)

    def archive_s3_pid(self) -> int:
        return int((self.archive_dir / "s3.pid").read_text().strip())

    def freeze_archive_s3(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but never answered, unlike a refused connection."""
        self.frozen_pid = self.archive_s3_pid()
        os.kill(self.frozen_pid, signal.SIGSTOP)

    def thaw_archive_s3(self) -> None:
        if self.frozen_pid is not None:
            try:
                os.kill(self.frozen_pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.frozen_pid = None

    def stop_all(self) -> None:
        """Best effort, every service, whatever state it is in (called from cleanup)."""
        self.thaw_archive_s3()
        for script, env in (("stop-kafka.sh", self._kafka_env()), ("stop-s3.sh", self._broker_s3_env()),
                            ("stop-s3.sh", self._archive_env())):
            try:
                self._run(script, env)
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                print(f"[chaos] cleanup: {script}: {e}", file=sys.stderr)

    def s3_client(self, timeout: float = 10):
        return boto3.client(
            "s3", endpoint_url=self.archive_endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=self.secret,
            config=BotoConfig(s3={"addressing_style": "path"}, connect_timeout=2, read_timeout=timeout,
                              retries={"max_attempts": 2}, max_pool_connections=8))


# --------------------------------------------------------------------------------------------------------------
# Daemon instances
# --------------------------------------------------------------------------------------------------------------

class Instance:
    """One kafkatos3 process slot ("machine"): a config, a working dir, a log appended across restarts.
    `expect_exit` distinguishes the exits the harness caused from the ones it did not (reported)."""

    def __init__(self, name: str, state: Path, binary: Path, config_text: str):
        self.name = name
        self.dir = state / "daemons" / name
        self.work = self.dir / "work"
        self.config = self.dir / "kafkatos3.cfg"
        self.log = self.dir / "daemon.log"
        self.binary = binary
        self.dir.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(exist_ok=True)
        self.config.write_text(config_text.replace("@WORK@", str(self.work)))
        self.proc: subprocess.Popen | None = None
        self.expect_exit = False
        self.busy = False          # an action on it is in progress (killed awaiting restart, stopping, ...)
        self.starts = 0
        self.lost = 0

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, note: str = "") -> None:
        self.starts += 1
        with open(self.log, "a") as log:
            log.write(f"\n===== chaos harness: start #{self.starts} of {self.name} at +{time.monotonic() - T0:.1f}s "
                      f"{note}=====\n")
            log.flush()
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env["RUST_LOG"] = "info,librdkafka=warn"
            # Own session: a Ctrl-C in the terminal reaches the harness, which then stops the daemons itself.
            self.proc = subprocess.Popen([str(self.binary), str(self.config)], stdout=subprocess.DEVNULL, stderr=log,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.expect_exit = False

    def signal(self, sig: int) -> None:
        if self.running():
            self.expect_exit = True
            self.proc.send_signal(sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def lose_machine(self, state: Path) -> None:
        """An empty working dir after a crash: the old one is moved aside (kept for post-mortems), not deleted."""
        self.lost += 1
        dest = state / "lost" / f"{self.name}-{self.lost}"
        dest.parent.mkdir(exist_ok=True)
        if self.work.exists():
            self.work.rename(dest)
        self.work.mkdir()

    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def set_group(self, group: str) -> None:
        text = re.sub(r"(?m)^kafka_consumer_group = .*$", f"kafka_consumer_group = {group}", self.config.read_text())
        self.config.write_text(text)

    def log_tail(self, n: int = 15) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + l for l in lines[-n:])


def daemon_config(mode: Mode, services: Services, group: str) -> str:
    """A config like the tests' (crates/kafkatos3/tests/support/mod.rs): session.timeout.ms=6000 because the test
    broker makes every join wait half of it; small max_age/max_file_bytes/seal_at_end_bytes so many objects are made (and sealed at the log end).
    max.poll.interval.ms is also the group's rebalance timeout: how long a join phase may wait for a member that
    has not rejoined. With librdkafka's 300 s default, a member killed mid-rebalance held the whole group for
    minutes while the next kills kept re-arming it (no partition assigned to anyone); 30 s bounds that and is still
    well above rebalance_timeout_seconds, as the daemon requires."""
    return f"""[main]
log.level = INFO
working_directory = @WORK@
shutdown_timeout_seconds = {mode.shutdown_timeout_s}

[consumer]
consumer_processes = 1
kafka_bootstrap = {services.bootstrap}
kafka_consumer_group = {group}
kafka_auto_offset_reset = earliest
consumer_nice_level = 5
topic_whitelist = {TOPIC}
max_age_seconds = {mode.max_age_s}
max_file_bytes = 1MiB
seal_at_end_bytes = 64KiB
rebalance_timeout_seconds = {mode.rebalance_timeout_s}
flush_interval_ms = 200

[compression]
compression_check_interval = 2
compressor_workers = 1
compression_nice_level = 10

[s3]
s3upload_check_interval = 2
s3uploader_workers = 2
s3_bucket_name = {ARCHIVE_BUCKET}
s3_access_key = {ACCESS_KEY}
s3_secret_key = {services.secret}
topic_whitelist = {TOPIC}
s3_endpoint = {services.archive_endpoint}
s3_region = us-east-1
s3_key_prefix = {PREFIX}
{f"max_local_backlog_bytes = {mode.backlog_limit}" if mode.backlog_limit else ""}

[kafka]
session.timeout.ms = 6000
heartbeat.interval.ms = 500
max.poll.interval.ms = 30000

[groups]
archive_groups = .*
archive_groups_interval_seconds = 5
"""


# --------------------------------------------------------------------------------------------------------------
# Producer: unique sequence numbers, delivery-confirmed
# --------------------------------------------------------------------------------------------------------------

def encode_value(seq: int) -> bytes:
    """The value carries the sequence number first (parsed back by the reader) plus some padding."""
    return b"seq=%010d;" % seq + b"x" * (40 + seq % 61)


def decode_seq(value: bytes) -> int | None:
    if len(value) < 15 or not value.startswith(b"seq=") or value[14:15] != b";":
        return None
    try:
        return int(value[4:14])
    except ValueError:
        return None


class SeqProducer(threading.Thread):
    """Produces until `target` records are delivery-confirmed, at `rate` per second, seq % partitions -> partition.
    A failed delivery is not retried with the same sequence number (it may still have reached Kafka: the read-back
    tells); new numbers are produced instead until the target is confirmed.

    Not idempotent, on purpose: measured here, Tansu 0.6's idempotent producer state survives a broker restart but
    the batch being written at the stop can be lost, and the producer's retry is then acknowledged as a duplicate
    sequence (no offset) - 3 to 23 delivery-confirmed records per restart missing from Kafka. Without idempotence
    a retry writes the batch again: no confirmed record is lost (a batch can then be in Kafka twice, or a lost one
    leaves an offset hole; the reader counts against what Kafka really holds). max.in.flight 1 keeps the order."""

    def __init__(self, bootstrap: str, partitions: int, target: int, rate: int, idempotent: bool = False):
        super().__init__(name="producer", daemon=True)
        self.idempotent = idempotent
        # Tansu's s3:// storage keeps one S3 object per produced batch and serves a fetch at ~20-35 ms per batch
        # object, more as a partition's object count grows: small batches (linger 20 ms -> ~8 records each) made
        # both the daemons and the read-back crawl at a few records per second. 2 s batches keep it to a few hundred
        # records per object.
        self.linger_ms = 2000
        self.bootstrap, self.partitions, self.target, self.rate = bootstrap, partitions, target, rate
        self.confirmed = bytearray(target * 2 + 1000)   # 1 = delivery confirmed (index = seq)
        self.n_confirmed = 0
        self.n_failed = 0
        self.next_seq = 0
        self.errors: list[str] = []
        self.fatal_restarts = 0
        self.no_offset_acks = 0
        self.end_offsets = [0] * partitions             # max confirmed offset + 1, per partition
        self.stop_flag = threading.Event()
        self.done = threading.Event()
        self.exc: BaseException | None = None
        self._fatal = False

    def _producer(self) -> Producer:
        return Producer({
            "bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": self.idempotent,
            "max.in.flight.requests.per.connection": 5 if self.idempotent else 1,
            "linger.ms": self.linger_ms, "message.timeout.ms": 300_000, "queue.buffering.max.messages": 200_000,
            "reconnect.backoff.max.ms": 1000, "error_cb": self._on_error, "logger": CLIENT_LOG,
        })

    def _on_error(self, err: KafkaError) -> None:
        # Must not raise: an exception in a librdkafka callback surfaces as an odd SystemError in poll().
        try:
            if err.fatal():
                self._fatal = True
                self.errors.append(f"fatal: {err}")
        except Exception:  # noqa: BLE001
            pass

    def _on_delivery(self, err, msg) -> None:
        try:
            self._delivered(err, msg)
        except Exception as e:  # noqa: BLE001 - see _on_error
            self.errors.append(f"delivery callback: {e!r}")

    def _delivered(self, err, msg) -> None:
        seq = int(msg.key())
        if err is not None:
            self.n_failed += 1
            if len(self.errors) < 20:
                self.errors.append(str(err))
            if err.fatal():
                self._fatal = True
            return
        if seq >= len(self.confirmed):
            self.confirmed.extend(bytearray(seq + 1 - len(self.confirmed)))
        self.confirmed[seq] = 1
        self.n_confirmed += 1
        p, offset = msg.partition(), msg.offset()
        if offset is None or offset < 0:
            # Acknowledged without an offset: an idempotent retry the broker reported as a duplicate of a write
            # it already had. Confirmed all the same; the read-back tells where it is.
            self.no_offset_acks += 1
        else:
            self.end_offsets[p] = max(self.end_offsets[p], offset + 1)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            import traceback
            self.exc = e
            self.errors.append("".join(traceback.format_exception(e)))
        finally:
            self.done.set()

    def _run(self) -> None:
        producer = self._producer()
        started = time.monotonic()
        while self.n_confirmed < self.target and not self.stop_flag.is_set():
            if self._fatal:
                # An idempotent producer that hit a fatal error cannot go on: purge, report, start a new one.
                producer.purge()
                producer.flush(10)
                self.fatal_restarts += 1
                self._fatal = False
                producer = self._producer()
            in_flight = self.next_seq - self.n_confirmed - self.n_failed
            due = int((time.monotonic() - started) * self.rate) - self.next_seq
            room = self.target - self.n_confirmed - in_flight
            for _ in range(max(0, min(due, room, 5000))):
                seq = self.next_seq
                try:
                    producer.produce(TOPIC, key=b"%d" % seq, value=encode_value(seq),
                                     partition=seq % self.partitions, on_delivery=self._on_delivery)
                except BufferError:
                    break
                self.next_seq += 1
            producer.poll(0.05)
        producer.flush(60)


# --------------------------------------------------------------------------------------------------------------
# Archive view during the run (object names only): progress, drain, watchdog
# --------------------------------------------------------------------------------------------------------------

def decompress(key: str, body: bytes) -> bytes:
    """An archive object's MAK bytes, by its codec suffix (zstd is the daemon's default for MAK v2/v3, gzip the
    original's and v1's; lz4 and none when configured)."""
    if key.endswith(".gz"):
        return gzip.decompress(body)
    if key.endswith(".zst"):
        import zstandard
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    if key.endswith(".lz4"):
        import lz4.frame
        return lz4.frame.decompress(body)
    return body


# The archive's keys (README "Working directory and S3 layout"): data objects
# <topic>-<p>_<first, 20 digits>-<last, 20 digits>.mak<codec>[.age], each counted once a claim
# <topic>-<p>_<first, 20 digits>.claim names it (a data object no claim names is left by a crash or a lost race and is
# not part of the archive); the Python original's objects <topic>-<p>_<first>-<last>_<yymmdd>.mak.gz have no claim.
RANGE_NAME_RE = re.compile(
    rf"^{re.escape(PREFIX)}/{re.escape(TOPIC)}/(\d+)/{re.escape(TOPIC)}-(\d+)_(\d+)-(\d+)_(\d{{6}})\.mak\.gz$")
OBJECT_NAME_RE = re.compile(
    rf"^{re.escape(PREFIX)}/{re.escape(TOPIC)}/(\d+)/{re.escape(TOPIC)}-(\d+)_(\d{{20}})-(\d{{20}})\.mak(\.gz|\.zst|\.lz4)?(\.age)?$")
CLAIM_NAME_RE = re.compile(rf"^{re.escape(PREFIX)}/{re.escape(TOPIC)}/(\d+)/{re.escape(TOPIC)}-(\d+)_(\d{{20}})\.claim$")


# The daemon's [groups] snapshots: the archive's own folder, neither data nor foreign.
GROUP_SNAPSHOT_RE = re.compile(
    rf"^{re.escape(PREFIX)}/_kafkatos3/groups/\d{{4}}-\d{{2}}-\d{{2}}/\d{{20}}-[A-Za-z0-9._-]+\.json$")
# The uploader's check that the store refuses overwrites (archive/fence.rs): not data, not foreign.
PROBE_KEY = f"{PREFIX}/_kafkatos3/probe/conditional-create"


def parse_key(key: str, partitions: int) -> tuple[str, int, int, int | None, bool] | None:
    """(kind, partition, first offset, last offset, original) for an archive key, kind "object" or "claim" (whose
    last offset is in its body: None); None for a foreign key."""
    for kind, regex in (("original", RANGE_NAME_RE), ("object", OBJECT_NAME_RE), ("claim", CLAIM_NAME_RE)):
        m = regex.match(key)
        if m and m.group(1) == m.group(2) and int(m.group(1)) < partitions:
            last = int(m.group(4)) if kind != "claim" else None
            return ("claim" if kind == "claim" else "object"), int(m.group(1)), int(m.group(3)), last, kind == "original"
    return None


def list_keys(s3) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=ARCHIVE_BUCKET):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def claimed_objects(s3, keys: list[str], partitions: int) -> tuple[dict[str, tuple[int, int, int]], list[str]]:
    """The archive: {object key: (partition, first, last)} for every object a claim names and every original object,
    read as a reader must (one GET per claim); and the data objects no claim names."""
    objects: dict[str, tuple[int, int, int]] = {}
    archive: dict[str, tuple[int, int, int]] = {}
    claims = []
    for key in keys:
        parsed = parse_key(key, partitions)
        if parsed is None:
            continue
        kind, p, first, last, original = parsed
        if kind == "claim":
            claims.append((key, p, first))
        elif original:
            archive[key] = (p, first, last)
        else:
            objects[key] = (p, first, last)

    def fetch(claim: tuple[str, int, int]) -> tuple[str, int, int, dict]:
        key, p, first = claim
        return key, p, first, json.loads(s3.get_object(Bucket=ARCHIVE_BUCKET, Key=key)["Body"].read())

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for key, p, first, body in pool.map(fetch, claims):
            target = key.rsplit("/", 1)[0] + "/" + body["object"]
            if body.get("first") != first or target not in objects or objects[target][2] != body.get("last"):
                raise MakError(f"claim {key} ({body}) does not name a listed object holding its offsets")
            archive[target] = objects.pop(target)
    return archive, sorted(objects)


class ArchiveView:
    """Per partition, 1 + the highest last offset of a claimed object: the cheap progress measure for the drain and
    the watchdog. Object names carry both offsets; an object counts when its first offset has a claim (names only:
    no GET)."""

    def __init__(self, partitions: int):
        self.partitions = partitions

    def through(self, s3, keys: list[str]) -> list[int]:
        claimed: set[tuple[int, int]] = set()
        objects: list[tuple[int, int, int, bool]] = []
        for key in keys:
            parsed = parse_key(key, self.partitions)
            if parsed:
                kind, p, first, last, original = parsed
                if kind == "claim":
                    claimed.add((p, first))
                else:
                    objects.append((p, first, last, original))
        top = [0] * self.partitions
        for p, first, last, original in objects:
            if original or (p, first) in claimed:
                top[p] = max(top[p], last + 1)
        return top


# --------------------------------------------------------------------------------------------------------------
# The chaos run
# --------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Counts:
    kills: int = 0
    lost_machines: int = 0
    graceful_stops: int = 0
    term_timeouts: int = 0
    extra_starts: int = 0
    extra_stops: int = 0
    membership_changes: int = 0
    s3_outages: int = 0
    s3_freezes: int = 0
    broker_restarts: int = 0
    watchdog_restarts: int = 0
    group_switches: int = 0
    unexpected_exits: int = 0
    unclean_final_exits: int = 0


class Chaos:
    """Runs the faults from the plan while the producer produces; owns the instances and the timers."""

    def __init__(self, args, mode: Mode, state: Path, services: Services, binary: Path, rng: random.Random):
        self.args, self.mode, self.state, self.services, self.rng = args, mode, state, services, rng
        self.counts = Counts()
        self.timers: list[tuple[float, int, str, object]] = []
        self.timer_seq = 0
        self.group = f"chaos-{os.getpid()}-{int(time.time())}"
        cfg = daemon_config(mode, services, self.group)
        self.base = [Instance(f"d{i + 1}", state, binary, cfg) for i in range(args.instances)]
        self.extra = Instance(f"d{args.instances + 1}", state, binary, cfg)
        self.instances = self.base + [self.extra]
        self.s3_down = False
        self.broker_down = False
        self.s3 = services.s3_client(timeout=5)
        self.progress = [0] * mode.partitions
        self.view = ArchiveView(mode.partitions)
        self.last_progress_at = time.monotonic()
        self.last_list_at = 0.0
        self.counting = False      # membership changes are counted from the first fault to the final stop
        self.switching = False     # a group switch is under way: no faults meanwhile
        self.watchdog_marks: dict[Instance, int] = {}   # log sizes at the last watchdog restart

    # -- timers: restarts and restores happen later while other faults go on --------------------------------------

    def later(self, delay: float, what: str, fn) -> None:
        self.timer_seq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay, self.timer_seq, what, fn))

    def run_due_timers(self, everything: bool = False) -> None:
        while self.timers and (everything or self.timers[0][0] <= time.monotonic()):
            _, _, _, fn = heapq.heappop(self.timers)
            fn()

    # -- membership ------------------------------------------------------------------------------------------------

    def start_instance(self, inst: Instance, note: str = "") -> None:
        inst.start(note)
        inst.busy = False
        if self.counting:
            self.counts.membership_changes += 1
        say(f"start {inst.name} (pid {inst.proc.pid}){' ' + note if note else ''}")

    def reap(self) -> None:
        """An exit the harness did not cause is counted, its log tail shown, and the instance restarted."""
        for inst in self.instances:
            if inst.proc is not None and not inst.expect_exit and inst.proc.poll() is not None:
                rc = inst.proc.returncode
                self.counts.unexpected_exits += 1
                inst.expect_exit = True
                inst.busy = True
                say(f"UNEXPECTED EXIT of {inst.name} (pid {inst.proc.pid}, status {rc}); last log lines:\n"
                    f"{inst.log_tail()}")
                self.later(2.0, f"restart {inst.name}", lambda i=inst: self.start_instance(i, "(after unexpected exit)"))

    # -- the faults ------------------------------------------------------------------------------------------------

    def pick(self, candidates: list[Instance]) -> Instance | None:
        ready = [i for i in candidates if i.running() and not i.busy]
        return self.rng.choice(ready) if ready else None

    def act_kill(self, lost: bool) -> bool:
        inst = self.pick(self.instances)
        if inst is None:
            return False
        pid = inst.proc.pid
        inst.busy = True
        inst.kill9()
        self.counts.kills += 1
        self.counts.membership_changes += 1
        delay = self.rng.uniform(0.5, 4.0)
        if lost:
            inst.lose_machine(self.state)
            self.counts.lost_machines += 1
        say(f"kill -9 {inst.name} (pid {pid}){' + EMPTY working dir (lost machine)' if lost else ''}; "
            f"restart in {delay:.1f}s")
        self.later(delay, f"restart {inst.name}", lambda: self.start_instance(inst, "(after kill -9)"))
        return True

    def stop_gracefully(self, inst: Instance, then) -> None:
        """SIGTERM, then `then()` once it exited; kill -9 (counted as a timeout) past shutdown_timeout + 15 s."""
        inst.busy = True
        inst.signal(signal.SIGTERM)
        if self.counting:
            self.counts.membership_changes += 1
        deadline = time.monotonic() + self.mode.shutdown_timeout_s + 15

        def check():
            if inst.proc.poll() is not None:
                if inst.proc.returncode != 0:
                    say(f"{inst.name} exited with status {inst.proc.returncode} after SIGTERM")
                    self.counts.unclean_final_exits += 1
                then()
            elif time.monotonic() > deadline:
                self.counts.term_timeouts += 1
                say(f"{inst.name} still running {self.mode.shutdown_timeout_s + 15}s after SIGTERM: kill -9")
                inst.kill9()
                then()
            else:
                self.later(0.2, f"wait for {inst.name}", check)
        self.later(0.2, f"wait for {inst.name}", check)

    def act_term(self) -> bool:
        inst = self.pick(self.instances)
        if inst is None:
            return False
        say(f"SIGTERM {inst.name} (pid {inst.proc.pid}); restart once it has exited")
        self.counts.graceful_stops += 1
        delay = self.rng.uniform(0.5, 3.0)

        def exited():
            say(f"{inst.name} exited ({inst.proc.returncode}); restart in {delay:.1f}s")
            self.later(delay, f"restart {inst.name}", lambda: self.start_instance(inst, "(after SIGTERM)"))
        self.stop_gracefully(inst, exited)
        return True

    def act_extra(self) -> bool:
        inst = self.extra
        if inst.busy:
            return False
        if inst.running():
            say(f"extra instance leaves: SIGTERM {inst.name} (pid {inst.proc.pid})")
            self.counts.extra_stops += 1

            def gone():
                inst.busy = False
                say(f"{inst.name} left ({inst.proc.returncode})")
            self.stop_gracefully(inst, gone)
        else:
            self.counts.extra_starts += 1
            self.start_instance(inst, "(extra instance joins)")
        return True

    def act_s3(self) -> bool:
        if self.s3_down:
            return False
        duration = self.rng.uniform(*self.mode.outage_s)
        freeze = self.rng.random() < 0.4
        self.s3_down = True
        self.counts.s3_outages += 1
        if freeze:
            self.counts.s3_freezes += 1
            self.services.freeze_archive_s3()
            say(f"archive S3 FROZEN (SIGSTOP pid {self.services.frozen_pid}) for {duration:.0f}s")
        else:
            self.services.stop_archive_s3()
            say(f"archive S3 STOPPED for {duration:.0f}s")

        def restore():
            if freeze:
                self.services.thaw_archive_s3()
            else:
                self.services.start_archive_s3()
            self.s3_down = False
            self.last_progress_at = time.monotonic()
            say("archive S3 back")
        self.later(duration, "archive S3 back", restore)
        return True

    def act_broker(self) -> bool:
        if self.broker_down:
            return False
        self.broker_down = True
        self.counts.broker_restarts += 1
        down = self.rng.uniform(1.0, 5.0)
        self.services.stop_broker()
        say(f"broker STOPPED; restart in {down:.1f}s")

        def restore():
            self.services.start_broker()
            self.broker_down = False
            self.last_progress_at = time.monotonic()
            say("broker back")
        self.later(down, "broker back", restore)
        return True

    def do(self, kind: str, lost: bool) -> bool:
        return {"kill": lambda: self.act_kill(lost), "term": self.act_term, "extra": self.act_extra,
                "s3": self.act_s3, "broker": self.act_broker}[kind]()

    # -- progress and the watchdog ---------------------------------------------------------------------------------

    def poll_archive(self, every: float = 5.0) -> None:
        if self.s3_down or time.monotonic() - self.last_list_at < every:
            return
        self.last_list_at = time.monotonic()
        try:
            top = self.view.through(self.s3, list_keys(self.s3))
        except Exception:  # noqa: BLE001 - S3 may be restarting; try again next time
            return
        if top != self.progress:
            self.progress = top
            self.last_progress_at = time.monotonic()
            self.watchdog_marks = {}   # progress again: a later stall starts the escalation afresh

    def watchdog(self, pending: bool) -> None:
        """When nothing new reached the archive for mode.watchdog_s while work is pending and no outage is on:
        first restart every daemon; if after that no consumer was even assigned a partition (the test broker's
        group wedge, TESTING quirk 3: the group never completes a rebalance again), move every daemon to a fresh
        group id that starts from the old group's committed offsets, copied exactly. If consumers were assigned but
        the archive still did not move, that is the daemon's hang: restart again, never switch. All of it is
        counted in the table and in chaos.log; none of it can make a run pass that would otherwise fail."""
        now = time.monotonic()
        if not pending or self.s3_down or self.broker_down or self.switching:
            self.last_progress_at = now   # an outage is not a hang: the clock starts when it ends
            return
        if now - self.last_progress_at < self.mode.watchdog_s or self.timers:
            return   # (pending restarts first: a decision with instances half-way through a restart would be wrong)
        self.last_progress_at = now
        running = [i for i in self.instances if i.running() and not i.busy]
        if self.watchdog_marks and not self.assigned_since_marks():
            self.switch_group(running)
            return
        hang = " (consumers WERE assigned since the last watchdog restart: a daemon hang?)" if self.watchdog_marks else ""
        say(f"WATCHDOG: no archive progress for {self.mode.watchdog_s}s (archived through {self.progress}){hang}; "
            f"restarting {', '.join(i.name for i in running) or 'nothing'}")
        self.counts.watchdog_restarts += 1
        self.watchdog_marks = {i: i.log_size() for i in self.instances}
        for inst in running:
            self.stop_gracefully(inst, lambda i=inst: self.start_instance(i, "(watchdog restart)"))

    def assigned_since_marks(self) -> bool:
        """Did any daemon log an assignment since the last watchdog restart?"""
        for inst, mark in self.watchdog_marks.items():
            try:
                with open(inst.log, "rb") as log:
                    log.seek(mark)
                    if b": assigned " in log.read():
                        return True
            except OSError:
                pass
        return False

    def switch_group(self, running: list[Instance]) -> None:
        """Stop every daemon, copy the committed offsets to a new group id, restart them all in it."""
        self.switching = True
        self.counts.group_switches += 1
        old, new = self.group, f"{self.group}-{self.counts.group_switches}"
        say(f"WATCHDOG: still no partition assigned to any consumer after a restart: group {old} is wedged; "
            f"moving every daemon to group {new} with {old}'s committed offsets")
        remaining = set(running)

        def stopped(inst: Instance | None) -> None:
            remaining.discard(inst)
            if remaining:
                return
            offsets = copy_commits(self.services.bootstrap, old, new, self.mode.partitions)
            say(f"copied committed offsets {dict(sorted(offsets.items()))} from {old} to {new}")
            self.group = new
            for inst in self.instances:
                inst.set_group(new)
            for inst in running:
                self.start_instance(inst, f"(group switch to {new})")
            self.watchdog_marks = {}
            self.switching = False
            self.last_progress_at = time.monotonic()
        for inst in running:
            self.stop_gracefully(inst, lambda i=inst: stopped(i))
        if not running:
            stopped(None)

    # -- phases ----------------------------------------------------------------------------------------------------

    def tick(self, pending: bool) -> None:
        self.reap()
        self.run_due_timers()
        self.poll_archive()
        self.watchdog(pending)

    def run(self, producer: SeqProducer, plan: list[tuple[str, bool]]) -> None:
        """Faults at evenly spread (jittered) times over the expected production time, until the plan is done and
        the producer has its confirmed target. An action whose target is busy is retried a moment later."""
        for inst in self.base:
            self.start_instance(inst)
        self.counting = True
        span = self.mode.records / self.mode.rate
        gap = span / (len(plan) + 1)
        next_at = time.monotonic() + gap * self.rng.uniform(0.5, 1.5)
        last_report = time.monotonic()
        todo = list(plan)
        while todo or not producer.done.is_set():
            if producer.exc:
                raise InfraError(f"producer thread failed: {producer.exc!r}")
            self.tick(pending=True)
            if todo and not self.switching and time.monotonic() >= next_at:
                kind, lost = todo[0]
                if self.do(kind, lost):
                    todo.pop(0)
                    next_at = time.monotonic() + gap * self.rng.uniform(0.5, 1.5)
                else:
                    next_at = time.monotonic() + 1.0
            if time.monotonic() - last_report >= 15:
                last_report = time.monotonic()
                say(f"progress: confirmed {producer.n_confirmed}/{producer.target}, failed sends {producer.n_failed}, "
                    f"archived through {sum(self.progress)} of {sum(producer.end_offsets)}; "
                    f"{len(todo)} faults to go; up: {', '.join(i.name for i in self.instances if i.running())}")
            time.sleep(0.1)
        say(f"chaos over: producer confirmed {producer.n_confirmed} records "
            f"({producer.n_failed} failed sends, {producer.fatal_restarts} producer restarts)")

    def settle(self) -> None:
        """End of faults: every pending restart/restore happens now, and every base instance is running."""
        while self.timers:
            self.reap()
            self.run_due_timers()
            time.sleep(0.1)
        for inst in self.base:
            if not inst.running():
                self.start_instance(inst, "(drain)")

    def drain(self, ends: list[int]) -> bool:
        """Until the archive names every partition's last offset, or the timeout. Faults are over; the watchdog
        still runs (reported)."""
        deadline = time.monotonic() + self.mode.drain_timeout_s
        self.last_progress_at = time.monotonic()
        say(f"drain: waiting for the archive to reach {ends} (timeout {self.mode.drain_timeout_s}s)")
        while time.monotonic() < deadline:
            self.tick(pending=True)
            self.poll_archive(every=2.0)
            if all(self.progress[p] >= ends[p] for p in range(self.mode.partitions)):
                say(f"drain: archive reached the end of every partition ({sum(ends)} offsets)")
                return True
            time.sleep(0.2)
        say(f"drain: TIMEOUT; archived through {self.progress} of {ends}")
        return False

    def stop_all(self) -> None:
        """SIGTERM every running instance and wait; a non-zero exit or a timeout is counted."""
        self.counting = False
        running = [i for i in self.instances if i.running()]
        say(f"stopping {', '.join(i.name for i in running)} (SIGTERM)")
        for inst in running:
            self.stop_gracefully(inst, lambda: None)
        while self.timers:
            self.run_due_timers()
            time.sleep(0.1)

    def kill_everything(self) -> None:
        """Cleanup on failure or Ctrl-C: no grace."""
        for inst in self.instances:
            if inst.running():
                inst.kill9()


# --------------------------------------------------------------------------------------------------------------
# Independent checks: Kafka read-back, MAK v1 reader, verify
# --------------------------------------------------------------------------------------------------------------

def read_back(bootstrap: str, partitions: int, min_ends: list[int], timeout_s: float = 900):
    """The topic as Kafka holds it: per partition an array offset -> seq (-1 for none), read with a fresh group
    until each partition signals EOF (the fetch high watermark: quirk 2 makes ListOffsets unreliable on Tansu)
    at or past the confirmed end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chaos-readback-{os.getpid()}-{time.time()}",
                         "enable.auto.commit": False, "enable.partition.eof": True, "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000}, logger=CLIENT_LOG)
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(partitions)])
    by_offset = [array.array("q") for _ in range(partitions)]
    eof = [False] * partitions
    first_eof: list[float | None] = [None] * partitions
    deadline = time.monotonic() + timeout_s
    bad_values = 0
    try:
        while not all(eof):
            if time.monotonic() > deadline:
                raise InfraError(f"reading the topic back took over {timeout_s}s (eof {eof})")
            now = time.monotonic()
            for p in range(partitions):
                # At the end but short of the confirmed end: wait a little, then accept (the table shows the loss).
                if not eof[p] and first_eof[p] is not None and now - first_eof[p] > 30:
                    eof[p] = True
            for msg in consumer.consume(10_000, 1.0):
                p = msg.partition()
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        first_eof[p] = first_eof[p] or time.monotonic()
                        eof[p] = msg.offset() >= min_ends[p]
                    continue
                off = msg.offset()
                arr = by_offset[p]
                if off >= len(arr):
                    arr.extend([-1] * (off + 1 - len(arr)))
                seq = decode_seq(msg.value() or b"")
                if seq is None:
                    bad_values += 1
                    seq = -2
                arr[off] = seq
                eof[p] = False
    finally:
        consumer.close()
    return by_offset, bad_values


def copy_commits(bootstrap: str, old: str, new: str, partitions: int) -> dict[int, int]:
    """Copy group `old`'s committed offsets to group `new` (neither has members: every daemon is stopped), exactly,
    so a switch of group id changes nothing the daemons rely on. Partitions without a commit stay without one."""
    src = Consumer({"bootstrap.servers": bootstrap, "group.id": old, "enable.auto.commit": False}, logger=CLIENT_LOG)
    got = src.committed([TopicPartition(TOPIC, p) for p in range(partitions)], timeout=30)
    offsets = {tp.partition: tp.offset for tp in got if tp.offset >= 0}
    del got   # a list from committed() alive while its consumer closes can hang the close (librdkafka)
    src.close()
    if offsets:
        dst = Consumer({"bootstrap.servers": bootstrap, "group.id": new, "enable.auto.commit": False}, logger=CLIENT_LOG)
        dst.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in offsets.items()], asynchronous=False)
        dst.close()
    return offsets


class MakError(Exception):
    pass


MAK_V2_MAGIC = b"\x89MAK\r\n\x1a\n"


def parse_mak_v2(data: bytes):
    """MAK v2 (docs/format.md), written from the spec only, for a sealed file: (header dict with v1's key names,
    last offset, [(offset, value)]). Lengths, kinds, the footer and the progress block are checked against the
    records; CRC-32C is not (no C implementation at hand, and pure Python is too slow here): the records are
    compared with Kafka's anyway."""
    if len(data) < 68:
        raise MakError("short v2 preamble")
    (version,) = struct.unpack_from(">H", data, 8)
    if version != 2:
        raise MakError(f"v2 magic with version {version}")
    wpos, count, last, _ts_first, _ts_last, state = struct.unpack_from(">QQqqqI", data, 12)
    (hlen,) = struct.unpack_from(">I", data, 60)
    start = 64 + hlen + 4
    if start > len(data) or not start <= wpos <= len(data):
        raise MakError(f"write position {wpos} outside {start}..{len(data)}")
    raw = json.loads(data[64:64 + hlen].decode("utf-8"))
    header = {"topic": raw.get("topic"), "partition": raw.get("partition"), "startoffset": raw.get("start_offset")}
    pos, records, footer = start, [], None
    while pos < wpos:
        if footer is not None:
            raise MakError(f"frame after the footer at {pos}")
        if pos + 4 > wpos:
            raise MakError(f"frame length crosses the write position at {pos}")
        (n,) = struct.unpack_from(">I", data, pos)
        end = pos + 4 + n
        if n < 5 or end > wpos:
            raise MakError(f"frame of length {n} at {pos} crosses the write position")
        kind = data[pos + 4]
        if kind == 2:
            footer = struct.unpack_from(">Qqq", data, pos + 5)
        elif kind == 1:
            (offset,) = struct.unpack_from(">q", data, pos + 5)
            at = pos + 22
            (klen,) = struct.unpack_from(">i", data, at)
            at += 4 + max(klen, 0)
            (vlen,) = struct.unpack_from(">i", data, at)
            value = data[at + 4:at + 4 + max(vlen, 0)]
            at += 4 + max(vlen, 0)
            (hcount,) = struct.unpack_from(">I", data, at)
            at += 4
            for _ in range(hcount):
                (hk,) = struct.unpack_from(">I", data, at)
                at += 4 + hk
                (hv,) = struct.unpack_from(">i", data, at)
                at += 4 + max(hv, 0)
            if at + 4 != end:
                raise MakError(f"record frame at {pos} disagrees with its length")
            records.append((offset, value))
        else:
            raise MakError(f"frame kind {kind} at {pos}")
        pos = end
    if state != 1 or footer is None:
        raise MakError(f"not sealed (state {state}, footer {'present' if footer else 'missing'})")
    if footer[0] != count or count != len(records) or (records and (footer[2], last) != (records[-1][0],) * 2):
        raise MakError(f"footer {footer} / progress block ({count}, {last}) disagree with {len(records)} records")
    return header, last, records


def _varint(data: bytes, at: int, end: int) -> tuple[int, int]:
    """An unsigned LEB128 varint at `at` (at most 10 bytes, before `end`): (value, position after it)."""
    value = shift = 0
    for i in range(10):
        if at + i >= end:
            raise MakError(f"varint crosses its block's end at {at}")
        byte = data[at + i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >= 1 << 64:
                raise MakError(f"varint above 2^64-1 at {at}")
            return value, at + i + 1
        shift += 7
    raise MakError(f"varint longer than 10 bytes at {at}")


def _v3_block_records(data: bytes, pos: int, end: int, first_offset: int, count: int, flags: int) -> list:
    """The (offset, value) of every record of a v3 record block whose columns start at `pos` and end at `end` (its
    CRC): gaps, deltas, types, key lengths, value lengths, headers, data (docs/format.md, "Record block")."""
    at = pos
    offsets = [first_offset]
    gaps = [0] * (count - 1)
    if flags & 1:
        for i in range(count - 1):
            gaps[i], at = _varint(data, at, end)
    for i in range(count - 1):
        offsets.append(offsets[-1] + gaps[i] + 1)
        _, at = _varint(data, at, end)   # the timestamp delta: not compared
    if flags & 2:
        if at + count > end or any(t > 2 for t in data[at:at + count]):
            raise MakError(f"bad timestamp type column at {at}")
        at += count
    key_lens, value_lens = [], []
    for lens in (key_lens, value_lens):
        for _ in range(count):
            n, at = _varint(data, at, end)
            lens.append(max(n - 1, 0))
    for _ in range(count):
        headers, at = _varint(data, at, end)
        for _ in range(headers):
            n, at = _varint(data, at, end)
            at += n
            n, at = _varint(data, at, end)
            at += max(n - 1, 0)
    records = []
    for offset, k, v in zip(offsets, key_lens, value_lens):
        at += k
        records.append((offset, data[at:at + v]))
        at += v
    if at != end:
        raise MakError(f"record block columns end at {at}, not at its CRC ({end})")
    return records


def parse_mak_v3(data: bytes):
    """MAK v3 (docs/format.md), written from the spec only, for a sealed file; as parse_mak_v2 (CRCs not checked)."""
    if len(data) < 84:
        raise MakError("short v3 preamble")
    wpos, count, last, *_times, state = struct.unpack_from(">QQqqqqqI", data, 12)
    (hlen,) = struct.unpack_from(">I", data, 76)
    start = 80 + hlen + 4
    if start > len(data) or not start <= wpos <= len(data):
        raise MakError(f"write position {wpos} outside {start}..{len(data)}")
    raw = json.loads(data[80:80 + hlen].decode("utf-8"))
    header = {"topic": raw.get("topic"), "partition": raw.get("partition"), "startoffset": raw.get("start_offset")}
    pos, records, footer = start, [], None
    while pos < wpos:
        if footer is not None:
            raise MakError(f"block after the footer at {pos}")
        if pos + 5 > wpos:
            raise MakError(f"block head crosses the write position at {pos}")
        (n,) = struct.unpack_from(">I", data, pos)
        end = pos + 4 + n
        if n < 5 or end > wpos:
            raise MakError(f"block of length {n} at {pos} crosses the write position")
        kind = data[pos + 4]
        if kind == 2:
            footer = struct.unpack_from(">Qqq", data, pos + 5)
        elif kind == 1:
            flags, _ts_type, block_count, first_offset = struct.unpack_from(">BBIq", data, pos + 5)
            if flags & ~3 or block_count == 0:
                raise MakError(f"record block at {pos} with flags {flags}, {block_count} records")
            if records and first_offset <= records[-1][0]:
                raise MakError(f"record block at {pos} starts at offset {first_offset}, not after {records[-1][0]}")
            records.extend(_v3_block_records(data, pos + 27, end - 4, first_offset, block_count, flags))
        else:
            raise MakError(f"block kind {kind} at {pos}")
        pos = end
    if state != 1 or footer is None:
        raise MakError(f"not sealed (state {state}, footer {'present' if footer else 'missing'})")
    if footer[0] != count or count != len(records) or (records and (footer[2], last) != (records[-1][0],) * 2):
        raise MakError(f"footer {footer} / progress block ({count}, {last}) disagree with {len(records)} records")
    return header, last, records


def parse_mak(data: bytes):
    """MAK v1 (docs/format.md), written from the spec only: (header dict, last-offset field, [(offset, value)]).
    A v2 or v3 file (by its magic, then its version) goes to parse_mak_v2 or parse_mak_v3."""
    if data[:8] == MAK_V2_MAGIC:
        (version,) = struct.unpack_from(">H", data, 8) if len(data) >= 10 else (None,)
        return parse_mak_v3(data) if version == 3 else parse_mak_v2(data)
    if data[:3] != b"MAK":
        raise MakError("bad magic")
    if len(data) < 27:
        raise MakError("short fixed header")
    last, wpos, hlen = struct.unpack_from(">QQQ", data, 3)
    start = 27 + hlen
    if start > len(data):
        raise MakError("header JSON past the end")
    header = json.loads(data[27:start].decode("utf-8"))
    if wpos < start or wpos > len(data):
        raise MakError(f"write position {wpos} outside {start}..{len(data)}")
    pos, records = start, []
    while pos < wpos:
        if pos + 8 > wpos:
            raise MakError(f"key length crosses the write position at {pos}")
        (klen,) = struct.unpack_from(">Q", data, pos)
        pos += 8 + klen
        if pos + 8 > wpos:
            raise MakError(f"value length crosses the write position at {pos}")
        (vlen,) = struct.unpack_from(">Q", data, pos)
        vstart = pos + 8
        pos = vstart + vlen
        if pos + 8 > wpos:
            raise MakError(f"record offset crosses the write position at {pos}")
        (offset,) = struct.unpack_from(">Q", data, pos)
        pos += 8
        records.append((offset, data[vstart:vstart + vlen]))
    return header, last, records


@dataclasses.dataclass
class Findings:
    objects: int = 0
    foreign_objects: int = 0
    group_snapshots: int = 0
    bad_group_snapshots: int = 0
    unclaimed_objects: int = 0
    unreadable: int = 0
    name_mismatches: int = 0
    archived_records: int = 0
    duplicates: int = 0
    missing: int = 0
    mismatched: int = 0
    order_violations: int = 0
    kafka_records: int = 0
    kafka_holes: int = 0
    from_lost_offsets: int = 0
    duplicate_offsets: int = 0
    kafka_duplicates: int = 0
    confirmed_not_in_kafka: int = 0
    unconfirmed_in_kafka: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)


def check_archive(services: Services, producer: SeqProducer, kafka: list[array.array], partitions: int) -> Findings:
    """Read EVERY object of the bucket and count every sequence number.

    Each archived record (partition, offset, seq) is classified against the read-back of Kafka:
      - Kafka holds that seq at that offset: a good copy;
      - Kafka has no record at that offset any more (the test broker can lose a batch across a restart and leave
        a hole; the producer then re-sends it): a copy "from a lost offset", still a copy of the seq;
      - Kafka holds another seq there, or the value has no seq: MISMATCHED (wrong data in the archive).
    A seq is expected as many times as Kafka holds it (a re-sent batch can be there twice), and at least once when
    its delivery was confirmed. duplicates = copies beyond that; missing = copies short of it. Strict on purpose:
    a confirmed record the broker lost counts as missing, and the table says so."""
    f = Findings()
    s3 = services.s3_client(timeout=60)
    keys = list_keys(s3)
    max_seq = max(len(producer.confirmed), producer.next_seq + 1)
    kafka_count = array.array("H", bytes(2 * max_seq))
    for p in range(partitions):
        for seq in kafka[p]:
            if seq == -1:
                f.kafka_holes += 1
            elif 0 <= seq < max_seq:
                kafka_count[seq] += 1
                f.kafka_records += 1
            else:
                f.notes.append(f"Kafka holds a record whose seq {seq} was never produced")
    found = array.array("H", bytes(2 * max_seq))
    first_holder: dict[tuple[int, int], str] = {}
    holders: dict[tuple[int, int], list[str]] = {}   # (p, offset) -> objects, only for offsets archived twice

    def fetch(key: str) -> tuple[str, bytes | Exception]:
        try:
            return key, decompress(key, s3.get_object(Bucket=ARCHIVE_BUCKET, Key=key)["Body"].read())
        except Exception as e:  # noqa: BLE001 - reported as unreadable
            return key, e

    archive, unclaimed = claimed_objects(s3, keys, partitions)
    f.unclaimed_objects = len(unclaimed)
    snapshots = [k for k in keys if GROUP_SNAPSHOT_RE.match(k)]
    f.group_snapshots = len(snapshots)
    for key in snapshots:
        try:
            body = json.loads(s3.get_object(Bucket=ARCHIVE_BUCKET, Key=key)["Body"].read())
            assert body["format"] == 1 and isinstance(body["groups"], dict) and body["topics"].get(TOPIC) == partitions
        except Exception as e:  # noqa: BLE001 - counted and named
            f.bad_group_snapshots += 1
            f.notes.append(f"group snapshot {key} unreadable: {e!r}")
    foreign = [k for k in keys
               if parse_key(k, partitions) is None and not GROUP_SNAPSHOT_RE.match(k) and k != PROBE_KEY]
    f.foreign_objects = len(foreign)
    f.notes.extend(f"object not named like an archive object: {k}" for k in foreign)
    parsed = [(k, p, s, e) for k, (p, s, e) in sorted(archive.items())]
    f.objects = len(parsed)
    meta = {k: (p, s, e) for k, p, s, e in parsed}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for key, data in pool.map(fetch, [k for k, *_ in parsed]):
            p, start, end = meta[key]
            try:
                if isinstance(data, Exception):
                    raise MakError(f"get/gunzip: {data}")
                header, last_field, records = parse_mak(data)
            except (MakError, ValueError, UnicodeDecodeError) as e:
                f.unreadable += 1
                f.notes.append(f"UNREADABLE {key}: {e}")
                continue
            # The name is what verify and the next owner trust: it must say what the object holds.
            if (header.get("topic"), header.get("partition"), header.get("startoffset")) != (TOPIC, p, start) \
                    or not records or records[0][0] < start or records[-1][0] != last_field \
                    or (end is not None and records[-1][0] != end):
                f.name_mismatches += 1
                f.notes.append(f"NAME MISMATCH {key}: header {header}, last-offset field {last_field}, records "
                               f"{records[0][0] if records else '-'}..{records[-1][0] if records else '-'}")
            prev = -1
            arr = kafka[p]
            for off, value in records:
                f.archived_records += 1
                if off <= prev:
                    f.order_violations += 1
                prev = off
                seq = decode_seq(value)
                in_kafka = arr[off] if off < len(arr) else -1
                if seq is None or seq >= max_seq or in_kafka not in (seq, -1):
                    f.mismatched += 1
                    if f.mismatched <= 5:
                        f.notes.append(f"MISMATCH {key} offset {off}: archived seq {seq}, Kafka has {in_kafka}")
                    continue
                if in_kafka == -1:
                    f.from_lost_offsets += 1
                found[seq] += 1
                po = (p, off)
                if po in first_holder:
                    holders.setdefault(po, [first_holder[po]]).append(key)
                else:
                    first_holder[po] = key
    for seq in range(max_seq):
        k = kafka_count[seq]
        confirmed = seq < len(producer.confirmed) and producer.confirmed[seq]
        if k > 1:
            f.kafka_duplicates += k - 1
        if confirmed and not k:
            f.confirmed_not_in_kafka += 1
        if k and not confirmed:
            f.unconfirmed_in_kafka += 1
        expected = max(k, 1 if confirmed else 0)
        if found[seq] > expected:
            f.duplicates += found[seq] - expected
        elif found[seq] < expected:
            f.missing += expected - found[seq]
    f.duplicate_offsets = sum(len(v) - 1 for v in holders.values())
    # Offsets archived twice, grouped into ranges per set of objects: what a bug report needs.
    ranges: dict[tuple[int, tuple[str, ...]], list[int]] = {}
    for (p, off), objs in holders.items():
        ranges.setdefault((p, tuple(sorted(o.rsplit("/", 1)[-1] for o in objs))), []).append(off)
    examples = [f"DUPLICATE partition {p} offsets {min(offs)}-{max(offs)} ({len(offs)} records) in {' and '.join(objs)}"
                for (p, objs), offs in sorted(ranges.items(), key=lambda kv: (kv[0][0], min(kv[1])))]
    f.notes.extend(examples[:15])
    if len(examples) > 15:
        f.notes.append(f"... and {len(examples) - 15} more duplicated offset ranges")
    return f


def run_verify(binary: Path, config: Path, state: Path) -> tuple[int, str]:
    """`kafkatos3 verify --deep`: its output goes to state/verify.txt; (exit status, last lines)."""
    proc = subprocess.run([str(binary), "verify", "--config", str(config), "--deep"], capture_output=True, text=True,
                          timeout=900)
    text = proc.stdout + proc.stderr
    (state / "verify.txt").write_text(text)
    interesting = [l for l in text.splitlines() if not l.endswith(", clean")]
    return proc.returncode, "\n".join("    " + l for l in interesting[-20:])


def log_stats(instances: list[Instance]) -> dict[str, int]:
    """Counted from the daemon logs (all restarts appended): assignments, hand-overs, panics."""
    stats = {"assigned": 0, "revoked": 0, "handover_timeouts": 0, "late_uploads": 0, "orphaned": 0, "panics": 0,
             "gave_way": 0, "resyncs": 0, "retry_found_own": 0}
    for inst in instances:
        try:
            text = inst.log.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if ": assigned " in line:
                stats["assigned"] += 1
            if "revoked; handing over" in line:
                stats["revoked"] += 1
            if "hand-over timed out" in line:
                stats["handover_timeouts"] += 1
            if "uploaded after the partition was handed over" in line:
                stats["late_uploads"] += 1
            if "set aside in orphaned" in line:
                stats["orphaned"] += 1
            if "panicked" in line:
                stats["panics"] += 1
            # Fenced uploads (conditional create): a lost race, a resync to S3's end, a retry that found its object.
            if "giving way" in line:
                stats["gave_way"] += 1
            if "resyncing to it" in line:
                stats["resyncs"] += 1
            if "already in S3 with the same offsets" in line:
                stats["retry_found_own"] += 1
    return stats


# --------------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------------

def resolve_daemon(args) -> Path:
    if args.daemon:
        binary = Path(args.daemon).resolve()
    else:
        binary = ROOT / "target" / "release" / "kafkatos3"
        if not args.no_build:
            say("cargo build --release -p kafkatos3 (a no-op when up to date)")
            subprocess.run(["cargo", "build", "--release", "-p", "kafkatos3"], cwd=ROOT, check=True)
    if not os.access(binary, os.X_OK):
        raise InfraError(f"daemon binary {binary} not found or not executable")
    return binary


def create_topic(bootstrap: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap}, logger=CLIENT_LOG)
    for fut in admin.create_topics([NewTopic(TOPIC, num_partitions=partitions, replication_factor=1)]).values():
        fut.result(timeout=30)
    deadline = time.monotonic() + 30
    while len(admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions) < partitions:
        if time.monotonic() > deadline:
            raise InfraError(f"topic {TOPIC} did not get {partitions} partitions")
        time.sleep(0.2)


def print_table(rows: list[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v:>12}")


def main() -> int:
    global LOG_FILE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--short", action="store_true", help="the CI form (~3 minutes)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--daemon", default=None, help="kafkatos3 binary (default target/release/kafkatos3, built)")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build for the default binary")
    ap.add_argument("--inject", default=",".join(KINDS), help=f"fault kinds, comma-separated: {','.join(KINDS)}")
    ap.add_argument("--records", type=int, default=None)
    ap.add_argument("--rate", type=int, default=None)
    ap.add_argument("--backlog-limit", default=None,
                    help="the daemons' max_local_backlog_bytes (e.g. 1MiB: S3 outages then pause consumption)")
    ap.add_argument("--instances", type=int, default=2, help="instances always in the group (one more comes and goes)")
    ap.add_argument("--keep", action="store_true", help="keep the state dir even when the run passes")
    args = ap.parse_args()

    mode = dataclasses.replace(SHORT if args.short else FULL)
    if args.records:
        mode.records = args.records
    if args.rate:
        mode.rate = args.rate
    if args.backlog_limit:
        mode.backlog_limit = args.backlog_limit
    kinds = {k.strip() for k in args.inject.split(",") if k.strip()}
    if not kinds <= set(KINDS):
        ap.error(f"--inject: unknown kinds {sorted(kinds - set(KINDS))}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    rng = random.Random(seed)

    state = Path(tempfile.mkdtemp(prefix="kafkatos3-chaos."))
    LOG_FILE = open(state / "chaos.log", "a")
    handler = logging.FileHandler(state / "clients.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    CLIENT_LOG.addHandler(handler)
    services: Services | None = None
    chaos: Chaos | None = None
    producer: SeqProducer | None = None
    ok = False
    rc = 2
    # SIGTERM behaves like Ctrl-C: unwind through the finally below, which stops everything.
    def on_sigterm(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        binary = resolve_daemon(args)
        plan = make_plan(mode, kinds, rng)
        say(f"mode {mode.name}, seed {seed}, {mode.records} records over {mode.partitions} partitions at "
            f"{mode.rate}/s, {args.instances}+1 instances, daemon {binary}, state {state}")
        say("plan: " + " ".join(k + ("!" if lost else "") for k, lost in plan) + "  (kill! = lost machine)")
        services = Services(state)
        services.start_all()
        say(f"services up: broker {services.bootstrap} (storage s3://{BROKER_BUCKET}/ on :{services.broker_s3_port}), "
            f"archive S3 {services.archive_endpoint}")
        create_topic(services.bootstrap, mode.partitions)

        chaos = Chaos(args, mode, state, services, binary, rng)
        producer = SeqProducer(services.bootstrap, mode.partitions, mode.records, mode.rate)
        producer.start()
        chaos.run(producer, plan)
        if producer.exc:
            raise InfraError(f"producer thread failed: {producer.exc!r}")
        chaos.settle()

        say("reading the topic back from Kafka")
        kafka, bad_values = read_back(services.bootstrap, mode.partitions, producer.end_offsets)
        ends = [len(a) for a in kafka]
        drained = chaos.drain(ends)
        chaos.stop_all()
        say("reading every archived object")
        findings = check_archive(services, producer, kafka, mode.partitions)
        if bad_values:
            findings.notes.append(f"{bad_values} Kafka records without a sequence number")
        verify_rc, verify_tail = run_verify(binary, chaos.base[0].config, state)
        stats = log_stats(chaos.instances)
        c = chaos.counts
        elapsed = time.monotonic() - T0

        print()
        print(f"chaos summary: mode {mode.name}, seed {seed}, {elapsed:.0f} s, daemon {binary}")
        print_table([
            ("produced (delivery-confirmed)", producer.n_confirmed),
            ("failed sends (unconfirmed)", producer.n_failed),
            ("read back from Kafka", findings.kafka_records),
            ("  confirmed but not in Kafka", findings.confirmed_not_in_kafka),
            ("  in Kafka but unconfirmed", findings.unconfirmed_in_kafka),
            ("  duplicated in Kafka (re-sent)", findings.kafka_duplicates),
            ("  offsets with no record (holes)", findings.kafka_holes),
            ("archived records", findings.archived_records),
            ("archived objects", findings.objects),
            ("  unclaimed objects (not archive)", findings.unclaimed_objects),
            ("  foreign objects", findings.foreign_objects),
            ("group snapshots ([groups])", findings.group_snapshots),
            ("  unreadable group snapshots", findings.bad_group_snapshots),
            ("DUPLICATES", findings.duplicates),
            ("  offsets archived twice", findings.duplicate_offsets),
            ("  copies from offsets broker lost", findings.from_lost_offsets),
            ("MISSING", findings.missing),
            ("MISMATCHED/PHANTOM", findings.mismatched),
            ("unreadable objects", findings.unreadable),
            ("objects whose name/header lies", findings.name_mismatches),
            ("order violations", findings.order_violations),
            ("kill -9", c.kills),
            ("  lost machines (empty dir)", c.lost_machines),
            ("graceful stops (SIGTERM+restart)", c.graceful_stops),
            ("  SIGTERM timeouts (then kill -9)", c.term_timeouts),
            ("extra instance joins/leaves", f"{c.extra_starts}/{c.extra_stops}"),
            ("rebalances (membership changes)", c.membership_changes),
            ("  'assigned' events in logs", stats["assigned"]),
            ("  hand-over timeouts in logs", stats["handover_timeouts"]),
            ("  uploads after hand-over (logs)", stats["late_uploads"]),
            ("  files set aside in orphaned/", stats["orphaned"]),
            ("  fenced: gave way to another", stats["gave_way"]),
            ("  fenced: resynced to S3's end", stats["resyncs"]),
            ("  fenced: retry found own object", stats["retry_found_own"]),
            ("S3 outages (of which SIGSTOP)", f"{c.s3_outages} ({c.s3_freezes})"),
            ("broker restarts", c.broker_restarts),
            ("watchdog restarts (all daemons)", c.watchdog_restarts),
            ("watchdog group switches (wedge)", c.group_switches),
            ("unexpected daemon exits", c.unexpected_exits),
            ("non-zero exits after SIGTERM", c.unclean_final_exits),
            ("panics in daemon logs", stats["panics"]),
            ("drain complete", "yes" if drained else "NO (timeout)"),
            ("verify --deep exit status", verify_rc),
        ])
        if verify_rc != 0:
            print("  verify --deep said (problem lines):")
            print(verify_tail)
        for note in findings.notes[:40]:
            print("  note: " + note)
        if findings.confirmed_not_in_kafka:
            print(f"  note: the BROKER lost {findings.confirmed_not_in_kafka} delivery-confirmed records (not in the "
                  "read-back); they count as missing, but no daemon could have archived what it never served")
        if findings.kafka_holes or findings.from_lost_offsets:
            print(f"  note: Kafka has {findings.kafka_holes} offsets with no record (a batch the test broker lost "
                  f"across a restart); {findings.from_lost_offsets} archived records came from such offsets")
        if c.watchdog_restarts or c.group_switches:
            print("  note: the watchdog acted (see WATCHDOG lines in chaos.log): a restart after a stall that was "
                  "followed by assignments but still no progress would be a daemon hang; a group switch means no "
                  "consumer got any partition after a restart (the test broker's group wedge)")
        if c.unexpected_exits or stats["panics"]:
            print("  note: daemons exited on their own / panicked: see daemons/*/daemon.log in the state dir")
        ok = (findings.duplicates == 0 and findings.missing == 0 and findings.mismatched == 0
              and findings.unreadable == 0 and findings.name_mismatches == 0 and verify_rc == 0
              and findings.group_snapshots > 0 and findings.bad_group_snapshots == 0)
        rc = 0 if ok else 1
        print(f"chaos: {'PASS' if ok else 'FAIL'} ({mode.name}, {elapsed:.0f} s, seed {seed})", flush=True)
    except KeyboardInterrupt:
        say("interrupted")
        rc = 130
    except InfraError as e:
        say(f"HARNESS/INFRA ERROR: {e}")
        print(f"chaos: FAIL ({mode.name}, {time.monotonic() - T0:.0f} s, seed {seed}): harness could not run: {e}")
        rc = 2
    finally:
        if producer is not None:
            producer.stop_flag.set()
        if chaos is not None:
            chaos.kill_everything()
        if services is not None:
            services.stop_all()
        if ok and not args.keep:
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"[chaos] state kept in {state} (chaos.log, daemons/*/daemon.log, verify.txt, infra.log, lost/)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
