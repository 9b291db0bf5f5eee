"""A two-node Ray cluster on this machine the way users start one: ``ray start --head``
and ``ray start --address`` (each ``--block``ed in a process group of its own, so a
test can kill a whole node and stop both without ``ray stop``, which would end every
Ray on the machine). Loopback 127.0.0.2/127.0.0.3: Ray rewrites 127.0.0.1 (see
../shared/GOTCHAS.md). Token auth is on, with the token in Ray's standard file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
WORKER_IPS = (WORKER_IP, "127.0.0.4")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ensure_token(ray: Path) -> None:
    """Ray's standard token file (``~/.ray/auth_token``), created as a user would."""
    if not (Path.home() / ".ray" / "auth_token").is_file():
        subprocess.run([ray, "get-auth-token", "--generate"], check=True, capture_output=True)


class RayStartCluster:
    """Head and ``workers`` worker nodes (1 or 2; 0: the head alone), each with ``cpus``
    CPUs; ``env`` adds to every node's environment (a store's credentials, say)."""

    def __init__(
        self,
        cpus: int = 1,
        root: Path | None = None,
        worker: bool = True,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        self.ray = Path(sys.executable).parent / "ray"
        ensure_token(self.ray)
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **({"PYTHONPATH": str(root)} if root else {}),
            **(env or {}),
        }
        self.cpus, self.port = cpus, _free_port(HEAD_IP)
        self.address = f"{HEAD_IP}:{self.port}"
        self.worker_ips = WORKER_IPS[: workers if worker else 0]
        self.start()

    def start(self) -> None:
        """Start (or start again, after ``stop``) the head, then its workers."""
        common = [f"--num-cpus={self.cpus}", "--block", "--disable-usage-stats"]
        self.head = self._start(
            ["--head", f"--node-ip-address={HEAD_IP}", f"--port={self.port}"]
            + ["--include-dashboard=false", *common]
        )
        self.workers = [
            self._start([f"--address={self.address}", f"--node-ip-address={ip}", *common])
            for ip in self.worker_ips
        ]
        self.worker = self.workers[0] if self.workers else None
        if self.workers:
            self.node_ids = self._node_ids()
            self.worker_id = self.node_ids[WORKER_IP]

    def _start(self, args: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(
            [self.ray, "start", *args],
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        seen = []
        for line in proc.stdout:  # `--block` prints its banner, then stays up
            seen.append(line)
            if "Ray runtime started" in line:
                return proc
        raise RuntimeError("ray start failed:\n" + "".join(seen[-20:]))

    def _node_ids(self) -> dict[str, str]:
        probe = (
            f"import json, ray; ray.init(address={self.address!r}, logging_level='ERROR');"
            "print(json.dumps({n['NodeManagerAddress']: n['NodeID'] for n in ray.nodes()"
            " if n['Alive']}))"
        )
        deadline = time.monotonic() + 60
        while True:
            out = subprocess.run(
                [sys.executable, "-c", probe], env=self.env, capture_output=True, text=True
            )
            nodes = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout else {}
            if len(nodes) == 1 + len(self.workers) or time.monotonic() > deadline:
                return nodes
            time.sleep(1)

    def kill_worker(self) -> None:
        """The worker node dies at once (raylet, its workers and all): no grace."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    def stop(self) -> None:
        """Both nodes gone at once (a test cluster needs no grace: SIGTERM made the head
        linger ~30 s)."""
        for proc in (*self.workers, self.head):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
