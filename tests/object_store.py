"""An S3-compatible object store for tests: moto's server on a free loopback port, with a
bucket of its own per test. ``object_store`` points the product at it (FILE_STORE_URL, the
endpoint and keys) as an operator would with MinIO."""

import socket
import uuid
from dataclasses import dataclass

import pytest

KEYS = {"AWS_ACCESS_KEY_ID": "test-access-key", "AWS_SECRET_ACCESS_KEY": "test-secret-key"}
REGION = "us-east-1"


@dataclass
class ObjectStore:
    endpoint: str
    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
        )

    def keys(self) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def env(self) -> dict[str, str]:
        """The settings a worker process needs to use the store."""
        return {
            "FILE_STORE_URL": self.url,
            "S3_ENDPOINT_URL": self.endpoint,
            "S3_REGION": REGION,
            **KEYS,
        }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def object_store_server():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def object_store(object_store_server, settings, monkeypatch) -> ObjectStore:
    """The product's files in a new bucket of the test server, as FILE_STORE_URL says."""
    store = ObjectStore(object_store_server, f"test-{uuid.uuid4().hex[:12]}", "campaigns")
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    store.client().create_bucket(Bucket=store.bucket)
    settings.FILE_STORE_URL = store.url
    settings.FILE_STORE_PREFIX = store.prefix
    settings.AWS_STORAGE_BUCKET_NAME = store.bucket
    settings.AWS_S3_ENDPOINT_URL = store.endpoint
    settings.AWS_S3_REGION_NAME = REGION
    settings.AWS_DEFAULT_ACL = None
    settings.AWS_S3_FILE_OVERWRITE = False
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"location": f"{store.prefix}/media"},
        },
    }
    return store
