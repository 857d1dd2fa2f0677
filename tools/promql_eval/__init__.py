"""A PromQL range-query evaluator over in-memory series, with Prometheus 2.42's semantics.

The embedded metrics backend reads OpenMetrics files and has no Prometheus to ask, yet an
investigation must read the same numbers from it as from a real server: the same ``rate`` after a
counter reset, the same ``histogram_quantile`` interpolation, the same series dropping out of an
error ratio. So this module evaluates a subset of PromQL the way Prometheus 2.42 does
(promql/engine.go and promql/functions.go describe the behaviour; the algorithms here are written
from that description) and refuses everything else with ``UnsupportedQuery`` rather than guess.

Parsing is done by the ``promql-parser`` package. Evaluation is vectorised over the evaluation
grid: an instant vector is a list of series, each a value array and a presence mask over the grid
(NaN is a legitimate sample value, so absence needs its own mask). Timestamps are integer
milliseconds internally, as in Prometheus, so window boundaries compare exactly.

The modules: syntax (parsing), values (vectors, scalars), evaluator (dispatch), base (what the
evaluator's mixins share), selectors, functions and range_functions, aggregations, binary
(operators), quantile, gomath (Go's float64 semantics).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tools.promql_eval.evaluator import Evaluator
from tools.promql_eval.syntax import is_node, parse_query, unparen
from tools.promql_eval.values import Scalar, SeriesTuple, UnsupportedQuery, Vector, label_key

__all__ = ["UnsupportedQuery", "evaluate_range"]


def evaluate_range(query: str, series: Sequence[SeriesTuple], grid: np.ndarray,
                   lookback_s: float = 300.0) -> list[SeriesTuple]:
    """series: (labels incl. "__name__", sorted unix-second timestamps, values) of raw samples.
    grid: evaluation times (start + k*step). Returns one (labels, timestamps, values) per output
    series, only the grid points where it has a value, like /api/v1/query_range's matrix.
    Output labels follow Prometheus (functions like rate drop __name__, aggregations keep only
    the by-labels, etc.). Raise UnsupportedQuery for anything outside the subset, and ValueError
    with Prometheus-like wording for a parse error."""
    tree = parse_query(query)
    top = unparen(tree)
    if is_node(top, "StringLiteral"):
        raise ValueError('invalid expression type "string" for range query, must be Scalar or instant Vector')
    if is_node(top, "MatrixSelector") or is_node(top, "SubqueryExpr"):
        raise ValueError('invalid expression type "range vector" for range query, must be Scalar or instant Vector')
    grid = np.asarray(grid, dtype=float)
    if grid.size == 0:
        return []
    result = Evaluator(series, grid, lookback_s).eval(tree)
    if isinstance(result, Scalar):
        return [({}, grid.copy(), result.values.copy())]
    if not isinstance(result, Vector):
        raise ValueError("a range query must evaluate to a scalar or an instant vector")
    out = [(dict(s.labels), grid[s.present].copy(), s.values[s.present].copy())
           for s in result.series if s.present.any()]
    out.sort(key=lambda item: label_key(item[0]))
    return out
