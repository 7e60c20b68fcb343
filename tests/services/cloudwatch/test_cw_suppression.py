"""Composite alarms' ActionsSuppressor, WaitPeriod and ExtensionPeriod, with the clock driven by the
test (the service's injected clock; no sleeping): when actions are held, when they run, which run.

Sources of the expectations:
- CloudWatch User Guide, "Suppressing composite alarm actions"
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Create_Composite_Alarm_Suppression.html):
  suppression while the suppressor is in ALARM; "the composite alarm changes from OK to ALARM at t2.
  A WaitPeriod starts at t2"; "the suppressor alarm changes from ALARM to OK at t2. An
  ExtensionPeriod starts at t2"; "Composite alarms take actions that are based on their current
  states when ExtensionPeriod and WaitPeriod become inactive."
- the model's CompositeAlarm.ActionsSuppressedBy enum (WaitPeriod | ExtensionPeriod | Alarm);
- "Actions suppressed by WaitPeriod" as ActionsSuppressedReason: the composite example of "Alarm
  events and EventBridge" (CloudWatch User Guide).
The suppressor and the child are metric alarms with TreatMissingData=ignore and no data, so the
evaluator keeps whatever SetAlarmState gave them ("ignore: the current alarm state is maintained").
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from eucadb.services.cloudwatch import actions
from eucadb.services.cloudwatch.catalogue import LOCAL
from eucadb.services.cloudwatch.evaluation import evaluate_all
from eucadb.services.cloudwatch.tables import ActionOutbox

ALARM_TOPIC = "arn:aws:sns:us-east-1:000000000000:suppressed-alarm"
OK_TOPIC = "arn:aws:sns:us-east-1:000000000000:suppressed-ok"
WAIT, EXTENSION = 120, 180


class Scene:
    """A composite `<p>-c` = ALARM(<p>-cpu), suppressed by `<p>-deploy`, and a clock the test moves."""

    def __init__(self, endpoint, monkeypatch, p: str):
        self.endpoint, self.p, self.cw = endpoint, p, endpoint.client()
        self.t0 = datetime.now(timezone.utc).replace(microsecond=0)
        self.now = self.t0
        monkeypatch.setattr(endpoint.service, "clock", lambda: self.now)
        for child in ("cpu", "deploy"):
            self.cw.put_metric_alarm(AlarmName=f"{p}-{child}", Namespace="Suppression", MetricName=f"{p}-{child}",
                                     Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=1.0,
                                     ComparisonOperator="GreaterThanThreshold", TreatMissingData="ignore")
            self.set(child, "OK")
        self.cw.put_composite_alarm(AlarmName=f"{p}-c", AlarmRule=f"ALARM({p}-cpu)", AlarmActions=[ALARM_TOPIC],
                                    OKActions=[OK_TOPIC], ActionsSuppressor=f"{p}-deploy",
                                    ActionsSuppressorWaitPeriod=WAIT, ActionsSuppressorExtensionPeriod=EXTENSION)

    def at(self, seconds: int) -> "Scene":
        self.now = self.t0 + timedelta(seconds=seconds)
        return self

    def set(self, child: str, state: str) -> None:
        self.cw.set_alarm_state(AlarmName=f"{self.p}-{child}", StateValue=state, StateReason="test")

    def evaluate(self) -> None:
        evaluate_all(self.endpoint.service)

    def described(self) -> dict:
        return self.cw.describe_alarms(AlarmNames=[f"{self.p}-c"], AlarmTypes=["CompositeAlarm"])["CompositeAlarms"][0]

    def rows(self) -> list[tuple[str, str | None, bool]]:
        """The composite's outbox rows: (action, outcome, whether the drainer would carry it out)."""
        due = set(actions.pending(self.endpoint.service.pools))
        with self.endpoint.service.pools.session(LOCAL) as s:
            return [(r.action, r.outcome, r.id in due)
                    for r in s.query(ActionOutbox).filter_by(alarm_name=f"{self.p}-c").order_by(ActionOutbox.id)]


def suppressed(doc: dict) -> tuple[str | None, str | None]:
    return doc.get("ActionsSuppressedBy"), doc.get("ActionsSuppressedReason")


