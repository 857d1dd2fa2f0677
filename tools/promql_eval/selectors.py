"""Selectors: the stored series that label matchers pick, and their latest sample at each step."""

from __future__ import annotations

from typing import Callable

import numpy as np
import promql_parser as pp

from tools.promql_eval.base import EvaluatorBase
from tools.promql_eval.gomath import go_regex
from tools.promql_eval.syntax import ms
from tools.promql_eval.values import NAME, UnsupportedQuery, Vector, merge


class SelectorMixin(EvaluatorBase):
    """The evaluator's selectors; ``converted`` caches the stored series already prepared."""

    def _prepared(self, index: int) -> tuple[dict[str, str], np.ndarray, np.ndarray]:
        """A stored series with millisecond timestamps, converted when a selector first picks it
        (a file may hold far more series than a query reads)."""
        done = self.converted.get(index)
        if done is None:
            labels, stamps, values = self.raw[index]
            ts = np.round(np.asarray(stamps, dtype=float) * 1000.0).astype(np.int64)
            vals = np.asarray(values, dtype=float)
            if ts.size > 1 and np.any(np.diff(ts) < 0):
                order = np.argsort(ts, kind="stable")
                ts, vals = ts[order], vals[order]
            done = self.converted[index] = (dict(labels), ts, vals)
        return done

    def selected(self, selector) -> tuple[list[tuple[dict[str, str], np.ndarray, np.ndarray]], int]:
        """The stored series a selector picks, and its offset in milliseconds."""
        if selector.at is not None:
            raise UnsupportedQuery("the @ modifier is not supported by the embedded evaluator")
        matchers = selector.matchers
        if matchers.or_matchers:
            raise UnsupportedQuery("'or' between label matchers is not PromQL that Prometheus 2.42 accepts")
        tests: list[Callable[[dict[str, str]], bool]] = []
        name = selector.name
        if name:
            tests.append(lambda labels: labels.get(NAME, "") == name)
        for matcher in matchers.matchers:
            tests.append(self._matcher(matcher))
        found = [self._prepared(i) for i, item in enumerate(self.raw) if all(test(item[0]) for test in tests)]
        return found, ms(selector.offset)

    @staticmethod
    def _matcher(matcher) -> Callable[[dict[str, str]], bool]:
        label, value, op = matcher.name, matcher.value, matcher.op
        if op == pp.MatchOp.Equal:
            return lambda labels: labels.get(label, "") == value
        if op == pp.MatchOp.NotEqual:
            return lambda labels: labels.get(label, "") != value
        pattern = go_regex(value)
        # Prometheus anchors label regexes at both ends; fullmatch does the same.
        if op == pp.MatchOp.Re:
            return lambda labels: pattern.fullmatch(labels.get(label, "")) is not None
        return lambda labels: pattern.fullmatch(labels.get(label, "")) is None

    def instant_selector(self, selector) -> Vector:
        found, offset = self.selected(selector)
        ref = self.grid_ms - offset
        out = []
        for labels, ts, vals in found:
            if ts.size == 0:
                continue
            index = np.searchsorted(ts, ref, side="right") - 1
            ok = index >= 0
            index = np.maximum(index, 0)
            # The latest sample at or before the step, at most the lookback old (inclusive in 2.42).
            ok &= (ref - ts[index]) <= self.lookback_ms
            if ok.any():
                out.append((labels, np.where(ok, vals[index], np.nan), ok))
        return merge(out)
