"""Composite alarms: the alarms a rule names, the dependency graph, and their evaluation pass.

Composite alarms live in cw_alarms beside the metric alarms (same name space, as in AWS, where a
name is unique within the Region); what tells them apart is their definition's AlarmRule. Their
state is only ever ALARM (the rule is true) or OK, after the INSUFFICIENT_DATA of creation ("For a
composite alarm, this initial time after creation is the only time that the alarm can be in
INSUFFICIENT_DATA state", PutCompositeAlarm, model).

Why evaluate in dependency order: a composite that names another composite must see that one's
state of this pass, so composites are evaluated children first, after all metric alarms.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import select

from eucadb.services.cloudwatch import alarm_rule, arns
from eucadb.services.cloudwatch.catalogue import LOCAL
from eucadb.services.cloudwatch.errors import ApiError
from eucadb.services.cloudwatch.evaluation import BROKEN, DEFINITION_ERRORS, change_state
from eucadb.services.cloudwatch.shapes import as_utc
from eucadb.services.cloudwatch.tables import Alarm

# What a composite definition holds (PutCompositeAlarmInput members but Tags, which live in cw_tags)
FIELDS = ("AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
          "InsufficientDataActions", "AlarmRule", "ActionsSuppressor", "ActionsSuppressorWaitPeriod",
          "ActionsSuppressorExtensionPeriod", "ActionConfiguration")
# json.dumps writes a top-level key as "AlarmRule": and escapes any quote inside a string value,
# so this text occurs in a stored definition only when it is a composite's.
MARK = '"AlarmRule":'


def is_composite(definition: str | None) -> bool:
    return MARK in (definition or "")


def composite_sql():
    """The SQL condition of a composite alarm row (see MARK)."""
    return Alarm.definition.contains(MARK, autoescape=True)


def resolve(cw, ref: str) -> str:
    """The alarm name a rule reference means: an ARN of this service's alarm is its name; anything
    else is taken as a name (an ARN of another account or Region names no alarm here)."""
    res = arns.owned(ref, cw.region, cw.account) if ref.startswith("arn:") else None
    return res.name if res is not None and res.kind == "alarm" else ref


def children(cw, rule: alarm_rule.Node) -> list[str]:
    return list(dict.fromkeys(resolve(cw, r) for r in alarm_rule.references(rule)))


def graph(cw, rows: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Composite name → the alarm names its rule references; rows are (name, definition).
    A stored rule that no longer parses references nothing (the evaluator reports it)."""
    out: dict[str, list[str]] = {}
    for name, definition in rows:
        try:
            out[name] = children(cw, alarm_rule.parse(json.loads(definition)["AlarmRule"]))
        except (ApiError, *DEFINITION_ERRORS):
            out[name] = []
    return out


