#!/usr/bin/env python3
"""secure-smoke.py - end-to-end check of start-kafka-secure.sh with an independent client (confluent-kafka).

For each mode it starts a secured broker (own state dir under a fresh temp dir, free ports), then:
  * round trip: create a topic, produce records (one request each: the test broker's ListOffsets quirk),
    consume them in a consumer group (subscribe, join, poll), commit, read the commit back (OffsetFetch),
    read the watermarks (ListOffsets) and the metadata - all through the secured listener;
  * refusals: wrong password per mechanism, a mechanism not served, a CA that did not sign the server
    certificate, no / untrusted client certificate when client certificates are required, a plaintext
    client on the TLS port. Each must surface as an error through the client's error callback (the
    expected librdkafka error code and text) and be retried (seen at least twice), within seconds.
Prints one PASS/FAIL line per check and exits 1 if any failed.

Usage:  scripts/infra/secure-smoke.py [MODE...]     MODE: ssl mtls sasl_plaintext sasl_ssl (default: all)
Env:    TANSU_BIN, KAFKATOS3_CACHE_DIR as for start-kafka.sh. Needs python3 confluent-kafka >= 2.1 and openssl.
"""
import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = []


def report(ok, name, detail=""):
    RESULTS.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f" - {detail}" if detail else ""), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """start-kafka-secure.sh in a private state dir; stop-kafka.sh on exit."""

    def __init__(self, security, client_auth="none", mechanisms=None):
        self.dir = tempfile.mkdtemp(prefix="kafkatos3-secure-smoke-")
        self.env = dict(os.environ, KAFKATOS3_INFRA_DIR=self.dir, KAFKA_SECURITY=security,
                        KAFKA_TLS_CLIENT_AUTH=client_auth, KAFKA_PORT=str(free_port()))
        if mechanisms:
            self.env["KAFKA_SASL_MECHANISMS"] = mechanisms

    def __enter__(self):
        t0 = time.time()
        out = subprocess.run([os.path.join(HERE, "start-kafka-secure.sh")], env=self.env, check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        self.startup_s = time.time() - t0
        self.vars = {}
        for line in out.splitlines():
            k, _, v = line.partition("=")
            self.vars[k] = shlex.split(v)[0] if v else ""
        return self

    def restart(self):
        """stop-kafka.sh, then start-kafka-secure.sh again in the same state dir (same port, same certificates)."""
        subprocess.run([os.path.join(HERE, "stop-kafka.sh")], env=self.env, stderr=subprocess.DEVNULL, check=True)
        before = dict(self.vars)
        self.__enter__()
        return {k: v for k, v in self.vars.items() if not k.endswith("PID") and before.get(k) != v}

    def __exit__(self, *exc):
        subprocess.run([os.path.join(HERE, "stop-kafka.sh")], env=self.env, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def conf(self, mechanism=None, client_cert=True, **over):
        v = self.vars
        c = {"bootstrap.servers": v["KAFKA_BOOTSTRAP"], "security.protocol": v["KAFKA_SECURITY_PROTOCOL"]}
        if "KAFKA_CA" in v:
            c["ssl.ca.location"] = v["KAFKA_CA"]
            if client_cert:
                c["ssl.certificate.location"] = v["KAFKA_CLIENT_CERT"]
                c["ssl.key.location"] = v["KAFKA_CLIENT_KEY"]
        if mechanism == "OAUTHBEARER":
            c.update({"sasl.mechanisms": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": True,
                      "sasl.oauthbearer.config": f"principal={v['KAFKA_SASL_USERNAME']}"})
        elif mechanism:
            c.update({"sasl.mechanisms": mechanism, "sasl.username": v["KAFKA_SASL_USERNAME"],
                      "sasl.password": v["KAFKA_SASL_PASSWORD"]})
        c.update(over)
        return c


def round_trip(name, conf, records=3):
    """Produce, consume in a group, commit, read back; report PASS/FAIL for the whole chain."""
    t0 = time.time()
    topic = f"secure-smoke-{uuid.uuid4().hex[:8]}"
    step = "admin CreateTopics"
    try:
        admin = AdminClient(conf)
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
        step = "produce"
        producer = Producer(conf)
        errors = []
        for i in range(records):
            producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(),
                             on_delivery=lambda err, msg: err and errors.append(err))
            if producer.flush(10) != 0:
                raise RuntimeError("produce not delivered within 10 s")
        if errors:
            raise RuntimeError(f"delivery errors {errors}")
        step = "consume (group join)"
        consumer = Consumer(dict(conf, **{"group.id": f"g-{topic}", "auto.offset.reset": "earliest",
                                          "enable.auto.commit": False, "session.timeout.ms": 6000}))
        try:
            consumer.subscribe([topic])
            got, deadline = [], time.time() + 30
            while len(got) < records and time.time() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    raise RuntimeError(f"consume error {msg.error()}")
                got.append((msg.key(), msg.value()))
            want = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(records)]
            if got != want:
                raise RuntimeError(f"consumed {got}, wanted {want}")
            step = "commit"
            consumer.commit(asynchronous=False)
            step = "committed (OffsetFetch)"
            committed = consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
            if committed != records:
                raise RuntimeError(f"committed offset {committed}, wanted {records}")
            step = "watermarks (ListOffsets)"
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
            if (low, high) != (0, records):
                raise RuntimeError(f"watermarks {(low, high)}, wanted (0, {records})")
            step = "metadata"
            md = consumer.list_topics(topic, timeout=10)
            brokers = [f"{b.host}:{b.port}" for b in md.brokers.values()]
            if brokers != [conf["bootstrap.servers"]]:
                raise RuntimeError(f"metadata brokers {brokers}, wanted the secured listener only")
        finally:
            consumer.close()
        report(True, name, f"produce/group consume/commit/committed/watermarks/metadata in {time.time() - t0:.1f} s")
    except Exception as e:  # noqa: BLE001 - any failure is this check's FAIL line
        report(False, name, f"at {step}: {e}")


