"""Result labels: an expression's Label (or its Id), array members' labels, and AWS's dynamic
labels — ${LABEL}, ${AVG}, ${MIN}, ${MAX}, ${SUM}, ${FIRST}, ${LAST}, ${DATAPOINT_COUNT} and
${PROP('MetricName'|'Namespace'|'Period'|'Stat'|'Dim.<name>')} (graph-dynamic-labels.html).

Members of an array result are labelled "Expression-Label Metric-Label", or only the metric's label
when the expression has none (using-metric-math.html, step 5). Numbers are shown with at most
two decimals, trailing zeros dropped (AWS's console formatting is not specified).
"""
from __future__ import annotations

import math
import re
from typing import Callable

from eucadb.services.cloudwatch.math.series import Series

_DYNAMIC = re.compile(r"\$\{(?:(?P<name>[A-Z_]+)|PROP\('(?P<prop>[^']+)'\))\}")


def _number(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if math.isfinite(v) else ""


STATS: dict[str, Callable[[list[float]], float | None]] = {
    "AVG": lambda v: math.fsum(v) / len(v) if v else None, "MIN": lambda v: min(v) if v else None,
    "MAX": lambda v: max(v) if v else None, "SUM": lambda v: math.fsum(v) if v else None,
    "FIRST": lambda v: v[0] if v else None, "LAST": lambda v: v[-1] if v else None,
    "DATAPOINT_COUNT": lambda v: float(len(v)),
}


def render(template: str, series: Series, base: str) -> str:
    """The template with its ${...} placeholders filled in for this series (unknown ones kept)."""
    values = series.values()

    def one(m: re.Match) -> str:
        if m.group("prop"):
            return series.props.get(m.group("prop"), "")
        name = m.group("name")
        if name == "LABEL":
            return base
        if name in STATS:
            v = STATS[name](values)
            return "" if v is None else _number(v)
        return m.group()
    return _DYNAMIC.sub(one, template)


def label_for(given: str | None, fallback: str, series: Series, in_array: bool) -> str:
    """The label of one result series of a query."""
    if given is None or given == "":
        return series.label if in_array and series.label else fallback
    if in_array and "${LABEL}" not in given:
        return f"{render(given, series, series.label)} {series.label}".strip()
    return render(given, series, series.label or fallback)
