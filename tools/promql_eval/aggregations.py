"""Aggregations (sum, avg, min, max, count, group, stddev, stdvar, quantile, topk, bottomk) over groups of series."""

from __future__ import annotations

from typing import Any

import numpy as np
import promql_parser as pp

from tools.promql_eval.base import EvaluatorBase
from tools.promql_eval.gomath import go_format
from tools.promql_eval.quantile import quantile_rows
from tools.promql_eval.range_functions import mean_stuck
from tools.promql_eval.values import NAME, Scalar, Series, UnsupportedQuery, Vector, label_key, merge

# Each folds the group's series in order, step by step, the way Prometheus folds a group's samples.


def _fold_sum(members, _param, steps):
    total = np.full(steps, np.nan)
    seen = np.zeros(steps, dtype=bool)
    with np.errstate(all="ignore"):
        for m in members:
            total = np.where(m.present, np.where(seen, total + m.values, m.values), total)
            seen |= m.present
    return total, seen


def _fold_avg(members, _param, steps):
    mean = np.full(steps, np.nan)
    count = np.zeros(steps)
    with np.errstate(all="ignore"):
        for m in members:
            v, p = m.values, m.present
            first = p & (count == 0)
            count = count + p
            update = p & ~first & ~mean_stuck(mean, v)
            mean = np.where(first, v, np.where(update, mean + (v / count - mean / count), mean))
    return mean, count > 0


def _fold_extreme(larger: bool):
    def fold(members, _param, steps):
        best = np.full(steps, np.nan)
        seen = np.zeros(steps, dtype=bool)
        with np.errstate(invalid="ignore"):
            for m in members:
                better = (best < m.values) if larger else (best > m.values)
                take = m.present & (~seen | better | np.isnan(best))
                best = np.where(take, m.values, best)
                seen |= m.present
        return best, seen
    return fold


def _fold_count(members, _param, steps):
    count = np.sum([m.present for m in members], axis=0).astype(float)
    return count, count > 0


def _fold_group(members, _param, steps):
    seen = np.any([m.present for m in members], axis=0)
    return np.ones(steps), seen


def _fold_variance(root: bool):
    def fold(members, _param, steps):
        # Welford's online update, as Prometheus: exactly 0 for identical values.
        mean = np.zeros(steps)
        total = np.zeros(steps)
        count = np.zeros(steps)
        with np.errstate(all="ignore"):
            for m in members:
                v, p = m.values, m.present
                first = p & (count == 0)
                count = count + p
                delta = v - mean
                new_mean = mean + delta / count
                new_total = total + delta * (v - new_mean)
                mean = np.where(first, v, np.where(p, new_mean, mean))
                total = np.where(first, 0.0, np.where(p, new_total, total))
            variance = total / count
        return (np.sqrt(variance) if root else variance), count > 0
    return fold


def _fold_quantile(members, param, steps):
    values = np.stack([m.values for m in members]).T
    present = np.stack([m.present for m in members]).T
    seen = present.any(axis=1)
    return quantile_rows(param, values, present), seen


AGGREGATIONS = {
    "sum": _fold_sum,
    "avg": _fold_avg,
    "min": _fold_extreme(larger=False),
    "max": _fold_extreme(larger=True),
    "count": _fold_count,
    "group": _fold_group,
    "stddev": _fold_variance(root=True),
    "stdvar": _fold_variance(root=False),
    "quantile": _fold_quantile,
    "topk": None,
    "bottomk": None,
}


class AggregationMixin(EvaluatorBase):
    """The evaluator's aggregation expressions."""

    def aggregate(self, node: Any) -> Vector:
        op = str(node.op)
        if op not in AGGREGATIONS:
            raise UnsupportedQuery(f"the aggregation {op}() is not supported by the embedded evaluator")
        param = None
        if node.param is not None:
            value = self.eval(node.param)
            if not isinstance(value, Scalar):
                raise UnsupportedQuery(f"{op}() with a non-numeric parameter is not supported")
            param = value.values
        vector = self.vector_arg(node.expr)
        modifier = node.modifier
        grouping = set(modifier.labels) if modifier is not None else set()
        without = modifier is not None and modifier.type == pp.AggModifierType.Without

        def group_labels(labels: dict[str, str]) -> dict[str, str]:
            if without:
                return {k: v for k, v in labels.items() if k not in grouping and k != NAME}
            return {k: v for k, v in labels.items() if k in grouping}

        groups: dict[tuple, tuple[dict[str, str], list[Series]]] = {}
        for s in vector.series:
            labels = group_labels(s.labels)
            groups.setdefault(label_key(labels), (labels, []))[1].append(s)
        if op in ("topk", "bottomk"):
            if param is None:  # not reached: the parser requires topk's and bottomk's parameter
                raise ValueError(f"{op}() needs a parameter")
            return self._top(op, param, groups)
        out = []
        for labels, members in groups.values():
            values, present = AGGREGATIONS[op](members, param, self.steps)
            out.append((labels, values, present))
        return merge(out)

    def _top(self, op: str, param: np.ndarray, groups) -> Vector:
        if not np.all(np.isfinite(param)) or np.any(np.abs(param) >= 2.0**63):
            bad = param[~np.isfinite(param) | (np.abs(param) >= 2.0**63)][0]
            raise ValueError(f"Scalar value {go_format(bad)} overflows int64")
        k = np.trunc(param).astype(np.int64)
        out = []
        for _, members in groups.values():
            values = np.stack([m.values for m in members])
            present = np.stack([m.present for m in members])
            # NaN is the least preferred for both; ties keep the earlier series.
            rank_value = -values if op == "topk" else values
            nan_class = np.where(present, np.isnan(values).astype(np.int8), 2)
            order_index = np.broadcast_to(np.arange(len(members))[:, None], values.shape)
            order = np.lexsort((order_index, np.nan_to_num(rank_value, nan=0.0), nan_class), axis=0)
            position = np.empty_like(order)
            np.put_along_axis(position, order, np.arange(len(members))[:, None].repeat(self.steps, axis=1), axis=0)
            chosen = present & (position < k[None, :])
            for row, member in enumerate(members):
                out.append((member.labels, member.values, chosen[row]))
        return merge(out)
