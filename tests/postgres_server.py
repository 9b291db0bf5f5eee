"""A real, throwaway PostgreSQL server on loopback for tests: Debian's ``postgresql``
binaries (``initdb``, ``pg_ctl``), run as the unprivileged ``postgres`` user when the
tests run as root (PostgreSQL refuses root), with password (SCRAM) authentication, a
role and one database per store; stopped, with everything it wrote, on exit."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port

USER, PASSWORD = "sweep", "pg-secret-1"


@dataclass(frozen=True)
class Postgres:
    port: int
    pid: int  # the postmaster's (pg_ctl detaches it from the test's process tree)

    def uri(self, database: str) -> str:
        """A SQLAlchemy URL (MLflow's and Optuna's stores), through psycopg 3."""
        return f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"


def postgres_bin() -> Path | None:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> int:
    return int(Path(path).parts[-3])


def _as_owner(owner: pwd.struct_passwd | None) -> list[str]:
    return ["runuser", "-u", owner.pw_name, "--"] if owner else []


@contextlib.contextmanager
def postgres_server(databases: tuple[str, ...]) -> Iterator[Postgres]:
    """A server with ``databases`` owned by the ``sweep`` role. Its folder is under the
    system's temp folder (the ``postgres`` user cannot enter pytest's root-only one)."""
    where = postgres_bin()
    assert where is not None, "no PostgreSQL server here: apt-get install postgresql"
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="dnn-sweep-pg-"))
    (folder / "pw").write_text(PASSWORD)
    if owner:
        for path in (folder, folder / "pw"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    run = _as_owner(owner)
    port = free_port()
    server = [*run, str(where / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log")]
    settings = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
    try:
        subprocess.run(
            [*run, str(where / "initdb"), "-D", str(folder / "data"), "-U", USER]
            + ["--auth=scram-sha-256", f"--pwfile={folder / 'pw'}", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
        )
        subprocess.run([*server, "-o", settings, "-w", "start"], check=True, capture_output=True)
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        for name in databases:
            subprocess.run(
                [str(where / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, name],
                check=True,
                capture_output=True,
                env=env,
            )
        pid = int((folder / "data" / "postmaster.pid").read_text().split()[0])
        yield Postgres(port, pid)
    finally:
        subprocess.run([*server, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
