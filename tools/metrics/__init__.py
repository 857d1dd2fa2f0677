"""The metrics source: Prometheus or OpenMetrics files, the metric scan, and the model's PromQL tool.

- ``backends``: the two backends behind one interface (``MetricsBackend``), their config and links;
- ``scan``: which series to read for an investigation (catalog signals, discovery, typed reads);
- ``compact``: a range query summarised for the model;
- ``source``: the source as the registry lists it (gathering and the ``query_metrics`` tool);
- ``guidance.md``: what the model is told about the tool.
"""

from tools.metrics.backends import (DISCOVERY_LABELS, LOOKBACK_S, POD_SUFFIX, EmbeddedBackend, LinkConfig, Matcher,
                                    MetricsBackend, MetricsConfig, PrometheusBackend, Series, discovery_matchers,
                                    escape_value, open_backend, parse_selector, pod_regex, query_link, selector_for)

__all__ = ["DISCOVERY_LABELS", "LOOKBACK_S", "POD_SUFFIX", "EmbeddedBackend", "LinkConfig", "Matcher", "MetricsBackend",
           "MetricsConfig", "PrometheusBackend", "Series", "discovery_matchers", "escape_value", "open_backend",
           "parse_selector", "pod_regex", "query_link", "selector_for"]
