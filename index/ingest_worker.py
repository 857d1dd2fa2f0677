"""The worker process of a large ingest into the memory: prepares batches of new incidents.

``index.ingest`` runs it as ``python -m index.ingest_worker`` while it writes to Chroma. It reads
jobs, pickled, from its standard input, one at a time: (hashed embedding config, time, rows), and
writes each result, pickled, on its original standard output: what
:func:`index.ingest.prepare_incidents` returns for the rows. It ends at the end of its input.
"""

from __future__ import annotations

import json
import os
import pickle
import sys


def main() -> int:
    # Results go to the original standard output; anything else printed goes to standard error.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    source = sys.stdin.buffer

    from index.embeddings import HashedNgramEmbedding
    from index.ingest import prepare_incidents

    functions: dict[str, HashedNgramEmbedding] = {}
    while True:
        try:
            config, now, rows = pickle.load(source)
        except EOFError:
            return 0
        key = json.dumps(config, sort_keys=True)
        if key not in functions:
            functions[key] = HashedNgramEmbedding.build_from_config(config)
        pickle.dump(prepare_incidents(functions[key], rows, now), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
