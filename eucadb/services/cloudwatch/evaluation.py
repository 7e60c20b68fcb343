"""Alarm evaluation: once a minute each alarm looks at its evaluation range (rules.py, AWS's rules).

`rules.decide` is pure (values in, state out) so the rules are unit-tested without a database;
`evaluate_all` does the I/O, records every state change in the alarm history and stages the new
state's actions (actions.py) in the same local transaction. One alarm whose stored definition
cannot be evaluated is logged (once per distinct error and hour) and counted, and the others are
still evaluated. Only the leader evaluates: with several servers, one transition, one action.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import select

from eucadb.services.cloudwatch import actions, alarm_math, arns, history
from eucadb.services.cloudwatch.catalogue import LOCAL, SeriesKey
from eucadb.services.cloudwatch.rules import COMPARE, Point, Rule, decide, range_length
from eucadb.services.cloudwatch.shapes import as_utc
from eucadb.services.cloudwatch.stats import percentile_of
from eucadb.services.cloudwatch.tables import Alarm

log = logging.getLogger(__name__)
# What evaluating an unusable stored definition raises: bad JSON (ValueError), a missing field or an
# unknown statistic (LookupError), a value of the wrong type (TypeError), Period 0 (ArithmeticError).
# Database and service failures are not among them: they concern every alarm and end the pass.
DEFINITION_ERRORS: tuple[type[Exception], ...] = (ValueError, LookupError, TypeError, ArithmeticError)


@dataclass(frozen=True)
class EvaluationPass:
    """What one pass did: how many alarms were evaluated, which could not be."""

    evaluated: int = 0
    failed: tuple[str, ...] = ()


@dataclass
class OnceLog:
    """Warn about one alarm once per distinct message and `every` seconds, not once a minute."""

    every: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, tuple[str, float]] = field(default_factory=dict)

    def warn(self, name: str, message: str) -> None:
        last = self._seen.get(name)
        now = self.clock()
        if last is None or last[0] != message or now - last[1] >= self.every:
            log.warning("alarm %r not evaluated: %s", name, message)
            self._seen[name] = (message, now)

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)


BROKEN = OnceLog()


def _definition(text: str | None) -> dict:
    try:
        d = json.loads(text or "{}")
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def change_state(cw, name: str, state: str, reason: str, data: str | None, force: bool = False,
                 metric_value: float | None = None) -> bool:
    """Set an alarm's state, recording a StateUpdate when it changes (or always when forced) and, on
    a change, staging the new state's actions in the same transaction. False when the alarm does
    not exist. A composite whose ActionsSuppressor suppresses it now stages them held
    (suppression.py): recorded with the change, carried out only when the suppression ends."""
    from eucadb.services.cloudwatch import suppression   # builds on composite.py, which imports this
    now = cw.clock()
    with cw.pools.session(LOCAL) as s:
        row = s.get(Alarm, (cw.account, name))
        if row is None:
            return False
        old, old_reason = row.state, row.state_reason
        if old == state and not force:
            return True
        d = _definition(row.definition)
        held = suppression.status(cw, s, d, state, now, now) if d.get("AlarmRule") else None
        row.state, row.state_reason, row.state_reason_data, row.state_updated_at = state, reason, data, now
        history.stage(s, cw.account, name, now, "StateUpdate", f"Alarm updated from {old} to {state}",
                      {"version": "1.0", "oldState": {"stateValue": old, "stateReason": old_reason},
                       "newState": {"stateValue": state, "stateReason": reason},
                       **({"actionsSuppressedBy": held.by, "actionsSuppressedReason": held.reason} if held else {})})
        if old != state:
            if held is None and d.get("ActionsSuppressor"):
                suppression.drop(suppression.held_rows(s, cw.account, name), now)   # superseded
            actions.stage(s, cw.account, name, d, actions.Context(
                definition=d, alarm_arn=arns.alarm_arn(cw.region, cw.account, name), region=cw.region,
                old=old, new=state, reason=reason, changed_at=now.isoformat(),
                configured_at=as_utc(row.updated_at or now).isoformat(), metric_value=metric_value),
                held=held is not None)
    history.deliver_soon(cw.pools)
    return True


def rule_of(d: dict) -> Rule:
    n = d["EvaluationPeriods"]
    if d["ComparisonOperator"] not in COMPARE:
        raise LookupError(f"comparison operator {d['ComparisonOperator']!r} needs an anomaly band")
    pct = percentile_of(d["ExtendedStatistic"]) if "ExtendedStatistic" in d else None
    if "ExtendedStatistic" in d and pct is None:
        raise LookupError(f"unknown extended statistic {d['ExtendedStatistic']!r}")
    return Rule(d["ComparisonOperator"], float(d["Threshold"]), n, d.get("DatapointsToAlarm", n),
                d.get("TreatMissingData", "missing"), pct, d.get("EvaluateLowSampleCountPercentile") or "evaluate")


def evaluate_alarm(cw, name: str, definition: str, current: str, now: datetime) -> None:
    d = json.loads(definition)
    span = range_length(d["EvaluationPeriods"])
    if "Metrics" in d:   # metric math: the engine computes the watched values (alarm_math.py)
        values, d = alarm_math.inputs(cw, {**d, "EvaluationPeriods": span}, now)
        d = {**d, "EvaluationPeriods": json.loads(definition)["EvaluationPeriods"]}
        rule = rule_of(d)
        window = [None if v is None else Point(float(v)) for v in values]
        query: dict = {}
    else:
        rule = rule_of(d)
        window, query = _metric_window(cw, d, rule, span, now)
    outcome = decide(rule, window, current)
    if outcome.state == current:
        return
    recent = [v for v in outcome.evaluated if v is not None]
    data = {"version": "1.0", "queryDate": now.isoformat(), **query, "recentDatapoints": recent,
            "threshold": rule.threshold}
    change_state(cw, name, outcome.state, outcome.reason, json.dumps(data),
                 metric_value=recent[-1] if recent else None)


def _metric_window(cw, d: dict, rule: Rule, span: int, now: datetime) -> tuple[list[Point | None], dict]:
    """A single-metric alarm's evaluation range, oldest first (None: no datapoint that period), and
    the query it came from (for the history's data)."""
    from eucadb.services.cloudwatch.operations.metrics import series_statistics
    period = d["Period"]
    end = datetime.fromtimestamp(int(now.timestamp()) // period * period, timezone.utc)
    start = end - timedelta(seconds=period * span)
    stat = d.get("Statistic") or d["ExtendedStatistic"]
    is_pct = rule.percentile is not None
    key = SeriesKey.of(d["Namespace"], d["MetricName"], d.get("Dimensions"))
    basic = list(dict.fromkeys(["SampleCount"] + ([] if is_pct else [stat])))
    points = series_statistics(cw, key, start, end, period, d.get("Unit"), basic, [stat] if is_pct else [])
    by_ts: dict[datetime, Point] = {}
    for p in points:
        value = p.get("ExtendedStatistics", {}).get(stat) if is_pct else p[stat]
        if value is not None:
            by_ts[p["Timestamp"]] = Point(float(value), float(p["SampleCount"]))
    window = [by_ts.get(start + timedelta(seconds=period * i)) for i in range(span)]
    return window, {"startDate": start.isoformat(), "statistic": stat, "period": period}


def evaluate_all(cw) -> EvaluationPass:
    """Evaluate every alarm once. Skipped (nothing evaluated) while the service is not enabled or
    this server does not lead."""
    if not cw.is_enabled() or not cw.is_leader():
        return EvaluationPass()
    history.deliver(cw.pools)   # what requests staged while the remote was away
    now = cw.clock()
    from eucadb.services.cloudwatch import composite, suppression   # both build on change_state above
    with cw.pools.session(LOCAL) as s:
        alarms = [(r.account, r.name, r.definition, r.state) for r in s.scalars(select(Alarm))
                  if not composite.is_composite(r.definition)]
    failed = []
    for account, name, definition, current in alarms:
        try:   # each alarm against its own account's metrics
            evaluate_alarm(cw.for_account(account), name, definition, current, now)
            BROKEN.forget(f"{account}/{name}")
        except DEFINITION_ERRORS as exc:
            BROKEN.warn(f"{account}/{name}", f"its stored definition is unusable ({type(exc).__name__}: {exc})")
            failed.append(name)
    evaluated, broken = composite.evaluate_all(cw)   # after the metric alarms, children first
    suppression.release(cw)   # held composite actions whose suppression has ended
    return EvaluationPass(len(alarms) - len(failed) + evaluated, tuple(failed + broken))
