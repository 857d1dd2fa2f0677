"""Shared fixtures: a real Prometheus, backfilled from OpenMetrics files.

``prometheus`` (session-scoped) is a ``PrometheusFarm``: ``prometheus.serve(path, ...)`` backfills
the files with ``promtool tsdb create-blocks-from openmetrics`` into a fresh data directory, starts
``prometheus`` on 127.0.0.1 on a free port with a 100-year retention, waits for ``/-/ready`` and
returns the server (its ``url``). The same files asked for twice get the same server; every server
is stopped at the end of the session.

Why one server per file set rather than one for everything: Prometheus answers label-values and
series lookups per TSDB block (and merges overlapping blocks), so scenarios whose data lie close
in time would leak each other's labels into discovery. A server starts in a fraction of a second,
so isolation costs little. Compaction is switched off (``--storage.tsdb.max-block-duration=2h``, the
size promtool writes) so the blocks do not change under a running test.

Without the binaries the fixture skips with the reason, except under CI (``CI=true``), where it
fails: there the binaries are installed by .ci/run and their absence is a broken setup.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.standins import free_port, wait_until_ready

READY_TIMEOUT_S = 30.0


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


class PrometheusUnavailable(RuntimeError):
    pass


@dataclass
class PrometheusServer:
    url: str
    data_dir: Path
    files: tuple[Path, ...]
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class PrometheusFarm:
    root: Path
    prometheus: str
    promtool: str
    servers: dict[tuple[Path, ...], PrometheusServer] = field(default_factory=dict)
    _made: int = 0

    def serve(self, *files: Path | str) -> PrometheusServer:
        """A running Prometheus holding exactly these OpenMetrics files (started once per set)."""
        key = tuple(sorted(Path(f).resolve() for f in files))
        if not key:
            raise ValueError("serve() needs at least one OpenMetrics file")
        server = self.servers.get(key)
        if server is not None and server.process.poll() is None:
            return server
        self._made += 1
        data_dir = self.root / f"tsdb-{self._made}"
        data_dir.mkdir(parents=True)
        for path in key:
            run = subprocess.run(
                [self.promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(path), str(data_dir)],
                capture_output=True, text=True, timeout=300,
            )
            if run.returncode != 0:
                raise PrometheusUnavailable(
                    f"promtool could not backfill {path}: {(run.stderr or run.stdout).strip()[-800:]}")
        server = self._start(data_dir, key)
        self.servers[key] = server
        return server

    def _start(self, data_dir: Path, files: tuple[Path, ...]) -> PrometheusServer:
        config = data_dir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n")
        last_error = ""
        for _ in range(3):  # a free port can be taken between choosing and binding it
            port = free_port()
            log_path = data_dir / f"prometheus-{port}.log"
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    [self.prometheus, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
                     f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y",
                     "--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h",
                     "--web.enable-lifecycle"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            server = PrometheusServer(f"http://127.0.0.1:{port}", data_dir, files, process, log_path)
            if wait_until_ready(server.process, f"{server.url}/-/ready", READY_TIMEOUT_S):
                return server
            server.stop()
            last_error = server.log_tail()
            if "address already in use" not in last_error:
                break
        raise PrometheusUnavailable(f"prometheus did not become ready within {READY_TIMEOUT_S:.0f} s:\n{last_error}")

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()


def _binaries() -> tuple[str, str]:
    found = {name: shutil.which(name) for name in ("prometheus", "promtool")}
    missing = [name for name, path in found.items() if not path]
    if missing:
        reason = (f"{' and '.join(missing)} not on PATH: install Debian's `prometheus` package "
                  "(apt-get install -y prometheus, as .ci/run does) to run the real-Prometheus tests")
        if _ci():
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    return found["prometheus"], found["promtool"]  # type: ignore[return-value]


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory) -> PrometheusFarm:
    """Real Prometheus servers backfilled from OpenMetrics files: ``prometheus.serve(file).url``."""
    binary, tool = _binaries()
    farm = PrometheusFarm(tmp_path_factory.mktemp("prometheus"), binary, tool)
    try:
        yield farm
    finally:
        farm.close()


POSTGRES_URL = os.environ.get("SLEUTH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The local PostgreSQL (trust auth). Skipped where none answers, except under CI, where it must."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("select 1")
    except psycopg.Error as exc:
        if _ci():
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required under CI: {exc}")
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}: {exc}")
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path):
    """Where incidents, timelines, claims and the agent's checkpoints live: SQLite, then a fresh
    PostgreSQL schema (tests.slack_standins.postgres_schema)."""
    from bot.config import StorageConfig
    from tests.slack_standins import postgres_schema

    if request.param == "sqlite":
        yield StorageConfig(sqlite=tmp_path / "state.db")
        return
    with postgres_schema() as url:
        yield StorageConfig(sqlite=tmp_path / "unused.db", postgres=url)