class LogLines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append((time.time(), record.getMessage()))


def refused(name, conf, code, text, window_s=3.5):
    """The client must report `code` with `text` through error_cb, at least twice (i.e. it retries).
    code None: look for `text` in librdkafka's log lines instead (some failures never reach error_cb)."""
    seen, logs = [], LogLines()
    logger = logging.getLogger(f"secure-smoke-{uuid.uuid4().hex}")
    logger.addHandler(logs)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    producer = Producer(dict(conf, error_cb=lambda err: seen.append((time.time(), err)), logger=logger))
    t0 = time.time()
    while time.time() - t0 < window_s:
        producer.poll(0.1)
    if code is None:
        matching = [(t - t0, LogLine(line)) for t, line in logs.lines if text in line]
    else:
        matching = [(t - t0, e) for t, e in seen if e.code() == code and text in e.str()]
    if len(matching) >= 2:
        report(True, name, f"{len(matching)}x in {window_s} s, first after {matching[0][0]:.2f} s: {matching[0][1].str()}")
    else:
        report(False, name, f"wanted {KafkaError(code).name() if code is not None else 'a log line'} with {text!r} twice; got "
                            f"{[(round(t - t0, 2), e.name(), e.str()) for t, e in seen][:4]}")


class LogLine(str):
    def str(self):
        return str(self)


MECHS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


def mode_ssl():
    with Broker("ssl") as b:
        report(True, "ssl: start", f"{b.startup_s:.2f} s")
        round_trip("ssl: round trip (server verified against KAFKA_CA)", b.conf(client_cert=False))
        conf = b.conf(client_cert=False)
        changed = b.restart()
        report(not changed, "ssl: restart in the same state dir keeps port and certificates",
               f"changed: {changed}" if changed else f"{b.startup_s:.2f} s")
        round_trip("ssl: round trip after the restart, with the first start's settings", conf)
        refused("ssl: untrusted CA refused", b.conf(**{"ssl.ca.location": b.vars["KAFKA_UNTRUSTED_CA"]}),
                KafkaError._SSL, "certificate verify failed")
        # Only a log line (FAIL ... Disconnected), never an error_cb call besides one _ALL_BROKERS_DOWN.
        refused("ssl: plaintext client on the TLS port refused (log line only)",
                dict(b.conf(), **{"security.protocol": "PLAINTEXT"}), None, "in state APIVERSION_QUERY")


