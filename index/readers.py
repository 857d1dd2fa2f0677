"""Reading record files: Markdown postmortems with front matter, JSON, JSON lines, runbooks, and whole folders."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from index.corpus import parse_labelled_corpus
from index.errors import RecordError
from index.schema import IncidentRecord, RunbookRecord
from index.validate import RECORD_KEYS, check_category, record_from_mapping, str_list, suggest_option

MARKDOWN_SUFFIXES = (".md", ".markdown")
JSON_SUFFIXES = (".json",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES + JSON_SUFFIXES + JSONL_SUFFIXES


# --- Markdown ----------------------------------------------------------------------------------


def split_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str, int]:
    """(front matter, body, line number where the body starts). Raises on a missing or bad block."""
    if not text.strip():
        raise RecordError(f"{path} is empty; a postmortem needs YAML front matter and a body")
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise RecordError(f"{path} has no YAML front matter (a '---' block at line 1 with at least 'title:'); "
                          "it does not look like a postmortem")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        raise RecordError(f"{path}: the front matter opened at line 1 is never closed; add a '---' line after it")
    block = "\n".join(lines[1:end])
    try:
        meta = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecordError(f"{path}: malformed YAML front matter{at}: {problem}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise RecordError(f"{path}: the front matter at lines 2-{end} must be a mapping of keys (title:, services:, ...)")
    return meta, "\n".join(lines[end + 1:]), end + 2


def _key_line(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"^{re.escape(key)}\s*:", line):
            return number
    return None


def split_sections(body: str) -> tuple[str, dict[str, str]]:
    """(text before the first '## ' heading, {heading: text}). '# ' titles and deeper headings stay in the text."""
    preamble: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] = preamble
    for line in body.splitlines():
        match = re.match(r"^##\s+(.+?)\s*#*\s*$", line)
        if match and not line.startswith("###"):
            heading = match.group(1).strip()
            current = sections.setdefault(heading, [])
            continue
        if re.match(r"^#\s+", line) and current is preamble:
            continue  # a top-level title repeats the front matter
        current.append(line)
    return "\n".join(preamble).strip(), {h: "\n".join(v).strip() for h, v in sections.items()}


def _with_line(exc: RecordError, path: Path, text: str, meta: dict[str, Any]) -> RecordError:
    """Add the line of the offending front-matter key to an error message when it can be found."""
    message = str(exc)
    match = re.search(r"\((\w+)\)", message)
    key = match.group(1) if match else next((k for k in meta if f"'{k}'" in message), None)
    if key:
        line = _key_line(text, key)
        if key == "root_cause" and line is None:
            line = _key_line(text, "category")
        at = f"{path}, line {line}" if line else str(path)
        message = message.replace(f"{path} ({key})", at, 1)
        if line and f"{path}:" in message:
            message = message.replace(f"{path}:", f"{at}:", 1)
    return RecordError(message)


def parse_markdown(path: Path, text: str | None = None) -> IncidentRecord:
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    meta, body, _ = split_front_matter(text, path)
    if "title" not in meta and not meta:
        raise RecordError(f"{path}: the front matter is empty; add at least 'title:' and 'services:'")
    if "signals" in meta and not ({"services", "root_cause", "category", "mitigations"} & set(meta)):
        raise RecordError(f"{path} looks like a runbook (it has 'signals:'), not a postmortem; add it with --runbooks")
    unknown = sorted(set(meta) - RECORD_KEYS)
    if unknown:
        line = _key_line(text, unknown[0])
        at = f", line {line}" if line else ""
        raise RecordError(f"{path}{at}: unknown front-matter key {unknown[0]!r}; "
                          f"{suggest_option(unknown[0], sorted(RECORD_KEYS))}")
    preamble, sections = split_sections(body)
    if preamble and not any(h.lower().startswith(("summary", "overview")) for h in sections):
        sections = {"Summary": preamble, **sections}
    try:
        record = record_from_mapping(meta, where=str(path), default_id=path.stem, source=str(path), sections=sections)
    except RecordError as exc:
        raise _with_line(exc, path, text, meta) from None
    if not (record.services or record.category or record.mitigations or record.summary
            or record.root_cause_text or record.mitigation_text):
        raise RecordError(f"{path} has a title but no services, root cause, mitigation or summary; "
                          "it does not look like a postmortem")
    return record


# --- JSON and JSON lines -----------------------------------------------------------------------


def _is_labelled_corpus(data: Any) -> bool:
    if not isinstance(data, dict) or not data or "title" in data:
        return False
    values = list(data.values())
    return all(isinstance(v, dict) for v in values) and any(
        isinstance(v.get("root cause"), dict) or isinstance(v.get("mitigation"), dict) for v in values)


def parse_json(path: Path, text: str | None = None) -> list[IncidentRecord]:
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    if not text.strip():
        raise RecordError(f"{path} is empty; expected a JSON incident record, a list of them, or a labelled corpus")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}, line {exc.lineno}: not valid JSON: {exc.msg}") from None
    if _is_labelled_corpus(data):
        return parse_labelled_corpus(path, data)
    if isinstance(data, dict) and isinstance(data.get("incidents"), list):
        data = data["incidents"]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise RecordError(f"{path} holds an empty list; it contains no incident records")
    records = []
    for number, item in enumerate(items, start=1):
        where = f"{path}, record {number}" if isinstance(data, list) else str(path)
        if not isinstance(item, dict):
            raise RecordError(f"{where}: expected an incident object with 'title', got {type(item).__name__}")
        default_id = f"{path.stem}-{number}" if isinstance(data, list) else path.stem
        records.append(record_from_mapping(item, where=where, default_id=default_id, source=str(path)))
    return records


def parse_jsonl(path: Path, text: str | None = None) -> list[IncidentRecord]:
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{path}, line {number}: not valid JSON: {exc.msg}") from None
        if not isinstance(item, dict):
            raise RecordError(f"{path}, line {number}: expected an incident object with 'title', got {type(item).__name__}")
        records.append(record_from_mapping(item, where=f"{path}, line {number}",
                                           default_id=f"{path.stem}-{number}", source=str(path)))
    if not records:
        raise RecordError(f"{path} is empty; expected one JSON incident record per line")
    return records


# --- files and folders -------------------------------------------------------------------------


def parse_file(path: Path) -> list[IncidentRecord]:
    """All incidents in one file; a RecordError naming the file when it is not usable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RecordError(f"{path} is not UTF-8 text; it does not look like a postmortem") from None
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return [parse_markdown(path, text)]
    if suffix in JSON_SUFFIXES:
        return parse_json(path, text)
    if suffix in JSONL_SUFFIXES:
        return parse_jsonl(path, text)
    raise RecordError(f"{path}: unsupported file type {suffix or '(none)'}; "
                      f"use Markdown with front matter (.md), JSON (.json) or JSON lines (.jsonl)")


