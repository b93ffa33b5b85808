#!/usr/bin/env python3
"""demo_helper.py - the Kafka and store client side of scripts/demo.sh (confluent-kafka, boto3).

Usage:
  demo_helper.py produce BOOTSTRAP TOPIC COUNT OFFSETS_JSON   create TOPIC (3 partitions), produce COUNT
                                                              records, write {partition: end offset} to OFFSETS_JSON
  demo_helper.py wait BOOTSTRAP GROUP TOPIC OFFSETS_JSON STORE... TIMEOUT_S [PID]
                                                              until objects exist and GROUP's committed offsets
                                                              reach OFFSETS_JSON; exit 1 on timeout, or as soon
                                                              as process PID (the daemon) is gone
  demo_helper.py list STORE...                                list the archive's objects
  demo_helper.py fetch STORE... KEY DEST                      copy one object to DEST
where STORE... is file:///PATH (a directory archive) or ENDPOINT ACCESS_KEY SECRET_KEY BUCKET (S3).

End offsets come from the producer's delivery reports, not ListOffsets: the test broker (Tansu) answers
ListOffsets(latest) with the last batch's base offset + 1, which is short for multi-record batches.
"""
import json
import os
import shutil
import sys
import time

import boto3
from botocore.config import Config
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 3


def s3_client(endpoint, access_key, secret_key):
    if not endpoint.startswith(("http://127.", "http://localhost")):
        sys.exit(f"refusing non-loopback endpoint {endpoint}")
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}),
    )


def list_objects(s3, bucket):
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        objects.extend(page.get("Contents", []))
    return objects


def store_args(args):
    """How many of args name the store: one file:// URL, or S3's four."""
    return 1 if args and args[0].startswith("file://") else 4


def store_objects(store):
    """(size, key) of every object: the files below a file:// directory, or a bucket's objects."""
    if store[0].startswith("file://"):
        root = store[0][len("file://"):]
        found = []
        for folder, _, files in os.walk(root):
            for name in files:
                path = os.path.join(folder, name)
                found.append((os.path.getsize(path), os.path.relpath(path, root)))
        return sorted(found, key=lambda f: f[1])
    return [(o["Size"], o["Key"]) for o in list_objects(s3_client(*store[:3]), store[3])]


def fetch(store, key, dest):
    if store[0].startswith("file://"):
        shutil.copyfile(os.path.join(store[0][len("file://"):], key), dest)
    else:
        s3_client(*store[:3]).download_file(store[3], key, dest)


def produce(bootstrap, topic, count, offsets_path):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]).values():
        future.result(timeout=30)
    # The broker may need a moment before the new topic's partitions are writable: wait until metadata has them.
    deadline = time.time() + 30
    while len(admin.list_topics(topic, timeout=10).topics[topic].partitions) < PARTITIONS:
        if time.time() > deadline:
            sys.exit(f"topic {topic} did not get {PARTITIONS} partitions")
        time.sleep(0.2)

    end_offsets = {}
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
            return
        end_offsets[msg.partition()] = max(end_offsets.get(msg.partition(), 0), msg.offset() + 1)

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(count):
        key = f"key-{i:05d}".encode()
        # One empty value, to show it survives the archive round trip; the others are distinct.
        value = b"" if i == 7 else json.dumps({"n": i, "text": f"demo record {i}"}).encode()
        producer.produce(topic, key=key, value=value, partition=i % PARTITIONS,
                         headers=[("source", b"kafkatos3-demo")], on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(30)
    if errors or remaining:
        sys.exit(f"produce failed: {remaining} undelivered, errors {errors[:3]}")
    with open(offsets_path, "w") as out:
        json.dump({str(p): o for p, o in sorted(end_offsets.items())}, out)
    print(f"[demo] produced {count} records to {topic}; end offsets {dict(sorted(end_offsets.items()))}", file=sys.stderr)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait(bootstrap, group, topic, offsets_path, store, timeout_s, pid=None):
    with open(offsets_path) as f:
        want = {int(p): o for p, o in json.load(f).items()}
    # A consumer that never subscribes does not join the group: committed() is a plain OffsetFetch.
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    tps = [TopicPartition(topic, p) for p in sorted(want)]
    deadline = time.time() + timeout_s
    try:
        while True:
            objects = store_objects(store)
            committed = {tp.partition: tp.offset for tp in probe.committed(tps, timeout=10)}
            done = objects and all(committed.get(p, -1) >= o for p, o in want.items())
            print(f"[demo] {len(objects)} objects in the archive; committed {committed} of {want}", file=sys.stderr)
            if done:
                return 0
            if pid is not None and not alive(pid):
                print(f"[demo] ERROR: the daemon (pid {pid}) exited before the archive was complete", file=sys.stderr)
                return 1
            if time.time() > deadline:
                print(f"[demo] ERROR: not archived after {timeout_s} s", file=sys.stderr)
                return 1
            time.sleep(2)
    finally:
        probe.close()


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "produce" and len(args) == 4:
        produce(args[0], args[1], int(args[2]), args[3])
    elif cmd == "wait" and len(args) >= 6:
        n = store_args(args[4:])
        rest = args[4 + n:]
        if len(rest) not in (1, 2):
            sys.exit(__doc__)
        sys.exit(wait(*args[:4], args[4:4 + n], int(rest[0]), int(rest[1]) if len(rest) == 2 else None))
    elif cmd == "list" and len(args) == store_args(args):
        objects = store_objects(args)
        for size, key in objects:
            print(f"{size:>10}  {key}")
        print(f"[demo] {len(objects)} objects, {sum(size for size, _ in objects)} bytes", file=sys.stderr)
    elif cmd == "fetch" and len(args) == store_args(args) + 2:
        fetch(args[:-2], args[-2], args[-1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
