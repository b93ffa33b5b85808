#!/usr/bin/env python3
"""original_py3.py - run the original kafkatos3 0.2.0 daemon (the PyPI package, unmodified) on Python 3.

The original is Python 2 code, and its PyPI dependencies for Python 2 cannot talk to the test broker
(librdkafka >= 2.1 is needed, the last Python 2 confluent-kafka wheels bundle 1.x). Its daemon code
runs on Python 3 with four accommodations made here, none of which touches its per-record path:

  1. `import ConfigParser` (Python 2's name) resolves to Python 3's `configparser`.
  2. `setproctitle` and `psutil` (declared deps, used only to rename processes and renice the
     consumer) are stubbed when not installed: the stub renices with os.setpriority, as psutil does.
  3. The confluent-kafka Consumer gets `session.timeout.ms=6000` added to its config: the test broker
     (Tansu) takes session.timeout.ms/2 for every group join, 23 s with the default. kafkatos3 gets
     the same setting in its config ([kafka] section), so both join in ~3 s.
  4. S3: the original's boto3 client takes no endpoint; boto3 reads AWS_ENDPOINT_URL from the
     environment, which bench/run.py sets to the local S3 server (path-style, it is an IP address).

Usage: original_py3.py CONFIG_FILE   (what `kafkatos3 CONFIG_FILE` would be)
"""
import configparser
import os
import sys
import types

sys.modules.setdefault("ConfigParser", configparser)

try:
    import setproctitle  # noqa: F401
except ImportError:
    stub = types.ModuleType("setproctitle")
    stub.setproctitle = lambda title: None
    stub.getproctitle = lambda: " ".join(sys.argv)
    sys.modules["setproctitle"] = stub

try:
    import psutil  # noqa: F401
except ImportError:
    stub = types.ModuleType("psutil")

    class Process:
        def __init__(self, pid):
            self.pid = pid

        def nice(self, value=None):
            if value is None:
                return os.getpriority(os.PRIO_PROCESS, self.pid)
            os.setpriority(os.PRIO_PROCESS, self.pid, value)

    stub.Process = Process
    sys.modules["psutil"] = stub

import confluent_kafka  # noqa: E402

_Consumer = confluent_kafka.Consumer


def _consumer_with_test_broker_settings(*args, **conf):
    if args and isinstance(args[0], dict):
        conf = dict(args[0], **conf)
    conf.setdefault("session.timeout.ms", 6000)
    return _Consumer(conf)


confluent_kafka.Consumer = _consumer_with_test_broker_settings

from kafkatos3.main import main  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "kafkatos3"
    raise SystemExit(main(sys.argv))
