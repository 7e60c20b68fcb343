"""PutCompositeAlarm, and what DescribeAlarms and DeleteAlarms need to know of composite alarms.

Expectations and their sources: botocore's model (PutCompositeAlarmInput, CompositeAlarm,
DescribeAlarmsInput) and AWS answers quoted in public issues, named where they are used.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from eucadb.services.cloudwatch import action_arns, alarm_rule, arns, composite, history, limits, suppression, tags
from eucadb.services.cloudwatch.catalogue import LOCAL
from eucadb.services.cloudwatch.errors import ApiError, invalid, limit
from eucadb.services.cloudwatch.service import CloudWatch
from eucadb.services.cloudwatch.tables import Alarm



def _check(p: dict, region: str) -> dict:
    limits.require(p, "AlarmName", "AlarmRule")
    limits.check_length("AlarmName", p["AlarmName"], 1, 255)
    limits.check_length("AlarmDescription", p.get("AlarmDescription", ""), 0, 1024)
    if p.get("ActionsSuppressor") is not None:
        limits.check_length("ActionsSuppressor", p["ActionsSuppressor"], 1, 1600)
    for member in ("ActionsSuppressorWaitPeriod", "ActionsSuppressorExtensionPeriod"):
        if p.get(member) is not None and p[member] < 0:
            raise invalid(f"The parameter {member} must be a number of seconds, 0 or more.")
    action_arns.check(p, region)
    return {k: p[k] for k in composite.FIELDS if p.get(k) is not None}


def _edges(cw: CloudWatch, s: Session) -> dict[str, list[str]]:
    rows = s.execute(select(Alarm.name, Alarm.definition).where(Alarm.account == cw.account, composite.composite_sql())).all()
    return composite.graph(cw, rows)


def _check_references(cw: CloudWatch, s: Session, name: str, rule: alarm_rule.Node, definition: dict) -> None:
    kids = composite.children(cw, rule)
    wanted = set(kids) | ({composite.resolve(cw, definition["ActionsSuppressor"])}
                          if definition.get("ActionsSuppressor") else set())
    present = set(s.scalars(select(Alarm.name).where(Alarm.account == cw.account, Alarm.name.in_(wanted - {name}))))
    absent = [k for k in kids if k not in present and k != name]
    if absent:
        # AWS's answer, quoted in awsdocs/aws-cloudformation-user-guide issue 911
        raise ApiError("ValidationError", f"Could not save the composite alarm as alarms [{', '.join(absent)}] "
                                          "in the alarm rule do not exist")
    suppressor = definition.get("ActionsSuppressor")
    if suppressor and composite.resolve(cw, suppressor) not in present:
        raise ApiError("ValidationError", f"Could not save the composite alarm as the ActionsSuppressor alarm "
                                          f"{definition['ActionsSuppressor']} does not exist")
    edges = {**_edges(cw, s), name: kids}
    cycle = composite.path_to(edges, name, name)
    if cycle:
        raise ApiError("ValidationError", f"Error in AlarmRule [the rule makes a cycle of composite alarms: "
                                          f"{' -> '.join(cycle)}]")


def put_composite_alarm(cw: CloudWatch, p: dict) -> dict:
    definition = _check(p, cw.region)
    rule = alarm_rule.parse(definition["AlarmRule"])
    new_tags = tags.check(p.get("Tags", []))
    now = cw.clock()
    name = definition["AlarmName"]
    with cw.pools.session(LOCAL) as s:
        row = s.get(Alarm, (cw.account, name))
        if row is not None and not composite.is_composite(row.definition):
            raise ApiError("ValidationError", f"The alarm {name} is a metric alarm; a composite alarm cannot "
                                              "replace it (delete it first).")
        _check_references(cw, s, name, rule, definition)
        if row is None:
            if s.scalar(select(func.count()).select_from(Alarm).where(Alarm.account == cw.account)) >= limits.MAX_ALARMS:
                raise limit(f"The maximum of {limits.MAX_ALARMS} alarms has been reached.")
            row = Alarm(account=cw.account, name=name, definition=json.dumps(definition), state="INSUFFICIENT_DATA",
                        state_reason="Unchecked: Initial alarm creation", state_updated_at=now)
            s.add(row)
            verb = "created"
            tags.put(s, cw.account, "alarm", name, new_tags)
        else:
            verb = "updated"   # "its state is left unchanged, but the update completely overwrites" (model)
        row.definition = json.dumps(definition)
        row.updated_at = now
        history.stage(s, cw.account, name, now, "ConfigurationUpdate", f'Alarm "{name}" {verb}',
                      {"version": "1.0", "type": history.CONFIGURATION_TYPES[verb], verb + "Alarm": definition})
    history.deliver_soon(cw.pools)
    return {}


def document(cw: CloudWatch, s: Session, row: Alarm) -> dict[str, Any]:
    """A CompositeAlarm as DescribeAlarms returns it (the model's CompositeAlarm members), with
    ActionsSuppressedBy / ActionsSuppressedReason while its actions are suppressed (suppression.py)."""
    d = json.loads(row.definition)
    out = {**d, "AlarmArn": arns.alarm_arn(cw.region, cw.account, row.name),
           "ActionsEnabled": d.get("ActionsEnabled", True), "OKActions": d.get("OKActions", []),
           "AlarmActions": d.get("AlarmActions", []), "InsufficientDataActions": d.get("InsufficientDataActions", []),
           "AlarmConfigurationUpdatedTimestamp": row.updated_at, "StateValue": row.state,
           "StateReason": row.state_reason, "StateReasonData": row.state_reason_data,
           "StateUpdatedTimestamp": row.state_updated_at, "StateTransitionedTimestamp": row.state_updated_at}
    held = suppression.status(cw, s, d, row.state, row.state_updated_at, cw.clock())
    if held is not None:
        out.update(ActionsSuppressedBy=held.by, ActionsSuppressedReason=held.reason)
    return out


def family(cw: CloudWatch, s: Session, p: dict) -> list[Alarm] | None:
    """The alarms ChildrenOfAlarmName or ParentsOfAlarmName selects, by name (None when neither is given).

    "If you specify ChildrenOfAlarmName, you cannot specify any other parameters in the request
    except for MaxRecords and NextToken. If you do so, you receive a validation error." (model;
    the same for ParentsOfAlarmName)"""
    which = [k for k in ("ChildrenOfAlarmName", "ParentsOfAlarmName") if p.get(k) is not None]
    if not which:
        return None
    others = sorted(k for k in p if p.get(k) is not None and k not in ("MaxRecords", "NextToken", which[0]))
    if others:
        raise ApiError("ValidationError", f"If you specify {which[0]}, you cannot specify any other parameters "
                                          f"except MaxRecords and NextToken (got {', '.join(others)}).")
    name = p[which[0]]
    limits.check_length(which[0], name, 1, 255)
    edges = _edges(cw, s)
    if which[0] == "ChildrenOfAlarmName":
        names = set(edges.get(name, ()))
    else:
        names = {parent for parent, kids in edges.items() if name in kids}
    return list(s.scalars(select(Alarm).where(Alarm.account == cw.account, Alarm.name.in_(names)).order_by(Alarm.name)))


# Only these members are returned for the family queries (model: "Only the Alarm Name, ARN,
# StateValue (OK/ALARM/INSUFFICIENT_DATA), and StateUpdatedTimestamp information are returned"
# for children; "Only the Alarm Name and ARN are returned" for parents).
FAMILY_MEMBERS = {"ChildrenOfAlarmName": ("AlarmName", "AlarmArn", "StateValue", "StateUpdatedTimestamp"),
                  "ParentsOfAlarmName": ("AlarmName", "AlarmArn")}


def family_members(p: dict) -> tuple[str, ...]:
    return FAMILY_MEMBERS["ChildrenOfAlarmName" if p.get("ChildrenOfAlarmName") is not None else "ParentsOfAlarmName"]


def check_deletable(cw: CloudWatch, s: Session, names: list[str]) -> None:
    """Refuse deleting an alarm that a composite (not deleted with it) names, with AWS's answer:
    "Cannot delete abc,xyz as there are composite alarm(s) depending on them." (quoted in
    cloud-custodian/cloud-custodian issue 7763; "... depending on it." for one, ekristen/aws-nuke
    issue 462); ValidationError, 400."""
    going = set(names)
    needed = {kid for parent, kids in _edges(cw, s).items() if parent not in going for kid in kids}
    blocked = [n for n in names if n in needed]
    if blocked:
        raise ApiError("ValidationError", f"Cannot delete {','.join(blocked)} as there are composite alarm(s) "
                                          f"depending on {'it' if len(blocked) == 1 else 'them'}.")
