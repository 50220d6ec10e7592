"""A throw-away PostgreSQL server for tests: initdb + pg_ctl from the system binaries on a
random free port of 127.0.0.1, data in a temporary folder, stopped in the finalizer.

As root the server runs as the ``postgres`` user (``runuser``); otherwise as the current user.
Skips cleanly when the binaries are absent.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BINS = [Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))] + sorted(
    Path("/usr/lib/postgresql").glob("*/bin"), reverse=True
)


def _bin_dir() -> Path | None:
    for d in PG_BINS:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_db_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@dataclass
class Server:
    """A running throw-away server: its URL, and ``pg_ctl`` on its data folder."""

    url: str
    bindir: Path
    data: Path
    opts: str
    log: Path

    def ctl(self, *action: str) -> None:
        """``pg_ctl ACTION`` (start, stop, restart) on this server, waiting for it."""
        subprocess.run(
            _as_db_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", self.opts,
                         "-l", str(self.log), "-w", "-t", "60", "-m", "fast", *action]),
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip


@pytest.fixture
def postgres_server():
    """A fresh server (see :class:`Server`) with an empty database ``bench``."""
    bindir = _bin_dir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user")
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        os.chmod(root, 0o755)
        for p in (root, data):
            os.chown(p, user.pw_uid, user.pw_gid)
    port = _free_port()
    run = lambda cmd: subprocess.run(  # noqa: E731
        _as_db_user(cmd), check=True, capture_output=True, text=True, timeout=120
    )
    opts = f"-p {port} -h 127.0.0.1 -k {root} -c max_connections=50"
    server = Server(f"postgresql://postgres@127.0.0.1:{port}/bench", bindir, data, opts,
                    root / "log")  # fmt: skip
    try:
        run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"])
        server.ctl("start")
        run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
             "bench"])  # fmt: skip
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {exc.stderr.strip()}") from None
    try:
        yield server
    finally:
        subprocess.run(
            _as_db_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """``postgresql://postgres@127.0.0.1:PORT/bench`` of a fresh server."""
    return postgres_server.url
