#!/usr/bin/env python3
"""azurite-mkcontainer.py ENDPOINT CONTAINER... - create blob containers on a loopback Azurite.

ENDPOINT is Azurite's blob address (http://127.0.0.1:PORT). Uses Azurite's well-known development account
(devstoreaccount1 and its published key) with Shared Key authentication, as the Azure SDKs do; standard
library only. Idempotent: a container that exists already is not an error.
"""
import base64
import email.utils
import hashlib
import hmac
import sys
import urllib.error
import urllib.request

ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret: every Azurite has it).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
VERSION = "2021-08-06"


def create(endpoint, container):
    date = email.utils.formatdate(usegmt=True)
    content_type = "application/octet-stream"
    # Shared Key string to sign: verb, 11 standard headers (only Content-Type set), x-ms-* headers, resource.
    headers = [""] * 11
    headers[4] = content_type
    to_sign = "\n".join(["PUT", *headers, f"x-ms-date:{date}\nx-ms-version:{VERSION}",
                         f"/{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container"])
    signature = base64.b64encode(hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest()).decode()
    request = urllib.request.Request(
        f"{endpoint}/{ACCOUNT}/{container}?restype=container", method="PUT", data=b"",
        headers={"x-ms-date": date, "x-ms-version": VERSION, "Content-Type": content_type,
                 "Authorization": f"SharedKey {ACCOUNT}:{signature}"})
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as e:
        if e.code != 409:  # ContainerAlreadyExists
            sys.exit(f"creating container {container} at {endpoint}: HTTP {e.code} {e.read()[:300]!r}")


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    endpoint = argv[1].rstrip("/")
    # Refuse anything but loopback: the development key must never be sent elsewhere.
    if not endpoint.startswith(("http://127.", "http://localhost", "http://[::1]")):
        sys.exit(f"refusing non-loopback endpoint {endpoint}")
    for container in argv[2:]:
        create(endpoint, container)


if __name__ == "__main__":
    main(sys.argv)
