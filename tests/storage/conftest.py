"""A real S3-compatible server (moto's, from PyPI) on loopback, and storage settings pointing at it.

Never skipped: when the server cannot start the tests fail and say why.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass

import pytest

REGION = "us-east-1"
ACCESS_KEY = SECRET_KEY = "testing"  # moto accepts any credentials


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


@dataclass(frozen=True)
class S3Bucket:
    server: S3Server
    name: str

    def keys(self, prefix: str = "") -> set[str]:
        pages = self.server.client().get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.server.client().get_object(Bucket=self.name, Key=key)["Body"].read()

    def environment(self) -> dict[str, str]:
        """The variables that make the settings choose this bucket (as production would)."""
        return {
            "STEELQC_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": self.name, "AWS_S3_ENDPOINT_URL": self.server.endpoint_url,
            "AWS_S3_REGION_NAME": REGION, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    port = _free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            pytest.fail(f"moto_server exited at start-up:\n{log_path.read_text(errors='replace')}")
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"moto_server did not answer on {endpoint}:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.1)
    yield S3Server(endpoint_url=endpoint)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def s3_bucket(s3_server, settings) -> S3Bucket:
    """A fresh, empty bucket per test, made the default storage (the S3 options of base settings)."""
    bucket = S3Bucket(server=s3_server, name=f"steelqc-test-{uuid.uuid4().hex[:12]}")
    s3_server.client().create_bucket(Bucket=bucket.name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket.name, "endpoint_url": s3_server.endpoint_url, "region_name": REGION,
                "access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "default_acl": None,
                "file_overwrite": False, "querystring_auth": True,
            },
        },
    }
    settings.STEELQC_STORAGE = "s3"
    return bucket