def _files(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Supported files under the paths (folders walked, sorted) and the ones skipped with why."""
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            # Hidden files and what makes a folder a Python package (it ships in the wheel) are not documents.
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name != "__init__.py" and not any(
                part.startswith(".") or part == "__pycache__" for part in p.relative_to(path).parts))
            for p in found:
                if p.name.lower() in ("readme.md", "readme.markdown", "license.md", "changelog.md"):
                    skipped.append((str(p), "a README, not a postmortem"))
                elif p.suffix.lower() in SUPPORTED_SUFFIXES:
                    files.append(p)
                else:
                    skipped.append((str(p), f"unsupported file type {p.suffix or '(none)'}"))
        elif path.is_file():
            files.append(path)
        else:
            raise RecordError(f"{path} does not exist; pass postmortem files or folders")
    return files, skipped


def collect(paths: Iterable[Path], *, runbooks: bool = False):
    """Every record under the paths, plus (source, reason) for each file that could not be read.

    Raises RecordError when nothing usable was found at all (an empty corpus).
    """
    paths = list(paths)
    files, skipped = _files(paths)
    parse = parse_runbook if runbooks else parse_file
    records: list[Any] = []
    for path in files:
        try:
            parsed = parse(path)
        except RecordError as exc:
            skipped.append((str(path), str(exc)))
            continue
        records.extend(parsed if isinstance(parsed, list) else [parsed])
    if not records:
        what = "runbooks" if runbooks else "postmortems"
        if skipped:
            raise RecordError(skipped[0][1] if len(files) == 1 and len(skipped) == 1 else
                              f"no usable {what} under {', '.join(map(str, paths))}: {skipped[0][0]}: {skipped[0][1]}")
        raise RecordError(f"no {what} found under {', '.join(map(str, paths))} (looked for "
                          f"{', '.join(MARKDOWN_SUFFIXES if runbooks else SUPPORTED_SUFFIXES)} files): an empty corpus")
    return records, skipped


# --- runbooks ----------------------------------------------------------------------------------

RUNBOOK_SECTIONS = ("Check", "Measure", "Triage", "Remediate", "Verify")


def parse_runbook(path: Path) -> RunbookRecord:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"cannot read runbook {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if path.suffix.lower() not in MARKDOWN_SUFFIXES:
        raise RecordError(f"{path}: runbooks are Markdown files with front matter (.md)")
    meta, body, _ = split_front_matter(text, path)
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        line = _key_line(text, "title")
        raise RecordError(f"{path}{f', line {line}' if line else ''}: missing 'title'; a runbook needs a title")
    categories = []
    for c in str_list(meta.get("categories"), str(path), "categories"):
        try:
            categories.append(check_category(c, str(path)))
        except RecordError as exc:
            line = _key_line(text, "categories")
            raise RecordError(str(exc).replace(f"{path}:", f"{path}, line {line}:", 1) if line else str(exc)) from None
    _, sections = split_sections(body)
    if not sections:
        raise RecordError(f"{path} has no '## ' sections; a runbook needs {', '.join(RUNBOOK_SECTIONS)}")
    return RunbookRecord(
        id=str(meta.get("id") or path.stem),
        title=title.strip(),
        categories=[c for c in categories if c],
        signals=str_list(meta.get("signals"), str(path), "signals"),
        tags=str_list(meta.get("tags"), str(path), "tags"),
        sections=sections,
        source=str(path),
    )
