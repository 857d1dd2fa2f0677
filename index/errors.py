"""Errors of the incident memory: each one is a single sentence a responder can act on."""

from __future__ import annotations


class SleuthIndexError(Exception):
    """Base class: a problem with the memory, stated as one sentence naming the fix."""


class RecordError(SleuthIndexError):
    """An input file is not a usable postmortem, incident record or runbook."""


class EmbeddingError(SleuthIndexError):
    """An embedding function cannot be built or cannot answer (model files missing, endpoint down)."""


class EmbeddingMismatch(SleuthIndexError):
    """A collection was built with another embedding function than the one configured."""


class ChromaUnavailable(SleuthIndexError):
    """The Chroma server cannot be reached, or the embedded store cannot be opened."""
