"""Binary operators between scalars and instant vectors: arithmetic, comparisons and set operations, with vector matching."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import promql_parser as pp

from tools.promql_eval.base import EvaluatorBase
from tools.promql_eval.gomath import ARITHMETIC, COMPARISON, SET_OPERATORS, arith, compare
from tools.promql_eval.values import NAME, Scalar, Series, UnsupportedQuery, Value, Vector, merge, render_labels, without_name


class BinaryMixin(EvaluatorBase):
    """The evaluator's binary expressions."""

    def binary(self, node: Any) -> Value:
        op = str(node.op)
        modifier = node.modifier
        return_bool = bool(modifier is not None and modifier.return_bool)
        card = modifier.card if modifier is not None else pp.VectorMatchCardinality.OneToOne
        if card in (pp.VectorMatchCardinality.ManyToOne, pp.VectorMatchCardinality.OneToMany):
            raise UnsupportedQuery("group_left/group_right (many-to-one matching) is not supported by the embedded evaluator")
        fill = modifier.fill_values if modifier is not None else None
        if fill is not None and (fill.lhs is not None or fill.rhs is not None):
            raise UnsupportedQuery("fill modifiers on binary operators are not PromQL that Prometheus 2.42 accepts")
        if op not in ARITHMETIC | COMPARISON | SET_OPERATORS:
            raise UnsupportedQuery(f"the binary operator {op!r} is not supported")
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            if op in COMPARISON:
                return Scalar(compare(op, lhs.values, rhs.values).astype(float))
            return Scalar(arith(op, lhs.values, rhs.values))
        if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
            return self._vector_scalar(op, lhs, rhs.values, False, return_bool)
        if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
            return self._vector_scalar(op, rhs, lhs.values, True, return_bool)
        if isinstance(lhs, Vector) and isinstance(rhs, Vector):
            matching = modifier.matching if modifier is not None else None
            on = matching is not None and matching.type == pp.LabelModifierType.Include
            names = set(matching.labels) if matching is not None else set()
            signature = _signature(on, names)
            if op in SET_OPERATORS:
                return self._set_operation(op, lhs, rhs, signature)
            return self._vector_vector(op, lhs, rhs, signature, on, names, return_bool)
        raise ValueError("binary expression must contain only scalar and instant vector types")

    def _vector_scalar(self, op, vector: Vector, scalar: np.ndarray, swapped: bool, return_bool: bool) -> Vector:
        out = []
        for s in vector.series:
            left, right = (scalar, s.values) if swapped else (s.values, scalar)
            if op in COMPARISON:
                keep = compare(op, left, right)
                if return_bool:
                    out.append((without_name(s.labels), keep.astype(float), s.present))
                else:  # the vector's sample survives, whichever side it was on
                    out.append((s.labels, s.values, s.present & keep))
            else:
                out.append((without_name(s.labels), arith(op, left, right), s.present))
        return merge(out)

    def _vector_vector(self, op, lhs: Vector, rhs: Vector, signature, on: bool, names: set[str],
                       return_bool: bool) -> Vector:
        right: dict[tuple, list[Series]] = {}
        for s in rhs.series:
            right.setdefault(signature(s.labels), []).append(s)
        # At a step where the left side is empty Prometheus returns before looking at the right,
        # so duplicates there are only an error where the left has samples.
        left_present = np.zeros(self.steps, dtype=bool)
        for s in lhs.series:
            left_present |= s.present
        joined: dict[tuple, Series] = {}
        for sig, members in right.items():
            if len(members) > 1:
                twice = (np.sum([m.present for m in members], axis=0) > 1) & left_present
                if twice.any():
                    step = int(np.argmax(twice))
                    clash = [m for m in members if m.present[step]][:2]
                    raise ValueError(
                        f"found duplicate series for the match group {render_labels(dict(sig))} on the right "
                        f"hand-side of the operation: [{render_labels(clash[0].labels)}, {render_labels(clash[1].labels)}];"
                        "many-to-many matching not allowed: matching labels must be unique on one side")
            values = np.full(self.steps, np.nan)
            present = np.zeros(self.steps, dtype=bool)
            for m in members:
                values = np.where(m.present, m.values, values)
                present |= m.present
            joined[sig] = Series({}, values, present)
        left: dict[tuple, list[Series]] = {}
        for s in lhs.series:
            left.setdefault(signature(s.labels), []).append(s)
        out = []
        for sig, members in left.items():
            match = joined.get(sig)
            if match is None:
                continue
            kept = np.zeros(self.steps, dtype=np.int64)
            for s in members:
                both = s.present & match.present
                if not both.any():
                    continue
                labels = dict(s.labels)
                if op in ARITHMETIC:
                    values, keep = arith(op, s.values, match.values), both
                    labels.pop(NAME, None)
                else:
                    hit = compare(op, s.values, match.values)
                    if return_bool:
                        values, keep = hit.astype(float), both
                    else:
                        values, keep = s.values, both & hit
                if on:
                    labels = {k: v for k, v in labels.items() if k in names}
                else:
                    labels = {k: v for k, v in labels.items() if k not in names}
                if return_bool:
                    labels.pop(NAME, None)
                kept += keep
                out.append((labels, values, keep))
            if (kept > 1).any():
                raise ValueError("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
        return merge(out)

    def _set_operation(self, op, lhs: Vector, rhs: Vector, signature) -> Vector:
        def presence(vector: Vector) -> dict[tuple, np.ndarray]:
            seen: dict[tuple, np.ndarray] = {}
            for s in vector.series:
                sig = signature(s.labels)
                seen[sig] = seen.get(sig, np.zeros(self.steps, dtype=bool)) | s.present
            return seen

        nothing = np.zeros(self.steps, dtype=bool)
        if op == "and":
            right = presence(rhs)
            return merge([(s.labels, s.values, s.present & right.get(signature(s.labels), nothing))
                          for s in lhs.series])
        if op == "unless":
            right = presence(rhs)
            return merge([(s.labels, s.values, s.present & ~right.get(signature(s.labels), nothing))
                          for s in lhs.series])
        left = presence(lhs)
        return merge([(s.labels, s.values, s.present) for s in lhs.series]
                     + [(s.labels, s.values, s.present & ~left.get(signature(s.labels), nothing))
                        for s in rhs.series])


def _signature(on: bool, names: set[str]) -> Callable[[dict[str, str]], tuple]:
    """The labels two series are matched on: on(...) names them; otherwise all but the ignored
    ones and the metric name."""
    if on:
        return lambda labels: tuple(sorted((k, v) for k, v in labels.items() if k in names))
    return lambda labels: tuple(sorted((k, v) for k, v in labels.items() if k not in names and k != NAME))