def path_to(edges: dict[str, list[str]], start: str, goal: str) -> list[str] | None:
    """A chain of references start → … → goal through composites, or None (depth-first)."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for child in edges.get(node, ()):
            if child == goal:
                return path + [child]
            if child not in seen:
                seen.add(child)
                stack.append((child, path + [child]))
    return None


def order(edges: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """Composites children first (Kahn's algorithm), and those on or behind a cycle, which are
    never evaluated ("the evaluation of composite alarms stops if CloudWatch detects a cycle in
    the evaluation path", PutCompositeAlarm, model)."""
    waiting = {n: {c for c in kids if c in edges} for n, kids in edges.items()}
    parents: dict[str, list[str]] = {}
    for n, kids in waiting.items():
        for c in kids:
            parents.setdefault(c, []).append(n)
    ready = sorted(n for n, kids in waiting.items() if not kids)
    done: list[str] = []
    while ready:
        n = ready.pop()
        done.append(n)
        del waiting[n]
        for p in parents.get(n, ()):
            waiting[p].discard(n)
            if not waiting[p]:
                ready.append(p)
    return done, sorted(waiting)


def evaluation_order(cw, definitions: dict[str, str]) -> tuple[list[str], list[str]]:
    """Children first, and a composite's ActionsSuppressor (when it is a composite) before it, so
    the suppression a transition sees is of this pass; when the suppressors alone would make a
    loop, the rules alone order the pass (a rule cycle stays a cycle)."""
    edges = graph(cw, definitions.items())
    with_suppressors = {n: kids + [resolve(cw, s)] if (s := json.loads(definitions[n]).get("ActionsSuppressor"))
                        else kids for n, kids in edges.items()}
    ordered, cyclic = order(with_suppressors)
    return (ordered, cyclic) if not cyclic else order(edges)


@dataclass
class Known:
    state: str
    updated_at: datetime


def _reason(cw, kids: list[str], known: dict[str, Known], new: str) -> tuple[str, dict]:
    """StateReason and StateReasonData as AWS writes them for a composite: the child whose change
    triggered it ("<arn> transitioned to ALARM at …") and {"triggeringAlarms": [...]}."""
    present = [k for k in kids if k in known]
    if not present:
        return f"Alarm rule evaluated to {new}", {"triggeringAlarms": []}
    newest = max(present, key=lambda k: as_utc(known[k].updated_at))
    when = as_utc(known[newest].updated_at)
    arn = arns.alarm_arn(cw.region, cw.account, newest)
    text = f"{arn} transitioned to {known[newest].state} at {when.strftime('%A %d %B, %Y %H:%M:%S')} UTC"
    return text, {"triggeringAlarms": [{"arn": arn, "state": {"value": known[newest].state,
                                                              "timestamp": when.isoformat()}}]}


def evaluate_all(cw) -> tuple[int, list[str]]:
    """One pass over the composites (after the metric alarms), account by account: a rule names
    only its own account's alarms. How many were evaluated and which could not be (a cycle stored
    by hand, a rule that no longer parses)."""
    with cw.pools.session(LOCAL) as s:
        rows = [(r.account, r.name, r.definition, r.state, r.state_updated_at) for r in s.scalars(select(Alarm))]
    accounts: dict[str, list[tuple[str, str, str, datetime]]] = {}
    for account, *rest in rows:
        accounts.setdefault(account, []).append(tuple(rest))
    evaluated, failed = 0, []
    for account, alarms in sorted(accounts.items()):
        n, broken = _evaluate_account(cw.for_account(account), alarms)
        evaluated += n
        failed += broken
    return evaluated, failed


def _evaluate_account(cw, rows: list[tuple[str, str, str, datetime]]) -> tuple[int, list[str]]:
    known = {name: Known(state, updated) for name, _, state, updated in rows}
    definitions = {name: d for name, d, _, _ in rows if is_composite(d)}
    ordered, cyclic = evaluation_order(cw, definitions)
    for name in cyclic:
        BROKEN.warn(f"{cw.account}/{name}", "its AlarmRule is part of a cycle of composite alarms")
    failed = list(cyclic)
    for name in ordered:
        try:
            d = json.loads(definitions[name])
            rule = alarm_rule.parse(d["AlarmRule"])
        except (ApiError, *DEFINITION_ERRORS) as exc:
            BROKEN.warn(f"{cw.account}/{name}", f"its stored AlarmRule is unusable ({exc})")
            failed.append(name)
            continue
        kids = children(cw, rule)
        value = alarm_rule.evaluate(rule, lambda ref: getattr(known.get(resolve(cw, ref)), "state", None))
        new = "ALARM" if value else "OK"
        if new != known[name].state:
            reason, data = _reason(cw, kids, known, new)
            change_state(cw, name, new, reason, json.dumps(data))   # held while suppressed (suppression.py)
            known[name] = Known(new, cw.clock())
        BROKEN.forget(f"{cw.account}/{name}")
    return len(ordered) - (len(failed) - len(cyclic)), failed
