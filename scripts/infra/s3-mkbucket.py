#!/usr/bin/env python3
"""s3-mkbucket.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET... - create buckets on a loopback S3 server.

Idempotent: a bucket that already exists (and is ours) is not an error. Needs boto3
(scripts/install-deps.sh installs it). Path-style addressing, because s3s-fs serves only that.
"""
import sys

import boto3
from botocore.config import Config


def main(argv):
    if len(argv) < 5:
        sys.exit(__doc__)
    endpoint, access_key, secret_key, buckets = argv[1], argv[2], argv[3], argv[4:]
    # Refuse anything but loopback: this script must never create buckets on real AWS.
    if not endpoint.startswith(("http://127.", "http://localhost", "http://[::1]")):
        sys.exit(f"refusing non-loopback endpoint {endpoint}")
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )
    for bucket in buckets:
        try:
            s3.create_bucket(Bucket=bucket)
            print(f"[s3-mkbucket] created bucket {bucket}", file=sys.stderr)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            print(f"[s3-mkbucket] bucket {bucket} already exists", file=sys.stderr)
        except s3.exceptions.BucketAlreadyExists:
            print(f"[s3-mkbucket] bucket {bucket} already exists", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
