"""Configuration of the past-incident memory (``memory:`` in sleuth.yml).

Kept apart from the store and the embedding functions, which import chromadb, so that reading a
config stays cheap when no memory is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

DEFAULT_PATH = Path(".sleuth/memory")


class EmbeddingConfig(BaseModel):
    """Which embedding function builds the memory (``memory.embedding`` in sleuth.yml)."""

    model_config = {"extra": "forbid"}

    kind: Literal["hashed", "openai", "onnx-minilm"] = "hashed"
    dim: int | None = Field(None, ge=16, le=65536, description=(
        "hashed: vector dimension; unset, a new memory gets 1024 and an existing one keeps its own"))
    base_url: str | None = Field(None, description="openai: e.g. http://127.0.0.1:11434/v1")
    model: str | None = Field(None, description="openai: the embedding model name")
    api_key_env: str | None = Field("OPENAI_API_KEY", description="openai: NAME of the env var holding the key")
    dimensions: int | None = Field(None, description="openai: ask the model for this many dimensions")
    model_dir: str | None = Field(None, description="onnx-minilm: folder with the six model files")


class ChromaServerConfig(BaseModel):
    """A Chroma server (``chroma run``) reached through HttpClient."""

    model_config = {"extra": "forbid"}

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    ssl: bool = False
    headers: dict[str, str] = Field(default_factory=dict, description="e.g. {Authorization: 'Bearer ${CHROMA_TOKEN}'}")

    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"


class MemoryConfig(BaseModel):
    """``memory:`` in sleuth.yml: where the memory lives and how it embeds."""

    model_config = {"extra": "forbid"}

    path: Path = Field(DEFAULT_PATH, description="embedded store folder (ignored when server is set)")
    server: ChromaServerConfig | None = None
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    recency_half_life_days: float = Field(730.0, gt=0, description="how fast the mild recency preference fades")

    def where(self) -> str:
        return f"the Chroma server at {self.server.url()}" if self.server else f"the memory at {self.path}"
