"""Plumbing shared by the benchmarks: sandbox and worker subprocesses, fresh databases, memory.

The parent process only orchestrates. Every measurement runs in a worker subprocess
(`python -m bench.worker ROLE SPEC_JSON`) so its peak RSS is its own, and each sandbox
(Shopify, WooCommerce, Magento) runs in a subprocess of its own so its memory never
counts as Clerk's.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PG_SERVER = os.environ.get("CLERK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
PG_ADMIN_DB = "test"
CHANNEL = "shopify"


# ---------------------------------------------------------------------- sandbox


@dataclass(frozen=True, slots=True)
class Shop:
    """A running Shopify sandbox subprocess."""

    url: str
    token: str
    orders: int
    restore_rate: float
    pid: int


@contextlib.contextmanager
def shopify_sandbox(orders: int, seed: int, restore_rate: float, log: Path) -> Iterator[Shop]:
    """Starts `python -m integrations.sandbox shopify` and stops that process (by its pid) afterwards.

    Args:
        orders: orders in the seeded store.
        seed: the store's seed.
        restore_rate: query-cost points restored per second.
        log: where the sandbox's stderr goes.
    """
    command = [sys.executable, "-m", "integrations.sandbox", "shopify", "--orders", str(orders),
               "--seed", str(seed), "--port", "0", "--restore-rate", repr(float(restore_rate))]
    with log.open("ab") as err:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=err, env=_base_env())
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the sandbox exited before it was ready; see {log}")
        ready = json.loads(line)
        yield Shop(ready["url"], ready["token"], orders, restore_rate, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Each vendor's ready-line keys, and the CLERK_* variable each one sets (the URL is `url`).
SANDBOX_SETTINGS = {
    "shopify": {"url": "CLERK_SHOPIFY_SHOP_URL", "token": "CLERK_SHOPIFY_ACCESS_TOKEN",
                "api_version": "CLERK_SHOPIFY_API_VERSION"},
    "woocommerce": {"url": "CLERK_WOOCOMMERCE_URL", "key": "CLERK_WOOCOMMERCE_KEY",
                    "secret": "CLERK_WOOCOMMERCE_SECRET"},
    "magento": {"url": "CLERK_MAGENTO_URL", "token": "CLERK_MAGENTO_TOKEN", "store_code": "CLERK_MAGENTO_STORE"},
}


@dataclass(frozen=True, slots=True)
class Sandbox:
    """A running sandbox subprocess of one vendor, as its ready line described it."""

    vendor: str
    url: str
    credentials: dict[str, Any]
    orders: int
    seed: int
    options: dict[str, Any]
    pid: int

    def env(self) -> dict[str, str]:
        """The CLERK_* variables that point Clerk at this sandbox, and at no other channel."""
        values = self.credentials | {"url": self.url}
        return {name: str(values[key]) for key, name in SANDBOX_SETTINGS[self.vendor].items() if key in values}


@contextlib.contextmanager
def sandbox(vendor: str, orders: int, seed: int, log: Path, **options: Any) -> Iterator[Sandbox]:
    """Starts `python -m integrations.sandbox VENDOR` and stops that process (by its pid) afterwards.

    Args:
        vendor: shopify, woocommerce or magento.
        orders: orders in the seeded store.
        seed: the store's seed.
        log: where the sandbox's stderr goes.
        options: the vendor's own options (`restore_rate=100.0` becomes `--restore-rate 100.0`).
    """
    if vendor not in SANDBOX_SETTINGS:
        raise ValueError(f"unknown sandbox vendor {vendor!r}")
    command = [sys.executable, "-m", "integrations.sandbox", vendor, "--orders", str(orders), "--seed", str(seed),
               "--port", "0"]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", repr(value) if isinstance(value, float) else str(value)]
    with log.open("ab") as err:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=err, env=_base_env())
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {vendor} sandbox exited before it was ready; see {log}")
        ready = json.loads(line)
        credentials = {k: v for k, v in ready.items() if k not in ("vendor", "url")}
        yield Sandbox(vendor, ready["url"], credentials, orders, seed, dict(options), process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------------- databases


@contextlib.contextmanager
def fresh_database(kind: str, scratch: Path) -> Iterator[str]:
    """An empty database of `kind` ("sqlite" or "postgresql"), dropped afterwards; yields its URL."""
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="clerk-bench-db-", dir=scratch))
        try:
            yield f"sqlite:///{folder / 'clerk.db'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    import sqlalchemy

    name = f"clerk_bench_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(_pg(PG_ADMIN_DB), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield f"{PG_SERVER}/{name}"
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _pg(database: str) -> str:
    return "postgresql+psycopg://" + PG_SERVER.removeprefix("postgresql://") + f"/{database}"


def postgres_available() -> bool:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(_pg(PG_ADMIN_DB))
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


# ---------------------------------------------------------------------- workers


def _base_env() -> dict[str, str]:
    """This environment without Clerk's or Prefect's settings, plus the repository on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "PREFECT_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return env


