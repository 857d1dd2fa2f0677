"""The same memory against a real Chroma server started by the suite (``chroma run`` on 127.0.0.1).

Without the ``chroma`` executable (it ships with the chromadb package) the tests skip with the
reason, except under CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from index.errors import ChromaUnavailable
from index.records import collect
from index.store import ChromaServerConfig, Memory, MemoryConfig
from tests.standins import free_port, wait_until_ready
from tests.test_index_store import check_gpu_search, write_corpus

READY_TIMEOUT_S = 30.0


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    binary = shutil.which("chroma")
    if not binary:
        reason = "the `chroma` executable is not on PATH (it ships with the chromadb package: pip install chromadb)"
        if _ci():
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("chroma-server")
    last = ""
    for _ in range(3):  # a free port can be taken between choosing and binding it
        port = free_port()
        log_path = root / f"chroma-{port}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen([binary, "run", "--path", str(root / "data"), "--host", "127.0.0.1",
                                        "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        if wait_until_ready(process, f"http://127.0.0.1:{port}/api/v2/heartbeat", READY_TIMEOUT_S, 0.1):
            try:
                yield ChromaServerConfig(host="127.0.0.1", port=port)
            finally:
                _stop(process)
            return
        _stop(process)
        last = log_path.read_text(errors="replace")[-800:]
        if "address" not in last.lower():
            break
    pytest.fail(f"chroma run did not answer within {READY_TIMEOUT_S:.0f} s:\n{last}", pytrace=False)


@pytest.fixture
def server(chroma_server):
    """The module's server, emptied: each test starts without collections."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.HttpClient(host=chroma_server.host, port=chroma_server.port,
                                 settings=Settings(anonymized_telemetry=False))
    for collection in client.list_collections():
        client.delete_collection(collection if isinstance(collection, str) else collection.name)
    return chroma_server


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_same_search_on_a_chroma_server(server, tmp_path):
    records, _ = collect([write_corpus(tmp_path / "corpus")])
    remote = Memory(MemoryConfig(server=server))
    summary = remote.add_records(records)
    assert len(summary.added) == 8
    assert remote.add_records(records).added == []  # idempotent on the server too
    check_gpu_search(remote)
    local = Memory(MemoryConfig(path=tmp_path / "local"))
    local.add_records(records)
    query = "checkout timeouts after a feature flag change"
    assert ([r.id for r in remote.find_similar_incidents(query, k=4)]
            == [r.id for r in local.find_similar_incidents(query, k=4)])
    # Another client (another process would do the same) reopens the collection with its stored function.
    assert Memory(MemoryConfig(server=server)).count() == 8


def test_server_that_is_down_is_one_clear_sentence():
    config = MemoryConfig(server=ChromaServerConfig(host="127.0.0.1", port=free_port()))
    started = time.monotonic()
    with pytest.raises(ChromaUnavailable) as info:
        Memory(config).find_similar_incidents("anything")
    message = str(info.value)
    assert message.startswith(f"the Chroma server at http://127.0.0.1:{config.server.port} does not answer")
    assert "\n" not in message and "chroma run" in message
    assert time.monotonic() - started < 15


def test_cli_against_the_server(server, tmp_path):
    from typer.testing import CliRunner

    from bot.index_cli import index_app

    corpus = write_corpus(tmp_path / "corpus")
    port = str(server.port)
    runner = CliRunner()
    added = runner.invoke(index_app, ["add", str(corpus), "--chroma-host", "127.0.0.1", "--chroma-port", port])
    assert added.exit_code == 0 and "8 added" in added.output and "the Chroma server at" in added.output
    found = runner.invoke(index_app, ["search", "Xid 79", "--chroma-port", port, "--k", "1", "--json"])
    assert found.exit_code == 0 and '"INC-101"' in found.output
    down = runner.invoke(index_app, ["search", "x", "--chroma-port", str(free_port())])
    assert down.exit_code == 2 and "does not answer" in down.output
    assert Path(tmp_path).exists()
