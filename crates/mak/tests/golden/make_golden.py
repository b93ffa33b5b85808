#!/usr/bin/env python3
"""Regenerate the golden MAK files in this directory with the ORIGINAL Python writer.

Needs the original package (its main.py is Python 2 only, but it is not imported here):

    pip install --no-deps kafkatos3==0.2.0 portalocker

Run from anywhere: python3 make_golden.py
The header starttime values are fixed (not time.mktime(...)) so the output is reproducible;
the gzip copy is made with `gzip -9 -n` (no name or timestamp in the gzip header).
The header dict is filled in the order the original daemon uses (BaseConsumer.create_new_data_file):
topic, partition, startoffset, starttime.
"""
import os
import subprocess

from kafkatos3.MessageArchiveKafka import MessageArchiveKafkaRecord, MessageArchiveKafkaWriter

HERE = os.path.dirname(os.path.abspath(__file__))
START_TIME = 1479000000.0  # 2016-11-13T01:20:00Z, as the original writes it (a whole float)


def write(name, topic, partition, start_offset, records, starttime=START_TIME):
    path = os.path.join(HERE, name)
    if os.path.exists(path):
        os.remove(path)
    header = MessageArchiveKafkaRecord()
    header.set_topic(topic)
    header.set_partition(partition)
    header.set_start_offset(start_offset)
    header.set_starttime(starttime)
    writer = MessageArchiveKafkaWriter(path)
    writer.write_header(header)
    for offset, key, value in records:
        writer.write_message(offset, key, value)
    writer.close()
    return path


def main():
    three = write("original_three_records.mak", "test", 0, 0, [
        (0, b"key-0", b"value-0"),
        (1, b"key-1", b"value-1"),
        (2, b"key-2", b"value-2"),
    ])
    write("original_empty_and_null.mak", "test", 3, 41, [
        (41, None, b"value with null key"),
        (42, b"key with empty value", b""),
        (43, b"\x00\xff\x00bin", b"\xff\x00\xfe\x01"),
        (44, None, None),
    ])
    write("original_no_records.mak", "test", 1, 100, [], starttime=1479000000.25)
    write("original_escaped_topic.mak", "we\"ird\\t\u00f3pic/\n\U0001F600\x7f", 2, 7, [
        (7, b"k", b"v"),
    ])

    torn = write("original_torn_tail.mak", "test", 0, 10, [
        (10, b"a", b"first"),
        (11, b"b", b"second"),
    ])
    # Garbage past the write position: half a record as a crash would leave it.
    with open(torn, "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\x05torn!\x00\x00\x00\xff\xff\xff\xff\xffGARBAGE")

    with open(three + ".gz", "wb") as out:
        subprocess.run(["gzip", "-9", "-n", "-c", three], stdout=out, check=True)


if __name__ == "__main__":
    main()
