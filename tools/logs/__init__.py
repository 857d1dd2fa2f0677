"""The logs source: files and Loki as backends, template mining, and the model's log search.

Lines become templates with drain3. A template is evidence when it is new after the onset, or when
its rate jumped; a template as frequent before the onset as after it is background, however loud.
Before mining, a message loses the header its logging framework repeated inside it (a leading
timestamp, and a level word that repeats the record's level), and templates never mix levels: an
ERROR line of a class that logged at INFO before the onset is a template of its own.

- ``records``: the one parser of log lines (JSON lines, plain text, Loki's answers);
- ``backend``: what a backend offers (mine a window, search one service); ``files``, ``loki``: the two;
- ``config``: ``logs:`` in sleuth.yml and the backends it opens (a new backend is listed there);
- ``templates``: mining and how templates changed after the onset;
- ``compact``: a search's lines as templates for the model;
- ``source``: the source as the registry lists it (gathering and the ``search_logs`` tool);
- ``guidance.md``: what the model is told about the tool.
"""

from tools.logs.config import LogsConfig, open_backends
from tools.logs.files import read_files
from tools.logs.loki import LokiClient, LokiConfig, build_logql
from tools.logs.records import LEVELS, LogRecord, normalise_level, parse_line
from tools.logs.templates import (LOCATING_FIELDS, Template, TemplateChange, TemplateMiner, covered_minutes, new_miner,
                                  strip_header, template_changes)

__all__ = ["LEVELS", "LOCATING_FIELDS", "LogRecord", "LogsConfig", "LokiClient", "LokiConfig", "Template",
           "TemplateChange", "TemplateMiner", "build_logql", "covered_minutes", "new_miner", "normalise_level",
           "open_backends", "parse_line", "read_files", "strip_header", "template_changes"]
