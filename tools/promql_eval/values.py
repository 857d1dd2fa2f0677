"""The values a PromQL expression evaluates to over the grid (vectors of series, scalars, strings), and the refusal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SeriesTuple = tuple[dict[str, str], np.ndarray, np.ndarray]

NAME = "__name__"


class UnsupportedQuery(ValueError):
    """The query is valid PromQL but uses a construct this evaluator does not implement."""


@dataclass
class Series:
    labels: dict[str, str]
    values: np.ndarray  # float64 over the grid
    present: np.ndarray  # bool over the grid


@dataclass
class Vector:
    series: list[Series]


@dataclass
class Scalar:
    values: np.ndarray  # float64 over the grid; a scalar has a value at every step


@dataclass
class String:
    value: str


Value = Vector | Scalar | String  # what an expression evaluates to


def label_key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def render_labels(labels: dict[str, str]) -> str:
    name = labels.get(NAME, "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != NAME)
    return f"{name}{{{rest}}}"


def without_name(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != NAME}


def merge(items: list[tuple[dict[str, str], np.ndarray, np.ndarray]]) -> Vector:
    """Series keyed by label set, as Prometheus assembles a range result: one label set present
    twice at the same step is the error Prometheus raises; at different steps it is one series."""
    merged: dict[tuple, Series] = {}
    for labels, values, present in items:
        if not present.any():
            continue
        key = label_key(labels)
        seen = merged.get(key)
        if seen is None:
            merged[key] = Series(labels, values, present)
            continue
        if (seen.present & present).any():
            raise ValueError("vector cannot contain metrics with the same labelset")
        seen.values = np.where(present, values, seen.values)
        seen.present = seen.present | present
    return Vector([merged[k] for k in sorted(merged)])