def test_wait_period_holds_the_alarm_actions_then_they_run(endpoint, monkeypatch):
    sc = Scene(endpoint, monkeypatch, "wait")
    sc.evaluate()                        # the composite leaves INSUFFICIENT_DATA for OK (actions run)
    assert sc.described()["StateValue"] == "OK"
    assert sc.rows() == [(OK_TOPIC, None, True)]
    sc.at(60).set("cpu", "ALARM")
    sc.evaluate()                        # into ALARM at t=60: a WaitPeriod starts, actions held
    doc = sc.described()
    assert doc["StateValue"] == "ALARM"
    assert suppressed(doc) == ("WaitPeriod", "Actions suppressed by WaitPeriod")
    assert sc.rows()[-1] == (ALARM_TOPIC, "Held", False)
    history = sc.cw.describe_alarm_history(AlarmName="wait-c", AlarmTypes=["CompositeAlarm"],
                                           HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert json.loads(history[0]["HistoryData"])["actionsSuppressedBy"] == "WaitPeriod"
    sc.at(60 + WAIT - 1).evaluate()      # the suppressor never went into ALARM: still waiting
    assert sc.rows()[-1] == (ALARM_TOPIC, "Held", False)
    sc.at(60 + WAIT).evaluate()          # the WaitPeriod is over: the actions of the current state run
    assert sc.rows()[-1] == (ALARM_TOPIC, None, True)
    assert suppressed(sc.described()) == (None, None)


def test_suppressor_alarm_then_extension_period_then_the_current_state_acts(endpoint, monkeypatch):
    sc = Scene(endpoint, monkeypatch, "ext")
    sc.evaluate()
    sc.at(60).set("cpu", "ALARM")
    sc.evaluate()                        # WaitPeriod ...
    sc.at(90).set("deploy", "ALARM")     # ... and the suppressor goes into ALARM within it
    sc.evaluate()
    assert suppressed(sc.described()) == ("Alarm", "Actions suppressed by Alarm")
    sc.at(60 + WAIT + 100).evaluate()    # the WaitPeriod is long over; the suppressor still holds them
    assert sc.rows()[-1] == (ALARM_TOPIC, "Held", False)
    sc.at(400).set("deploy", "OK")       # the suppressor leaves ALARM at t=400: ExtensionPeriod
    sc.evaluate()
    assert suppressed(sc.described()) == ("ExtensionPeriod", "Actions suppressed by ExtensionPeriod")
    sc.at(400 + EXTENSION - 1).evaluate()
    assert sc.rows()[-1] == (ALARM_TOPIC, "Held", False)
    sc.at(400 + EXTENSION).evaluate()    # over: the composite is still in ALARM, so its ALARM actions run
    assert sc.rows()[-1] == (ALARM_TOPIC, None, True)
    assert suppressed(sc.described()) == (None, None)


def test_a_transition_within_the_extension_period_is_held_too(endpoint, monkeypatch):
    sc = Scene(endpoint, monkeypatch, "late")
    sc.evaluate()
    sc.at(10).set("deploy", "ALARM")
    sc.at(20).set("deploy", "OK")        # left ALARM at t=20 (known from its history)
    sc.at(100).set("cpu", "ALARM")
    sc.evaluate()                        # the composite goes into ALARM inside the ExtensionPeriod
    assert suppressed(sc.described())[0] == "ExtensionPeriod"
    sc.at(20 + EXTENSION).evaluate()     # the extension is over (t=200), the WaitPeriod (to 220) is not
    assert suppressed(sc.described())[0] == "WaitPeriod"
    assert sc.rows()[-1] == (ALARM_TOPIC, "Held", False)
    sc.at(100 + WAIT).evaluate()
    assert sc.rows()[-1] == (ALARM_TOPIC, None, True)


def test_only_the_current_states_actions_run_when_suppression_ends(endpoint, monkeypatch):
    sc = Scene(endpoint, monkeypatch, "recover")
    sc.evaluate()
    sc.at(10).set("deploy", "ALARM")
    sc.at(60).set("cpu", "ALARM")
    sc.evaluate()                        # ALARM while suppressed: held
    sc.at(120).set("cpu", "OK")
    sc.evaluate()                        # back to OK while suppressed: held too
    sc.at(180).set("deploy", "OK")
    sc.evaluate()
    sc.at(180 + EXTENSION).evaluate()    # suppression over: the composite is OK, only OKActions run
    assert sc.rows()[1:] == [(ALARM_TOPIC, "Suppressed", False), (OK_TOPIC, None, True)]


def test_an_unsuppressed_transition_supersedes_held_actions(endpoint, monkeypatch):
    sc = Scene(endpoint, monkeypatch, "supersede")
    sc.evaluate()
    sc.at(60).set("cpu", "ALARM")
    sc.evaluate()                        # held by the WaitPeriod
    sc.at(90).set("cpu", "OK")
    sc.evaluate()                        # OK within the wait: not suppressed (WaitPeriod is for ALARM)
    assert sc.rows()[1:] == [(ALARM_TOPIC, "Suppressed", False), (OK_TOPIC, None, True)]
    sc.at(60 + WAIT).evaluate()          # nothing is left to release
    assert sc.rows()[1:] == [(ALARM_TOPIC, "Suppressed", False), (OK_TOPIC, None, True)]


def test_set_alarm_state_on_a_composite_does_not_need_the_remote_history(endpoint, monkeypatch):
    """README: SetAlarmState does not depend on the remote database. While the suppressor's history
    cannot be read, its last change is taken as when it left ALARM (actions held, the safe side)."""
    sc = Scene(endpoint, monkeypatch, "away")
    sc.evaluate()
    sc.at(30).set("deploy", "ALARM")
    sc.at(40).set("deploy", "OK")
    endpoint.service.pools.remote_ready = False
    try:
        sc.at(60).cw.set_alarm_state(AlarmName="away-c", StateValue="ALARM", StateReason="by hand")
        assert suppressed(sc.described())[0] == "ExtensionPeriod"
    finally:
        endpoint.service.pools.remote_ready = True
    assert sc.rows()[-1] == (ALARM_TOPIC, "Held", False)


def test_a_composite_suppressor_is_evaluated_before_the_composite_it_suppresses(endpoint, monkeypatch):
    """Kahn's order alone would take "z-main" before "a-supp" (neither names the other in its rule):
    the suppression its transition sees must be the suppressor's state of the same pass."""
    sc = Scene(endpoint, monkeypatch, "order")
    sc.cw.put_composite_alarm(AlarmName="order-a-supp", AlarmRule="ALARM(order-deploy)")
    sc.cw.put_composite_alarm(AlarmName="order-z-main", AlarmRule="ALARM(order-cpu)", AlarmActions=[ALARM_TOPIC],
                              ActionsSuppressor="order-a-supp", ActionsSuppressorExtensionPeriod=EXTENSION)
    sc.at(10).set("deploy", "ALARM")
    sc.set("cpu", "ALARM")
    sc.evaluate()                        # one pass: a-supp goes to ALARM first, so z-main's actions are held
    due = set(actions.pending(endpoint.service.pools))
    with endpoint.service.pools.session(LOCAL) as s:
        rows = [(r.outcome, r.id in due) for r in s.query(ActionOutbox).filter_by(alarm_name="order-z-main")]
    assert rows == [("Held", False)]


def test_suppressors_that_would_loop_do_not_stop_evaluation(endpoint, monkeypatch):
    sc = Scene(endpoint, monkeypatch, "loop")
    sc.cw.put_composite_alarm(AlarmName="loop-a", AlarmRule="ALARM(loop-cpu)")
    sc.cw.put_composite_alarm(AlarmName="loop-b", AlarmRule="ALARM(loop-cpu)", ActionsSuppressor="loop-a")
    sc.cw.put_composite_alarm(AlarmName="loop-a", AlarmRule="ALARM(loop-cpu)", ActionsSuppressor="loop-b")
    sc.set("cpu", "ALARM")
    sc.evaluate()
    found = sc.cw.describe_alarms(AlarmNamePrefix="loop-", AlarmTypes=["CompositeAlarm"])["CompositeAlarms"]
    assert {a["AlarmName"]: a["StateValue"] for a in found if a["AlarmName"] in ("loop-a", "loop-b")} == {
        "loop-a": "ALARM", "loop-b": "ALARM"}
