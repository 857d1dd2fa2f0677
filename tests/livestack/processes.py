"""Child processes of the live stack: started in their own process group, always stopped.

Every process the stack starts goes through ``spawn``: it gets its own session (so stopping it
also stops whatever it forked, e.g. stress-ng's workers), its output goes to a log file in the
stack's folder (read back when it fails to start), and it is registered so that an ``atexit``
hook kills whatever is still running when the interpreter exits without the stack being closed.
Where util-linux's ``setpriv`` exists and the caller is the main thread, the child also gets a
parent-death signal, which covers the one case atexit cannot: the test process being SIGKILLed.
(The signal follows the *thread* that forked the child, hence the main-thread condition.)
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

_REGISTRY_LOCK = threading.Lock()
_RUNNING: dict[int, "Child"] = {}
_SETPRIV = shutil.which("setpriv")


@dataclass
class Child:
    """One started process: its name in the stack, its Popen handle and its output file."""

    name: str
    process: subprocess.Popen
    log_path: Path
    argv: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def terminate(self) -> None:
        """SIGTERM to the whole group, without waiting (``stop`` waits and kills)."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM to the whole group, then SIGKILL after ``grace_s``; always reaps the child."""
        try:
            if self.process.poll() is None:
                _signal_group(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    pass
            # The group may outlive its leader (a worker that ignored SIGTERM): kill what is left.
            _signal_group(self.process.pid, signal.SIGKILL)
            if self.process.poll() is None:
                self.process.wait(timeout=10)
        finally:
            with _REGISTRY_LOCK:
                _RUNNING.pop(self.process.pid, None)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def spawn(name: str, argv: list[str], log_path: Path, *, env: dict[str, str] | None = None,
          cwd: Path | str | None = None) -> Child:
    """Start ``argv`` in a new session, output appended to ``log_path``, registered for cleanup."""
    command = list(argv)
    if _SETPRIV and threading.current_thread() is threading.main_thread():
        command = [_SETPRIV, "--pdeathsig", "TERM", "--", *command]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=cwd, start_new_session=True)
    child = Child(name, process, log_path, list(argv))
    with _REGISTRY_LOCK:
        _RUNNING[process.pid] = child
    return child


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (read from /proc, so it works without procps)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_for_children(pid: int, count: int, timeout_s: float) -> bool:
    """Wait until ``pid`` has at least ``count`` live descendants (e.g. stress-ng's workers)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len([p for p in descendants(pid) if pid_alive(p)]) >= count:
            return True
        time.sleep(0.02)
    return False


def kill_everything_left() -> None:
    """The atexit fallback: SIGKILL every registered group still running."""
    with _REGISTRY_LOCK:
        left = list(_RUNNING.values())
    for child in left:
        try:
            child.stop(grace_s=1.0)
        except Exception:
            pass


atexit.register(kill_everything_left)
