"""Past incidents and runbooks as records, read from the formats teams actually keep.

Formats:

- **Markdown postmortems** with YAML front matter::

      ---
      id: INC-1042                # optional: the file name without suffix otherwise
      title: Checkout 500s after router 2.3 rollout
      services: [checkout, router]
      date: 2026-03-02            # or 2026-03-02T14:05:00Z
      severity: SEV2
      root_cause: code_change     # or category: ..., or root_cause: {category: ..., details: ...}
      mitigations: [rollback]     # taxonomy action ids (or {action: ..., ...} mappings)
      tags: [streaming]
      ---
      ## Summary / ## Impact / ## Root cause / ## Mitigation / any other ## sections

- **JSON / JSON-lines** incident records with the same field names (a list, one object, or one
  object per line), plus the optional free-text fields ``summary``, ``impact``, ``root_cause_text``,
  ``mitigation_text``, ``symptoms``, ``operation`` and ``sections``.
- **The labelled public-cloud corpus** (``../shared/corpora/postmortems-*``): one JSON object
  mapping record ids to incidents with ``root cause.label`` (3-level labels) and
  ``mitigation.label``. :func:`azure_category` maps the labels onto the taxonomy exactly as the
  corpus README suggests; :data:`MITIGATION_KEYWORDS` maps the short mitigation labels onto
  taxonomy actions.

- **Runbooks**: Markdown with front matter ``title``, ``categories``, ``signals``, ``tags`` and
  ``## Check / Measure / Triage / Remediate / Verify`` sections (:func:`parse_runbook`).

Every problem is a :class:`~index.errors.RecordError`: one sentence naming the file (and the
line where known) and what to change.

The parts: the record types (:mod:`index.schema`), field validation and records from mappings
(:mod:`index.validate`), the labelled corpus (:mod:`index.corpus`) and the file readers
(:mod:`index.readers`); this module gathers their public names.
"""

from __future__ import annotations

from index.corpus import MITIGATION_KEYWORDS, azure_category, map_mitigation_label, parse_labelled_corpus
from index.readers import (
    JSON_SUFFIXES,
    JSONL_SUFFIXES,
    MARKDOWN_SUFFIXES,
    RUNBOOK_SECTIONS,
    SUPPORTED_SUFFIXES,
    collect,
    parse_file,
    parse_json,
    parse_jsonl,
    parse_markdown,
    parse_runbook,
    split_front_matter,
    split_sections,
)
from index.schema import IncidentRecord, RunbookRecord
from tools.timeparse import parse_iso as record_timestamp  # the one ISO reader
from index.validate import check_actions, check_category, normalise_date, record_from_mapping

__all__ = [
    "JSON_SUFFIXES", "JSONL_SUFFIXES", "MARKDOWN_SUFFIXES", "MITIGATION_KEYWORDS", "RUNBOOK_SECTIONS",
    "SUPPORTED_SUFFIXES", "IncidentRecord", "RunbookRecord", "azure_category", "check_actions", "check_category",
    "collect", "map_mitigation_label", "normalise_date", "parse_file", "parse_json", "parse_jsonl",
    "parse_labelled_corpus", "parse_markdown", "parse_runbook", "record_from_mapping", "record_timestamp",
    "split_front_matter", "split_sections",
]
