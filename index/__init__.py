"""Past-incident memory (Chroma): postmortems, runbooks and resolved incidents; similar-incident search.

- ``index.records``: ``IncidentRecord`` / ``RunbookRecord`` and the parsers (Markdown with front
  matter, JSON, JSON lines, the labelled public-cloud corpus), gathered from ``index.schema``,
  ``index.validate``, ``index.corpus`` and ``index.readers``.
- ``index.embeddings``: registered Chroma embedding functions (offline hashed n-grams, 1024 dims, by default,
  any OpenAI-compatible endpoint, local-only ONNX MiniLM) and ``EmbeddingConfig``.
- ``index.store``: ``Memory`` (``add_records``, ``add_incident``, ``find_similar_incidents``,
  ``suggest``, ``add_runbooks``, ``find_runbooks``, ``rebuild``) and ``MemoryConfig``, built from
  ``index.chroma`` (client, collections), ``index.heads`` (category heads), ``index.ingest`` (writes)
  and ``index.search``; ``index.entries`` lays records out as entries, ``index.results`` holds the answers.
- ``index.learn``: the category heads (ridge sums over the embeddings of labelled incidents,
  solved on demand) that suggest the category and re-rank related incidents.
- ``index.evaluate``: ``sleuth index eval``, leave-one-out quality on a labelled corpus.
- ``index.errors``: the one-sentence errors (``SleuthIndexError`` and subclasses).

Chroma is imported by ``index.embeddings`` and ``index.chroma``; import them lazily from the CLI.
"""