def mode_mtls():
    with Broker("ssl", client_auth="required") as b:
        report(True, "mtls: start", f"{b.startup_s:.2f} s")
        round_trip("mtls: round trip with client certificate", b.conf())
        refused("mtls: no client certificate refused", b.conf(client_cert=False),
                KafkaError._TRANSPORT, "alert certificate required")
        refused("mtls: untrusted client certificate refused",
                b.conf(**{"ssl.certificate.location": b.vars["KAFKA_UNTRUSTED_CLIENT_CERT"],
                          "ssl.key.location": b.vars["KAFKA_UNTRUSTED_CLIENT_KEY"]}),
                KafkaError._TRANSPORT, "alert unknown ca")


def mode_sasl_plaintext():
    with Broker("sasl_plaintext") as b:
        report(True, "sasl_plaintext: start", f"{b.startup_s:.2f} s")
        for mech in MECHS:
            round_trip(f"sasl_plaintext: round trip {mech}", b.conf(mech))
        for mech in MECHS[:3]:
            refused(f"sasl_plaintext: wrong password {mech} refused", b.conf(mech, **{"sasl.password": "wrong"}),
                    KafkaError._AUTHENTICATION, "Authentication failed during authentication due to invalid credentials")
        refused("sasl_plaintext: OAUTHBEARER unknown principal refused",
                b.conf("OAUTHBEARER", **{"sasl.oauthbearer.config": "principal=mallory"}),
                KafkaError._AUTHENTICATION, "Authentication failed")
    with Broker("sasl_plaintext", mechanisms="SCRAM-SHA-512") as b:
        refused("sasl_plaintext: mechanism not served (PLAIN vs SCRAM-SHA-512 only) refused", b.conf("PLAIN"),
                KafkaError._AUTHENTICATION, "Unsupported SASL mechanism")


def mode_sasl_ssl():
    with Broker("sasl_ssl", client_auth="required") as b:
        report(True, "sasl_ssl: start", f"{b.startup_s:.2f} s")
        for mech in ("SCRAM-SHA-512", "PLAIN"):
            round_trip(f"sasl_ssl+mtls: round trip {mech}", b.conf(mech))
        refused("sasl_ssl: wrong password SCRAM-SHA-256 refused",
                b.conf("SCRAM-SHA-256", **{"sasl.password": "wrong"}),
                KafkaError._AUTHENTICATION, "invalid credentials")
        refused("sasl_ssl: untrusted CA refused before SASL", b.conf("SCRAM-SHA-256", **{
            "ssl.ca.location": b.vars["KAFKA_UNTRUSTED_CA"]}), KafkaError._SSL, "certificate verify failed")


MODES = {"ssl": mode_ssl, "mtls": mode_mtls, "sasl_plaintext": mode_sasl_plaintext, "sasl_ssl": mode_sasl_ssl}


def main(argv):
    import confluent_kafka
    print(f"confluent-kafka {confluent_kafka.version()[0]}, librdkafka {confluent_kafka.libversion()[0]}", flush=True)
    modes = argv[1:] or list(MODES)
    for mode in modes:
        if mode not in MODES:
            sys.exit(f"unknown mode {mode!r}; modes: {' '.join(MODES)}")
        try:
            MODES[mode]()
        except subprocess.CalledProcessError as e:
            report(False, f"{mode}: start-kafka-secure.sh", str(e))
    failed = RESULTS.count(False)
    print(f"{'PASS' if not failed else 'FAIL'}: {len(RESULTS) - failed}/{len(RESULTS)} checks passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
