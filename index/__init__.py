"""Past-incident memory (Chroma): postmortems, runbooks and resolved incidents; similar-incident search.

- ``index.records``: ``IncidentRecord`` / ``RunbookRecord`` and the parsers (Markdown with front
  matter, JSON, JSON lines, the labelled public-cloud corpus).
- ``index.embeddings``: registered Chroma embedding functions (offline hashed n-grams, 1024 dims, by default,
  any OpenAI-compatible endpoint, local-only ONNX MiniLM) and ``EmbeddingConfig``.
- ``index.store``: ``Memory`` (``add_records``, ``add_incident``, ``find_similar_incidents``,
  ``suggest``, ``add_runbooks``, ``find_runbooks``, ``rebuild``) and ``MemoryConfig``.
- ``index.learn``: the category heads (ridge sums over the embeddings of labelled incidents,
  solved on demand) that suggest the category and re-rank related incidents.
- ``index.evaluate``: ``sleuth index eval``, leave-one-out quality on a labelled corpus.
- ``index.errors``: the one-sentence errors (``SleuthIndexError`` and subclasses).

Chroma is imported by ``index.embeddings`` and ``index.store``; import them lazily from the CLI.
"""