def prefect_home_template(scratch: Path, log: Path) -> Path:
    """A Prefect home whose server database is already migrated, for workers to copy.

    A fresh home costs each worker ~20 s of server migrations before its ephemeral
    server answers; a copy of this one starts like an existing installation does.
    """
    template = scratch / "prefect-template"
    run_worker("prime", {}, None, None, scratch, log, keep_home=template)
    return template


def run_worker(role: str, spec: dict[str, Any], shop: Shop | Sandbox | None, database_url: str | None,
               scratch: Path, log: Path, template: Path | None = None,
               keep_home: Path | None = None, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Runs one measurement in a fresh `python -m bench.worker` process; returns its JSON report.

    The worker gets a Prefect home of its own (a copy of `template`, or empty), runs in
    an empty directory (no stray `clerk.toml` or `.env`), and sees Clerk's settings only
    through CLERK_* variables pointing at `shop` (a Shopify `Shop`, or a `Sandbox` of any
    vendor: only that channel is configured) and `database_url`. With `keep_home`,
    the worker's Prefect home is moved there afterwards.
    """
    home = Path(tempfile.mkdtemp(prefix=f"clerk-bench-{role}-", dir=scratch))
    if template is not None:
        shutil.copytree(template, home / "prefect")
    env = _base_env() | {"PREFECT_HOME": str(home / "prefect"), "PREFECT_UI_ENABLED": "false",
                         "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
    if isinstance(shop, Sandbox):
        env |= shop.env()
    elif shop is not None:
        env |= {"CLERK_SHOPIFY_SHOP_URL": shop.url, "CLERK_SHOPIFY_ACCESS_TOKEN": shop.token}
    if database_url is not None:
        env["CLERK_DATABASE_URL"] = database_url
    env |= extra_env or {}
    try:
        with log.open("ab") as err:
            err.write(f"\n===== {role} {json.dumps(spec)} =====\n".encode())
            err.flush()
            done = subprocess.run([sys.executable, "-m", "bench.worker", role, json.dumps(spec)], cwd=home,
                                  env=env, stdout=subprocess.PIPE, stderr=err, check=False)
        lines = done.stdout.decode().strip().splitlines()
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"bench worker {role} failed (exit {done.returncode}); see {log}")
        if keep_home is not None:
            shutil.move(home / "prefect", keep_home)
        return json.loads(lines[-1])
    finally:
        shutil.rmtree(home, ignore_errors=True)


# ---------------------------------------------------------------------- memory, inside a worker


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def process_peak_rss_mb(pid: int) -> float | None:
    """Another process's peak RSS (VmHWM), or None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def process_cpu_seconds(pid: int | None = None) -> float | None:
    """CPU time (user + system) a process has used so far: this one when `pid` is None."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stopwatch:
    """Named wall-clock intervals (perf_counter), in seconds."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextlib.contextmanager
    def time(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - start
