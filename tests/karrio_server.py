"""A real `karrio-server` from PyPI for the Karrio client's tests: installed once, started per test module.

The server lives in its own virtual environment under `~/.cache/clerk/karrio-<version>`
(`CLERK_KARRIO_CACHE` moves it), outside the checkout and reused across runs. It runs on
SQLite with Karrio's built-in `generic` carrier, bound to 127.0.0.1. Installing takes
about a minute and migrating a fresh database over two, so a migrated database with an
admin and an API token is kept beside the venv as a template; each start copies it into
a temporary directory and takes a few seconds.

`karrio-server-documents` is left out on purpose: importing it fetches CSS from the
internet. The other server packages are those whose migrations the core's depend on.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

VERSION = "2026.1.32"
PACKAGES = [f"{name}=={VERSION}" for name in (
    "karrio-server", "karrio-server-core", "karrio-server-manager", "karrio-server-proxy", "karrio-server-graph",
    "karrio-server-events", "karrio-server-pricing", "karrio-server-orders", "karrio-generic",
)]
CACHE = Path(os.environ.get("CLERK_KARRIO_CACHE", Path.home() / ".cache" / "clerk")) / f"karrio-{VERSION}"
CARRIER_ID = "clerk-generic"

_BOOTSTRAP = """
from karrio.server.user.models import Token, User
user = User.objects.create_superuser(email="clerk@example.com", password="clerk-test-only")
print("TOKEN=" + Token.objects.create(user=user, test_mode=True).key)
"""

# Karrio's generic carrier cannot track, so nothing makes a tracker for its labels; the
# tests plant one as a tracking carrier's connection would, and move it with Karrio's own
# `inject-events` API.
_PLANT_TRACKER = """
from karrio.server.manager.models import Shipment, Tracking
shipment = Shipment.objects.get(tracking_number={number!r})
tracker = Tracking.objects.create(tracking_number=shipment.tracking_number, test_mode=shipment.test_mode,
                                  created_by=shipment.created_by, carrier=shipment.carrier, shipment=shipment,
                                  status="pending", events=[])
print("TRACKER=" + tracker.id)
"""


class KarrioUnavailable(RuntimeError):
    """karrio-server could not be installed or started here; the message says why."""


@dataclass(frozen=True)
class KarrioServer:
    """A running server: its base URL, an API token, and its working directory."""

    url: str
    token: str
    work_dir: Path

    def plant_tracker(self, tracking_number: str) -> str:
        """Makes Karrio keep a tracker for a bought label's number; returns the tracker id."""
        script = _PLANT_TRACKER.format(number=tracking_number)
        return _value(_karrio(["shell", "-c", script], self.work_dir), "TRACKER=")


def _run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise KarrioUnavailable(f"{' '.join(command[:3])} ... failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def _environment(work_dir: Path) -> dict[str, str]:
    """The server's whole environment, built here: nothing of the test run's (DATABASE_URL,
    REDIS_URL, CLERK_*) may leak into Karrio's settings."""
    return {
        "PATH": str(CACHE / "venv" / "bin") + os.pathsep + os.environ.get("PATH", ""),
        "HOME": str(work_dir),
        "SECRET_KEY": "clerk-tests-only",
        "DEBUG_MODE": "True",
        "WORK_DIR": str(work_dir),
        "DATABASE_ENGINE": "sqlite3",
        "DATABASE_NAME": "db.sqlite3",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }


def _karrio(arguments: list[str], work_dir: Path) -> str:
    # Karrio reads a `.env` from its working directory, so it runs in its own.
    return _run([str(CACHE / "venv" / "bin" / "karrio"), *arguments], cwd=work_dir, env=_environment(work_dir))


def _value(output: str, prefix: str) -> str:
    for line in output.splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    raise KarrioUnavailable(f"karrio printed no {prefix.rstrip('=')}")


@contextmanager
def _cache_lock() -> Iterator[None]:
    """One installer at a time, across pytest-xdist workers and parallel runs."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _install() -> None:
    """The venv with karrio-server, once; a half-built one is rebuilt."""
    venv = CACHE / "venv"
    if (venv / ".installed").exists():
        return
    shutil.rmtree(venv, ignore_errors=True)
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *PACKAGES])
    (venv / ".installed").write_text("\n".join(PACKAGES) + "\n")


def _template() -> Path:
    """A migrated database with an admin and an API token, once."""
    template = CACHE / "template"
    if (template / "token").exists():
        return template
    shutil.rmtree(template, ignore_errors=True)
    template.mkdir()
    _karrio(["migrate", "--no-input"], template)
    token = _value(_karrio(["shell", "-c", _BOOTSTRAP], template), "TOKEN=")
    (template / "token").write_text(token)
    return template


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise KarrioUnavailable(f"karrio-server exited ({server.returncode}):\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise KarrioUnavailable(f"karrio-server did not answer within its time:\n{log.read_text()[-2000:]}")


def _add_generic_carrier(url: str, token: str) -> None:
    """Karrio's `generic` carrier: rates, PDF labels and tracking numbers, all offline."""
    body = {"carrier_name": "generic", "carrier_id": CARRIER_ID,
            "credentials": {"display_name": "Clerk Test Carrier", "custom_carrier_name": "clerk_test"}}
    response = httpx.post(url + "/v1/connections", json=body, headers={"Authorization": f"Token {token}"})
    if response.status_code != 201:
        raise KarrioUnavailable(f"adding the generic carrier failed: HTTP {response.status_code} {response.text[:300]}")


def prepare() -> Path:
    """Installs the server and migrates its template database, unless already done
    (`python -m tests.karrio_server` does it ahead of a test run); returns the template."""
    with _cache_lock():
        _install()
        return _template()


@contextmanager
def running_karrio(start_timeout: float = 60.0) -> Iterator[KarrioServer]:
    """A fresh karrio-server with one `generic` carrier connection, stopped on exit.

    Raises:
        KarrioUnavailable: when it cannot be installed (no PyPI) or does not start.
    """
    template = prepare()
    with tempfile.TemporaryDirectory(prefix="clerk-karrio-") as tmp:
        work_dir = Path(tmp)
        for name in ("db.sqlite3", "tasks.sqlite3"):
            if (template / name).exists():
                shutil.copy2(template / name, work_dir / name)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = work_dir / "server.log"
        with open(log, "wb") as out:
            server = subprocess.Popen(
                [str(CACHE / "venv" / "bin" / "karrio"), "runserver", f"127.0.0.1:{port}", "--noreload"],
                cwd=work_dir, env=_environment(work_dir), stdout=out, stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_up(url, server, log, time.monotonic() + start_timeout)
            token = (template / "token").read_text().strip()
            _add_generic_carrier(url, token)
            yield KarrioServer(url=url, token=token, work_dir=work_dir)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


if __name__ == "__main__":
    print(f"karrio-server {VERSION} ready in {prepare().parent}")
