#!/usr/bin/env python3
"""A real Prometheus server scrapes a real daemon through an S3 outage, and the alert rules fire.

Usage: scripts/prometheus-alerts.py [--daemon PATH] [--records N]

Starts a Tansu broker and an s3s-fs server (scripts/infra, free ports, a fresh state dir), the
daemon with `[metrics] listen`, and Debian's `prometheus` scraping it every second with
deploy/prometheus/kafkatos3-alerts.yml - its thresholds and `for:` durations scaled down to
seconds (the expressions are the shipped ones; promtool's unit tests check the real durations).
Then, asking Prometheus' HTTP API: everything archived and no alert; S3 stopped while records keep
coming: KafkatoS3UploadsFailing and KafkatoS3ArchiveBehind fire; S3 back: both resolve and every
record is archived. About two minutes. Exit 0 when all of that held. Not part of CI (it needs
minutes of wall time and a Prometheus server); run it after changing the metrics or the rules.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOPIC, PARTITIONS, GROUP, BUCKET = "alerts", 2, "kafkatos3-alerts", "kafkatos3-alerts"
T0 = time.time()


def log(message):
    print(f"[prometheus-alerts +{time.time() - T0:6.1f}s] {message}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fast_rules(text):
    """The shipped rules with minutes turned into seconds: thresholds of 900 s / 3600 s become
    20 s / 100000 s (the critical one must not fire here), `for:` durations and rate windows
    become seconds."""
    text = text.replace("> 900", "> 20").replace("> 3600", "> 100000")
    text = re.sub(r"for: (\d+)m", lambda m: f"for: {min(int(m.group(1)) * 2, 20)}s", text)
    return text.replace("[5m]", "[20s]")


def query(prom, expr):
    url = f"http://127.0.0.1:{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]["result"]


def firing(prom):
    with urllib.request.urlopen(f"http://127.0.0.1:{prom}/api/v1/alerts", timeout=10) as response:
        alerts = json.load(response)["data"]["alerts"]
    return sorted({a["labels"]["alertname"] for a in alerts if a["state"] == "firing"})


def wait_for(what, check, timeout):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = check()
            if last:
                log(f"{what}: yes ({last})")
                return last
        except OSError as error:  # Prometheus or the daemon not answering yet
            last = error
        time.sleep(1)
    sys.exit(f"FAILED: {what} did not happen within {timeout} s (last: {last})")


def produce(bootstrap, first, count):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for seq in range(first, first + count):
        producer.produce(TOPIC, key=f"key-{seq}", value=f"value-{seq}", partition=seq % PARTITIONS)
    if producer.flush(30) != 0:
        sys.exit("FAILED: records not delivered")


def archived(prom):
    result = query(prom, "sum(kafkatos3_records_archived_total)")
    return float(result[0]["value"][1]) if result else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemon", default=os.path.join(ROOT, "target/release/kafkatos3"))
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    prometheus = shutil.which("prometheus")
    if not prometheus:
        sys.exit("prometheus not installed (apt-get install --no-install-recommends prometheus)")

    state = tempfile.mkdtemp(prefix="kafkatos3-prometheus-")
    kafka_port, s3_port, metrics_port, prom_port = (free_port() for _ in range(4))
    env = dict(os.environ, KAFKATOS3_INFRA_DIR=state, KAFKA_PORT=str(kafka_port), S3_PORT=str(s3_port),
               S3_ACCESS_KEY="alerts-access", S3_SECRET_KEY="alerts-secret", S3_BUCKETS=BUCKET)
    infra = os.path.join(ROOT, "scripts/infra")
    processes = []

    def stop_all():
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        for script in ("stop-kafka.sh", "stop-s3.sh"):
            subprocess.run([os.path.join(infra, script)], env=env, capture_output=True)

    try:
        subprocess.run([os.path.join(infra, "start-kafka.sh")], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([os.path.join(infra, "start-s3.sh")], env=env, check=True, stdout=subprocess.DEVNULL)
        bootstrap = f"127.0.0.1:{kafka_port}"
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS)]).values():
            future.result(timeout=30)
        del admin  # its client would log every reconnect attempt once the broker is stopped
        produce(bootstrap, 0, args.records)

        config = os.path.join(state, "kafkatos3.cfg")
        with open(config, "w") as f:
            f.write(f"""[main]
working_directory = {state}/work
[consumer]
kafka_bootstrap = {bootstrap}
kafka_consumer_group = {GROUP}
topic_whitelist = {TOPIC}
max_age_seconds = 2
flush_interval_ms = 200
[s3]
s3_bucket_name = {BUCKET}
s3_endpoint = http://127.0.0.1:{s3_port}
s3_access_key = alerts-access
s3_secret_key = alerts-secret
s3upload_check_interval = 1
[kafka]
session.timeout.ms = 6000
statistics.interval.ms = 1000
[metrics]
listen = 127.0.0.1:{metrics_port}
""")
        daemon_log = open(os.path.join(state, "daemon.log"), "w")
        processes.append(subprocess.Popen([args.daemon, config], stderr=daemon_log, stdout=daemon_log))

        rules = os.path.join(state, "rules.yml")
        with open(os.path.join(ROOT, "deploy/prometheus/kafkatos3-alerts.yml")) as f:
            fast = fast_rules(f.read())
        with open(rules, "w") as f:
            f.write(fast)
        with open(os.path.join(state, "prometheus.yml"), "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{rules}"]
scrape_configs:
  - job_name: kafkatos3
    static_configs:
      - targets: ["127.0.0.1:{metrics_port}"]
""")
        prom_log = open(os.path.join(state, "prometheus.log"), "w")
        processes.append(subprocess.Popen(
            [prometheus, f"--config.file={state}/prometheus.yml", f"--storage.tsdb.path={state}/tsdb",
             f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=prom_log, stderr=prom_log))
        log(f"state {state}: broker :{kafka_port}, s3 :{s3_port}, daemon metrics :{metrics_port}, prometheus :{prom_port}")

        wait_for("Prometheus scrapes the daemon", lambda: query(prom_port, 'up{job="kafkatos3"} == 1'), 60)
        wait_for(f"all {args.records} records archived", lambda: archived(prom_port) == args.records, 120)
        time.sleep(5)
        quiet = firing(prom_port)
        if quiet:
            sys.exit(f"FAILED: alerts firing while everything is archived: {quiet}")
        log("no alert firing while the archive keeps up")

        log("stopping S3; producing more records")
        subprocess.run([os.path.join(infra, "stop-s3.sh")], env=env, check=True, capture_output=True)
        produce(bootstrap, args.records, args.records)
        expected = {"KafkatoS3UploadsFailing", "KafkatoS3ArchiveBehind"}
        wait_for("the outage alerts fire", lambda: expected <= set(firing(prom_port)) and firing(prom_port), 180)

        log("starting S3 again")
        restart = {k: v for k, v in env.items() if k != "S3_BUCKETS"}  # the bucket is still there
        subprocess.run([os.path.join(infra, "start-s3.sh")], env=restart, check=True, stdout=subprocess.DEVNULL)
        wait_for(f"all {2 * args.records} records archived", lambda: archived(prom_port) == 2 * args.records, 180)
        wait_for("the outage alerts resolve", lambda: not (expected & set(firing(prom_port))) and "resolved", 120)
        log("PASS")
    finally:
        stop_all()
        log(f"state kept in {state} (daemon.log, prometheus.log, rules.yml)")


if __name__ == "__main__":
    main()
