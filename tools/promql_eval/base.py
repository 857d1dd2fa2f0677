"""What the evaluator's mixins share: the state ``Evaluator.__init__`` sets, and the methods one mixin calls on another."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from tools.promql_eval.values import SeriesTuple, Value, Vector


class EvaluatorBase:
    """The base of the selector, function, aggregation and binary mixins. It declares, for the type
    checker, what ``Evaluator`` provides; at run time it adds nothing (annotations only)."""

    raw: Sequence[SeriesTuple]  # the stored series as given
    grid: np.ndarray  # evaluation times, unix seconds
    grid_ms: np.ndarray  # the same in integer milliseconds
    steps: int  # the grid's size
    lookback_ms: int
    converted: dict[int, SeriesTuple]  # stored series already prepared, by index into raw

    if TYPE_CHECKING:  # defined by Evaluator, FunctionMixin and SelectorMixin respectively
        def eval(self, node: Any) -> Value: ...

        def scalar_arg(self, node: Any) -> np.ndarray: ...

        def vector_arg(self, node: Any) -> Vector: ...

        def selected(self, selector: Any) -> tuple[list[SeriesTuple], int]: ...
