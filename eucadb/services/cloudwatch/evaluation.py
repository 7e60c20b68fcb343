"""Alarm evaluation: once a minute each alarm looks at its last EvaluationPeriods periods.

`decide` is pure (values in, state out) so the rules are unit-tested without a database; `evaluate_all`
does the I/O and records every state change in the alarm history. One alarm whose stored definition
cannot be evaluated is logged and counted, and the others are still evaluated.
"""
from __future__ import annotations

import json
import logging
import operator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import select

from eucadb.services.cloudwatch import history
from eucadb.services.cloudwatch.catalogue import LOCAL, SeriesKey
from eucadb.services.cloudwatch.tables import Alarm

log = logging.getLogger(__name__)
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge, "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt, "LessThanOrEqualToThreshold": operator.le}
# What evaluating an unusable stored definition raises: bad JSON (ValueError), a missing field or an
# unknown statistic (LookupError), a value of the wrong type (TypeError), Period 0 (ArithmeticError).
# Database and service failures are not among them: they concern every alarm and end the pass.
DEFINITION_ERRORS: tuple[type[Exception], ...] = (ValueError, LookupError, TypeError, ArithmeticError)


@dataclass(frozen=True)
class EvaluationPass:
    """What one pass did: how many alarms were evaluated, which could not be."""

    evaluated: int = 0
    failed: tuple[str, ...] = ()


def decide(values: list[float | None], compare: str, threshold: float, to_alarm: int, treat_missing: str,
           current: str) -> tuple[str, str]:
    """New state and reason from the newest EvaluationPeriods values (None = no data in that period)."""
    present = [v for v in values if v is not None]
    if not present:
        if treat_missing in ("missing",):
            return "INSUFFICIENT_DATA", "Insufficient data: no datapoints in the evaluation range"
        if treat_missing == "ignore":
            return current, "Missing data ignored"
    breaching = sum(1 for v in present if COMPARE[compare](v, threshold))
    if treat_missing == "breaching":
        breaching += len(values) - len(present)
    state = "ALARM" if breaching >= to_alarm else "OK"
    shown = ", ".join("missing" if v is None else repr(v) for v in values)
    return state, f"Threshold Crossed: {breaching} of {len(values)} datapoints [{shown}] breached {compare} {threshold}"


def change_state(cw, name: str, state: str, reason: str, data: str | None, force: bool = False) -> bool:
    """Set an alarm's state, recording a StateUpdate when it changes (or always when forced).

    False when the alarm does not exist."""
    now = cw.clock()
    with cw.pools.session(LOCAL) as s:
        row = s.get(Alarm, (cw.account, name))
        if row is None:
            return False
        old, old_reason = row.state, row.state_reason
        if old == state and not force:
            return True
        row.state, row.state_reason, row.state_reason_data, row.state_updated_at = state, reason, data, now
        history.stage(s, cw.account, name, now, "StateUpdate", f"Alarm updated from {old} to {state}",
                      {"version": "1.0", "oldState": {"stateValue": old, "stateReason": old_reason},
                       "newState": {"stateValue": state, "stateReason": reason}})
    history.deliver_soon(cw.pools)
    return True


def evaluate_alarm(cw, name: str, definition: str, current: str, now: datetime) -> None:
    from eucadb.services.cloudwatch.operations.metrics import series_statistics
    d = json.loads(definition)
    period, n = d["Period"], d["EvaluationPeriods"]
    end = datetime.fromtimestamp(int(now.timestamp()) // period * period, timezone.utc)
    start = end - timedelta(seconds=period * n)
    stat = d.get("Statistic") or d["ExtendedStatistic"]
    is_pct = "ExtendedStatistic" in d
    key = SeriesKey.of(d["Namespace"], d["MetricName"], d.get("Dimensions"))
    points = series_statistics(cw, key, start, end, period, d.get("Unit"),
                               [] if is_pct else [stat], [stat] if is_pct else [])
    by_ts = {p["Timestamp"]: (p.get("ExtendedStatistics", {}).get(stat) if is_pct else p[stat]) for p in points}
    values = [by_ts.get(start + timedelta(seconds=period * i)) for i in range(n)]
    state, reason = decide(values, d["ComparisonOperator"], d["Threshold"], d.get("DatapointsToAlarm", n),
                           d.get("TreatMissingData", "missing"), current)
    if state != current:
        change_state(cw, name, state, reason, json.dumps({"version": "1.0", "recentDatapoints": values}))


def evaluate_all(cw) -> EvaluationPass:
    """Evaluate every alarm once. Skipped (nothing evaluated) while the service is not enabled."""
    if not cw.is_enabled():
        return EvaluationPass()
    history.deliver(cw.pools)   # what requests staged while the remote was away
    now = cw.clock()
    with cw.pools.session(LOCAL) as s:
        alarms = [(r.account, r.name, r.definition, r.state) for r in s.scalars(select(Alarm))]
    failed = []
    for account, name, definition, current in alarms:
        try:   # each alarm against its own account's metrics
            evaluate_alarm(cw.for_account(account), name, definition, current, now)
        except DEFINITION_ERRORS as exc:
            log.warning("alarm %r of account %s not evaluated: its stored definition is unusable (%s: %s)",
                        name, account, type(exc).__name__, exc)
            failed.append(name)
    return EvaluationPass(len(alarms) - len(failed), tuple(failed))
