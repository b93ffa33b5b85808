#!/usr/bin/env python3
"""Read a MAK file with the ORIGINAL Python reader and print one line per record:

    offset<TAB>hex(key)<TAB>hex(value)

Proves the original can read files written by the Rust writer. Needs
`pip install --no-deps kafkatos3==0.2.0 portalocker`. Usage: read_with_original.py FILE
"""
import sys

from kafkatos3.MessageArchiveKafka import MessageArchiveKafkaReader


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: read_with_original.py FILE\n")
        return 2
    reader = MessageArchiveKafkaReader(argv[1])
    try:
        while reader.has_more_messages():
            message = reader.read_message()
            sys.stdout.write("%d\t%s\t%s\n" % (message.offset, message.key.hex(), message.value.hex()))
    finally:
        reader.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
