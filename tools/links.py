"""Links a human can open for a query: Grafana Explore or Prometheus's own graph page."""

from __future__ import annotations

import json
import urllib.parse
from datetime import datetime, timezone


def grafana_explore(grafana_url: str, datasource: str, query: str, start: float, end: float) -> str:
    pane = {
        "datasource": datasource,
        "queries": [{"refId": "A", "expr": query}],
        "range": {"from": str(int(start * 1000)), "to": str(int(end * 1000))},
    }
    return f"{grafana_url.rstrip('/')}/explore?left={urllib.parse.quote(json.dumps(pane))}"


def prometheus_graph(prometheus_url: str, query: str, start: float, end: float) -> str:
    params = {
        "g0.expr": query,
        "g0.tab": "0",
        "g0.range_input": f"{max(60, int(end - start))}s",
        "g0.end_input": datetime.fromtimestamp(end, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
    }
    return f"{prometheus_url.rstrip('/')}/graph?{urllib.parse.urlencode(params)}"
