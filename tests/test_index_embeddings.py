"""The embedding functions: an OpenAI-compatible endpoint (a real local server), MiniLM without a download."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from chromadb.utils.embedding_functions import known_embedding_functions

from index.embeddings import (
    EmbeddingConfig,
    HashedNgramEmbedding,
    LocalMiniLMEmbedding,
    OpenAICompatibleEmbedding,
    make_embedding,
)
from index.errors import EmbeddingError
from index.records import collect
from index.store import Memory, MemoryConfig
from tests.standins import free_port
from tests.test_index_store import write_corpus


class EmbeddingsServer:
    """POST /v1/embeddings in OpenAI's format; vectors from the hashed function so that search is meaningful."""

    def __init__(self, key: str = "sk-test") -> None:
        self.key = key
        self.seen: list[dict] = []
        inner = HashedNgramEmbedding(dim=64)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                outer.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if self.headers.get("Authorization") != f"Bearer {outer.key}":
                    self._send(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
                    return
                if self.path != "/v1/embeddings":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                vectors = inner(texts)
                self._send(200, {"object": "list", "model": body["model"],
                                 "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                                          for i, v in enumerate(vectors)],
                                 "usage": {"prompt_tokens": 1, "total_tokens": 1}})

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_functions_are_registered_with_chroma():
    for cls in (HashedNgramEmbedding, OpenAICompatibleEmbedding, LocalMiniLMEmbedding):
        assert known_embedding_functions[cls.name()] is cls


def test_openai_compatible_endpoint_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("SLEUTH_TEST_EMBED_KEY", "sk-test")
    with EmbeddingsServer() as server:
        config = EmbeddingConfig(kind="openai", base_url=server.url, model="tiny-embed", api_key_env="SLEUTH_TEST_EMBED_KEY")
        function = make_embedding(config)
        assert function.get_config()["api_key_env"] == "SLEUTH_TEST_EMBED_KEY"
        assert "sk-test" not in json.dumps(function.get_config())  # the key name is stored, never the key
        memory = Memory(MemoryConfig(path=tmp_path / "m", embedding=config))
        records, _ = collect([write_corpus(tmp_path / "corpus")])
        assert len(memory.add_records(records).added) == 8
        assert memory.find_similar_incidents("Xid 79 GPU fell off the bus", k=1)[0].id == "INC-101"
        assert server.seen and all(s["auth"] == "Bearer sk-test" and s["body"]["model"] == "tiny-embed" for s in server.seen)
        # Reopened from its stored config in another Memory: same function, no mismatch.
        again = Memory(MemoryConfig(path=tmp_path / "m", embedding=config))
        assert again.count() == 8
        monkeypatch.setenv("SLEUTH_TEST_EMBED_KEY", "sk-wrong")
        with pytest.raises(EmbeddingError, match="HTTP 401"):
            OpenAICompatibleEmbedding(server.url, "tiny-embed", "SLEUTH_TEST_EMBED_KEY")(["x"])


def test_openai_compatible_errors(monkeypatch):
    monkeypatch.delenv("SLEUTH_NO_SUCH_KEY", raising=False)
    with pytest.raises(EmbeddingError, match="SLEUTH_NO_SUCH_KEY is not set"):
        OpenAICompatibleEmbedding("http://127.0.0.1:9/v1", "m", "SLEUTH_NO_SUCH_KEY")(["x"])
    down = OpenAICompatibleEmbedding(f"http://127.0.0.1:{free_port()}/v1", "m", None)
    down.timeout_s = 2.0
    with pytest.raises(EmbeddingError, match="cannot be reached"):
        down(["x"])
    with pytest.raises(EmbeddingError, match="needs base_url and model"):
        make_embedding(EmbeddingConfig(kind="openai"))


def test_minilm_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(EmbeddingError, match="never downloads") as info:
        make_embedding(EmbeddingConfig(kind="onnx-minilm"))
    assert "model.onnx" in str(info.value) and str(tmp_path) in str(info.value)
    partial = tmp_path / "model"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    function = LocalMiniLMEmbedding(model_dir=str(partial))
    with pytest.raises(EmbeddingError, match="missing: model.onnx"):
        function(["x"])
    assert not (tmp_path / ".cache").exists()  # nothing was fetched
    assert LocalMiniLMEmbedding.build_from_config(function.get_config()).folder() == partial


def test_minilm_with_local_files():
    from index.embeddings import default_minilm_dir, missing_minilm_files

    if missing_minilm_files(default_minilm_dir()):
        message = f"the MiniLM model files are not in {default_minilm_dir()}; nothing is downloaded in tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (.ci/run installs them)")
        pytest.skip(message)
    vectors = LocalMiniLMEmbedding()(["GPU fell off the bus", "a GPU dropped off the PCIe bus", "checkout flag"])
    assert vectors[0].shape == (384,)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])


def test_hashed_embedding_config_roundtrip_and_bounds():
    function = HashedNgramEmbedding(dim=256)
    rebuilt = HashedNgramEmbedding.build_from_config(json.loads(json.dumps(function.get_config())))
    assert rebuilt.get_config() == function.get_config()
    assert (function(["same text"])[0] == rebuilt(["same text"])[0]).all()
    with pytest.raises(EmbeddingError):
        HashedNgramEmbedding(dim=4)
    assert Path(__file__).name.startswith("test_index")
