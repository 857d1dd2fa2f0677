"""Loki's HTTP API: LogQL for one service, ranged queries, the services it knows, Grafana links."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Callable, Iterable, Iterator

from pydantic import Field

from tools.http import HttpSourceConfig, SourceError, make_client, request_json
from tools.links import grafana_explore
from tools.logs.backend import MineReport
from tools.logs.records import LogRecord, clip_line, normalise_level, parse_line
from tools.logs.templates import TemplateMiner


class LokiConfig(HttpSourceConfig):
    service_label: str = "service"
    json_lines: bool = Field(True, description="lines are JSON; level is read with `| json`")
    limit: int = Field(5000, ge=1, le=50000, description="lines per query")
    tenant: str | None = Field(None, description="X-Scope-OrgID for multi-tenant Loki")
    grafana_url: str | None = None
    grafana_datasource: str | None = None


def build_logql(service: str, *, service_label: str = "service", levels: Iterable[str] = (),
                text: str | None = None, json_lines: bool = True) -> str:
    """A LogQL query for one service, optionally narrowed by level and a text filter."""
    value = service.replace("\\", "\\\\").replace('"', '\\"')
    query = f'{{{service_label}="{value}"}}'
    if text:
        query += ' |= "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    levels = list(levels)
    if levels:
        alternatives = "|".join(levels)
        query += f' | json | level=~"(?i)({alternatives})"' if json_lines else f' |~ "(?i)({alternatives})"'
    return query


class LokiClient:
    def __init__(self, config: LokiConfig) -> None:
        self.config = config
        headers = dict(config.headers)
        if config.tenant:
            headers["X-Scope-OrgID"] = config.tenant
        self.client = make_client(config.model_copy(update={"headers": headers}))

    async def query_range(self, query: str, start: float, end: float) -> list[LogRecord]:
        payload = await request_json(
            self.client, self.config, "Loki", "GET", "/loki/api/v1/query_range",
            params={
                "query": query,
                "start": str(int(start * 1e9)),
                "end": str(int(end * 1e9)),
                "limit": str(self.config.limit),
                "direction": "forward",
            },
        )
        if not isinstance(payload, dict) or payload.get("status") != "success":
            raise SourceError(f"Loki refused the query: {payload.get('error') if isinstance(payload, dict) else 'unexpected answer'}")
        data = payload.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("result"), list):
            raise SourceError("Loki answered JSON without data.result")
        if data.get("resultType") != "streams":
            raise SourceError(f"Loki answered {data.get('resultType')!r} where streams were expected")
        records = []
        for stream in data["result"]:
            labels = stream.get("stream") if isinstance(stream, dict) else None
            values = stream.get("values") if isinstance(stream, dict) else None
            if not isinstance(labels, dict) or not isinstance(values, list):
                raise SourceError("Loki answered a stream without its labels and values")
            service = str(labels.get(self.config.service_label, ""))
            for entry in values:
                try:
                    ts = int(entry[0]) / 1e9
                    line = entry[1]
                except (IndexError, TypeError, KeyError, ValueError):
                    raise SourceError("Loki answered a log entry that is not [nanoseconds, line]") from None
                if not isinstance(line, str):
                    raise SourceError("Loki answered a log entry whose line is not text")
                line = clip_line(line)
                record = parse_line(line, service) if line.lstrip().startswith("{") else None
                if record is None:
                    record = LogRecord(ts, service, normalise_level(labels.get("level")), line)
                record.ts = ts
                record.service = service or record.service
                records.append(record)
        records.sort(key=lambda r: r.ts)
        return records

    async def services(self, start: float, end: float) -> list[str]:
        """Values of the service label that have lines in [start, end]."""
        payload = await request_json(
            self.client, self.config, "Loki", "GET", f"/loki/api/v1/label/{self.config.service_label}/values",
            params={"start": str(int(start * 1e9)), "end": str(int(end * 1e9))},
        )
        if not isinstance(payload, dict) or payload.get("status") != "success":
            raise SourceError("Loki refused the label query")
        if payload.get("data") is not None and not isinstance(payload.get("data"), list):
            raise SourceError("Loki answered the label values without a list")
        return sorted(str(v) for v in payload.get("data") or [])

    def link(self, query: str, start: float, end: float) -> str | None:
        if not self.config.grafana_url:
            return None
        return grafana_explore(self.config.grafana_url, self.config.grafana_datasource or "loki", query, start, end)

    async def aclose(self) -> None:
        await self.client.aclose()


class LokiBackend:
    """Loki as a log backend."""

    def __init__(self, config: LokiConfig, max_components: int) -> None:
        self.config = config
        self.max_components = max_components
        self.opened: LokiClient | None = None

    @property
    def client(self) -> LokiClient:
        """The HTTP client, opened on first use (describing a backend opens nothing)."""
        if self.opened is None:
            self.opened = LokiClient(self.config)
        return self.opened

    def describe(self) -> str:
        return f"Loki at {self.config.url}"

    def query(self, service: str, levels: Iterable[str] = (), text: str | None = None) -> str:
        return build_logql(service, service_label=self.config.service_label, levels=levels, text=text,
                           json_lines=self.config.json_lines)

    async def mine(self, miner: TemplateMiner, components: list[str] | None, start: float, split: float,
                   end: float, *, redact: Callable[[str], str], redaction_key: str, found: MineReport) -> None:
        targets = components
        if not targets:
            found.queries += 1
            targets = (await self.client.services(start, end))[:self.max_components]
        for component in targets:
            query = self.query(component)
            found.log_queries[component] = query
            link = self.client.link(query, start, end)
            if link:
                found.log_links[component] = link
            # Before and after the window start separately, so a busy window cannot crowd the
            # baseline out of the line limit (or the other way round).
            halves = await asyncio.gather(*(self.client.query_range(query, lo, hi) for lo, hi in ((start, split), (split, end))))
            found.queries += 2
            for records in halves:
                if len(records) >= self.config.limit:
                    found.notes.append(f"{component}: Loki returned its limit of {self.config.limit} lines; counts are a sample")
                miner.add_all(_redacted(records, redact))

    async def search(self, service: str, start: float, end: float, *, levels: list[str],
                     text: str | None) -> tuple[list[LogRecord], str]:
        query = self.query(service, levels, text)
        return await self.client.query_range(query, start, end), query

    async def aclose(self) -> None:
        if self.opened is not None:
            await self.opened.aclose()


def _redacted(records: Iterable[LogRecord], redact: Callable[[str], str]) -> Iterator[LogRecord]:
    """Secrets leave a log line before it is mined: a template's masks would hide them from redaction."""
    for record in records:
        message = redact(record.message)
        yield record if message == record.message else dataclasses.replace(record, message=message)
