"""Function calls: elementwise functions, the other instant-vector functions, and range-vector functions."""

from __future__ import annotations

import re
from typing import Any, Callable, cast

import numpy as np

from tools.promql_eval.base import EvaluatorBase
from tools.promql_eval.gomath import go_exp, go_expand, go_max, go_min, go_parse_float, go_regex
from tools.promql_eval.quantile import bucket_quantile
from tools.promql_eval.range_functions import RANGE_FUNCTIONS, Window
from tools.promql_eval.syntax import is_node, ms, unparen
from tools.promql_eval.values import NAME, Scalar, Series, String, UnsupportedQuery, Value, Vector, label_key, merge, without_name

# Functions applied to each sample alone: one table rather than a method each.
_ELEMENTWISE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "abs": np.abs, "ceil": np.ceil, "floor": np.floor, "sqrt": np.sqrt, "exp": go_exp,
    "ln": np.log, "log2": np.log2, "log10": np.log10, "sgn": np.sign}


class FunctionMixin(EvaluatorBase):
    """The evaluator's function calls."""

    def call(self, node: Any) -> Value:
        name = node.func.name
        args = list(node.args)
        if name in RANGE_FUNCTIONS:
            return self._range_function(name, args)
        if name in _ELEMENTWISE:
            return self._elementwise(args, _ELEMENTWISE[name])
        handler = getattr(self, f"_fn_{name}", None)
        if handler is None:
            raise UnsupportedQuery(f"the function {name}() is not supported by the embedded evaluator")
        return handler(args)

    def scalar_arg(self, node: Any) -> np.ndarray:
        value = self.eval(node)
        if not isinstance(value, Scalar):
            raise ValueError("expected a scalar argument")
        return value.values

    def vector_arg(self, node: Any) -> Vector:
        value = self.eval(node)
        if not isinstance(value, Vector):
            raise ValueError("expected an instant vector argument")
        return value

    def string_arg(self, node: Any) -> str:
        value = self.eval(node)
        if not isinstance(value, String):
            raise ValueError("expected a string argument")
        return value.value

    def _elementwise(self, args: list[Any], compute: Callable[[np.ndarray], np.ndarray]) -> Vector:
        vector = self.vector_arg(args[0])
        with np.errstate(all="ignore"):
            return merge([(without_name(s.labels), compute(s.values), s.present) for s in vector.series])

    def _fn_round(self, args: list[Any]) -> Vector:
        to_nearest = self.scalar_arg(args[1]) if len(args) > 1 else np.ones(self.steps)
        with np.errstate(all="ignore"):
            inverse = 1.0 / to_nearest
        # Half rounds up (towards +Inf), not to even.
        return self._elementwise(args, lambda v: np.floor(v * inverse + 0.5) / inverse)

    def _fn_clamp_min(self, args: list[Any]) -> Vector:
        low = self.scalar_arg(args[1])
        return self._elementwise(args, lambda v: go_max(low, v))

    def _fn_clamp_max(self, args: list[Any]) -> Vector:
        high = self.scalar_arg(args[1])
        return self._elementwise(args, lambda v: go_min(high, v))

    def _fn_clamp(self, args: list[Any]) -> Vector:
        low, high = self.scalar_arg(args[1]), self.scalar_arg(args[2])
        vector = self.vector_arg(args[0])
        valid = ~(high < low)  # an empty range gives no output at that step
        return merge([(without_name(s.labels), go_max(low, go_min(high, s.values)), s.present & valid)
                      for s in vector.series])

    def _fn_sort(self, args: list[Any]) -> Vector:
        return self.vector_arg(args[0])  # order has no meaning in a range result

    _fn_sort_desc = _fn_sort

    def _fn_time(self, args: list[Any]) -> Scalar:
        return Scalar(self.grid_ms / 1000.0)

    def _fn_vector(self, args: list[Any]) -> Vector:
        return Vector([Series({}, self.scalar_arg(args[0]).copy(), np.ones(self.steps, dtype=bool))])

    def _fn_scalar(self, args: list[Any]) -> Scalar:
        vector = self.vector_arg(args[0])
        count = np.zeros(self.steps, dtype=np.int64)
        value = np.full(self.steps, np.nan)
        for s in vector.series:
            count += s.present
            value = np.where(s.present, s.values, value)
        return Scalar(np.where(count == 1, value, np.nan))

    def _fn_label_replace(self, args: list[Any]) -> Vector:
        vector = self.vector_arg(args[0])
        dst, replacement, src, regex = (self.string_arg(a) for a in args[1:5])
        pattern = go_regex(regex)
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", dst):
            raise ValueError(f"invalid destination label name in label_replace(): {dst}")
        out = []
        for s in vector.series:
            found = pattern.fullmatch(s.labels.get(src, ""))
            labels = dict(s.labels)
            if found is not None:
                value = go_expand(replacement, found)
                labels.pop(dst, None)
                if value:
                    labels[dst] = value
            out.append((labels, s.values, s.present))
        return merge(out)

    def _fn_histogram_quantile(self, args: list[Any]) -> Vector:
        q = self.scalar_arg(args[0])
        vector = self.vector_arg(args[1])
        groups: dict[tuple, tuple[dict[str, str], list[float], list[Series]]] = {}
        for s in vector.series:
            bound = go_parse_float(s.labels.get("le", ""))
            if bound is None:
                continue  # no or malformed bucket label: Prometheus skips the sample
            # Buckets belong together when all labels but le agree (the name included).
            key = label_key({k: v for k, v in s.labels.items() if k != "le"})
            group = groups.setdefault(
                key, ({k: v for k, v in s.labels.items() if k not in ("le", NAME)}, [], []))
            group[1].append(bound)
            group[2].append(s)
        out = []
        for labels, bounds, members in groups.values():
            order = np.argsort(np.asarray(bounds), kind="stable")
            upper = np.asarray(bounds)[order]
            counts = np.stack([members[i].values for i in order])
            present = np.stack([members[i].present for i in order])
            any_present = cast(np.ndarray, present.any(axis=0))  # a 2-D array reduced over one axis: an array
            result = np.full(self.steps, np.nan)
            columns = np.flatnonzero(any_present)
            if columns.size == 0:
                continue
            # Steps where the same buckets are present are computed together.
            patterns, inverse = np.unique(present[:, columns], axis=1, return_inverse=True)
            inverse = np.asarray(inverse).ravel()
            for p in range(patterns.shape[1]):
                rows = patterns[:, p]
                cols = columns[inverse == p]
                result[cols] = bucket_quantile(q[cols], upper[rows], counts[rows][:, cols])
            out.append((labels, result, any_present))
        return merge(out)

    def _range_function(self, name: str, args: list[Any]) -> Vector:
        matrix_index = 1 if name == "quantile_over_time" else 0
        selector = unparen(args[matrix_index])
        if is_node(selector, "SubqueryExpr"):
            raise UnsupportedQuery("subqueries (expr[range:step]) are not supported by the embedded evaluator")
        if not is_node(selector, "MatrixSelector"):
            raise ValueError(f"expected a range vector in call to function {name}()")
        q = self.scalar_arg(args[0]) if name == "quantile_over_time" else None
        vs = selector.vector_selector
        range_ms = ms(selector.range)
        found, offset = self.selected(vs)
        ref = self.grid_ms - offset
        compute = RANGE_FUNCTIONS[name]
        out = []
        for labels, ts, vals in found:
            if ts.size == 0:
                continue
            # The window is the closed interval [t - range, t] in Prometheus 2.42.
            lo = np.searchsorted(ts, ref - range_ms, side="left")
            hi = np.searchsorted(ts, ref, side="right")
            window = Window(ts, vals, lo, hi, hi - lo, ref, range_ms, q)
            values, present = compute(window)
            if present.any():
                # last_over_time acts like a lookback, so it keeps the metric name; the others drop it.
                out.append((labels if name == "last_over_time" else without_name(labels), values, present))
        return merge(out)
