"""The evaluator: dispatch over the syntax tree to the selectors, functions, aggregations and binary operators."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tools.promql_eval.aggregations import AggregationMixin
from tools.promql_eval.binary import BinaryMixin
from tools.promql_eval.functions import FunctionMixin
from tools.promql_eval.selectors import SelectorMixin
from tools.promql_eval.values import Scalar, SeriesTuple, String, UnsupportedQuery, Value, Vector, merge, without_name


class Evaluator(SelectorMixin, FunctionMixin, AggregationMixin, BinaryMixin):
    def __init__(self, series: Sequence[SeriesTuple], grid: np.ndarray, lookback_s: float) -> None:
        self.raw = series
        self.grid = np.asarray(grid, dtype=float)
        self.grid_ms = np.round(self.grid * 1000.0).astype(np.int64)
        self.steps = self.grid.size
        self.lookback_ms = int(round(lookback_s * 1000.0))
        self.converted: dict[int, tuple[dict[str, str], np.ndarray, np.ndarray]] = {}

    # --- dispatch ---------------------------------------------------------------------------------

    def eval(self, node: Any) -> Value:
        kind = type(node).__name__
        if kind == "ParenExpr":
            return self.eval(node.expr)
        if kind == "NumberLiteral":
            return Scalar(np.full(self.steps, float(node.val)))
        if kind == "StringLiteral":
            return String(node.val)
        if kind == "UnaryExpr":
            return self._negate(self.eval(node.expr))
        if kind == "VectorSelector":
            return self.instant_selector(node)
        if kind == "MatrixSelector":
            raise ValueError('invalid expression type "range vector" for range query, must be Scalar or instant Vector')
        if kind == "SubqueryExpr":
            raise UnsupportedQuery("subqueries (expr[range:step]) are not supported by the embedded evaluator")
        if kind == "Call":
            return self.call(node)
        if kind == "AggregateExpr":
            return self.aggregate(node)
        if kind == "BinaryExpr":
            return self.binary(node)
        raise UnsupportedQuery(f"the PromQL construct {kind} is not supported")

    def _negate(self, value: Value) -> Value:
        if isinstance(value, Scalar):
            return Scalar(-value.values)
        if isinstance(value, Vector):
            return merge([(without_name(s.labels), -s.values, s.present) for s in value.series])
        raise ValueError("unary minus needs a scalar or an instant vector")
