"""Debian's Alertmanager on 127.0.0.1, routing every alert to one webhook receiver, for tests.

Alerts are posted to its own API (``POST /api/v2/alerts``), as Prometheus does; it groups them,
waits ``group_wait``, posts the group to the receiver (webhook payload version 4), repeats a
firing group every ``repeat_interval`` and sends the resolution when an alert's ``endsAt`` passes.
"""

from __future__ import annotations

import shutil
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

from tests.livestack.processes import Child, spawn

BINARIES = ("prometheus-alertmanager", "alertmanager")


def binary() -> str | None:
    return next((found for name in BINARIES if (found := shutil.which(name))), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


class Alertmanager:
    def __init__(self, root: Path, webhook_url: str, token: str, *, group_wait: str = "1s",
                 group_interval: str = "2s", repeat_interval: str = "4s") -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(exist_ok=True)
        self.config = root / "alertmanager.yml"
        self.config.write_text(
            "route:\n"
            "  receiver: sleuth\n"
            "  group_by: [alertname, service]\n"
            f"  group_wait: {group_wait}\n"
            f"  group_interval: {group_interval}\n"
            f"  repeat_interval: {repeat_interval}\n"
            "receivers:\n"
            "  - name: sleuth\n"
            "    webhook_configs:\n"
            f"      - url: {webhook_url}\n"
            "        send_resolved: true\n"
            "        http_config:\n"
            "          authorization:\n"
            "            type: Bearer\n"
            f"            credentials: {token}\n"
        )
        self.child: Child | None = None

    def start(self, timeout_s: float = 30.0) -> "Alertmanager":
        exe = binary()
        if exe is None:
            raise RuntimeError("Alertmanager is not installed (apt-get install prometheus-alertmanager)")
        self.child = spawn("alertmanager", [
            exe, f"--config.file={self.config}", f"--storage.path={self.root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
        ], self.root / "alertmanager.log")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if not self.child.alive():
                break
            time.sleep(0.2)
        raise RuntimeError(f"Alertmanager did not become ready: {self.child.log_tail()}")

    def fire(self, labels: dict[str, str], annotations: dict[str, str], *, starts_at: float | None = None,
             ends_at: float | None = None) -> None:
        alert = {"labels": labels, "annotations": annotations, "generatorURL": "http://prometheus.local/graph"}
        alert["startsAt"] = iso(starts_at if starts_at is not None else time.time())
        if ends_at is not None:
            alert["endsAt"] = iso(ends_at)
        response = httpx.post(f"{self.url}/api/v2/alerts", json=[alert], timeout=5)
        response.raise_for_status()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()

    def __enter__(self) -> "Alertmanager":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
