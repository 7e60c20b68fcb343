"""The step engine on a real store: ordered, persisted, resumable, reverse rollback on failure."""
from __future__ import annotations


import pytest

from eucadb.errors import WorkflowError
from eucadb.retry import Retry
from eucadb.store.models import WorkflowStep
from eucadb.workflow.engine import RunState, Runner, StepContext, Workflow, history


class Ledger:
    """Stands in for the cloud: a set of resources that steps create and delete."""

    def __init__(self):
        self.resources: set[str] = set()
        self.calls: list[str] = []


class RecordingStep:
    def __init__(self, name: str, ledger: Ledger, fail: Exception | None = None, flaky: int = 0):
        self.name, self.title, self.ledger, self.fail, self.flaky = name, name, ledger, fail, flaky

    def adopt(self, ctx):
        self.ledger.calls.append(f"adopt {self.name}")
        return {self.name: "adopted"} if self.name in self.ledger.resources else None

    def apply(self, ctx):
        self.ledger.calls.append(f"apply {self.name}")
        if self.flaky:
            self.flaky -= 1
            raise ConnectionError("throttled")
        if self.fail:
            raise self.fail
        self.ledger.resources.add(self.name)
        return {self.name: "created"}

    def rollback(self, ctx):
        self.ledger.calls.append(f"rollback {self.name}")
        self.ledger.resources.discard(self.name)


def runner(store):
    retry = Retry(deadline=2, initial_delay=0.001, retry_on=(ConnectionError,))
    return Runner(store, retry)


def ctx():
    return StepContext(deployment="d1", properties={}, app=None)


def test_runs_steps_in_order_and_records_resources(store):
    ledger = Ledger()
    wf = Workflow("launch", tuple(RecordingStep(n, ledger) for n in ("a", "b", "c")))
    result = runner(store).run(wf, ctx())
    assert result.state == RunState.SUCCEEDED
    assert [c for c in ledger.calls if c.startswith("apply")] == ["apply a", "apply b", "apply c"]
    shown = history(store, run_id=result.run_id)[0]
    assert [s["state"] for s in shown["steps"]] == ["done"] * 3
    assert shown["steps"][1]["resources"] == {"b": "created"}


def test_transient_errors_are_retried(store):
    ledger = Ledger()
    wf = Workflow("launch", (RecordingStep("a", ledger, flaky=2),))
    assert runner(store).run(wf, ctx()).state == RunState.SUCCEEDED
    assert ledger.calls.count("apply a") == 3


def test_failure_rolls_back_completed_steps_in_reverse(store):
    ledger = Ledger()
    steps = (RecordingStep("a", ledger), RecordingStep("b", ledger),
             RecordingStep("c", ledger, fail=WorkflowError("quota exceeded")))
    result = runner(store).run(Workflow("launch", steps), ctx())
    assert result.state == RunState.ROLLED_BACK and "c: quota exceeded" in result.error
    assert [c for c in ledger.calls if c.startswith("rollback")] == ["rollback c", "rollback b", "rollback a"]
    assert ledger.resources == set()
    shown = history(store, run_id=result.run_id)[0]
    assert [s["state"] for s in shown["steps"]] == ["rolled_back", "rolled_back", "failed"]
    assert shown["steps"][2]["error"] == "quota exceeded"


def test_resume_skips_done_steps_and_adopts_unrecorded_work(store):
    ledger = Ledger()
    steps = tuple(RecordingStep(n, ledger) for n in ("a", "b", "c"))
    wf = Workflow("launch", steps)
    r = runner(store)
    run_id = r._open_run(wf, "d1", {})
    # as if a process died: a is recorded done; b was created in the cloud but never recorded
    r._save_step(run_id, 0, state="done", resources={"a": "created"})
    ledger.resources |= {"a", "b"}
    result = r.run(wf, ctx())
    assert result.run_id == run_id and result.state == RunState.SUCCEEDED
    assert "apply a" not in ledger.calls and "apply b" not in ledger.calls
    assert result.resources == {"a": "created", "b": "adopted", "c": "created"}


def test_teardown_runs_rollbacks_last_first_and_supersedes_unfinished_launch(store):
    ledger = Ledger()
    steps = tuple(RecordingStep(n, ledger) for n in ("a", "b"))
    r = runner(store)
    launch_id = r._open_run(Workflow("launch", steps), "d1", {})
    ledger.resources |= {"a", "b"}
    result = r.run(Workflow("teardown", tuple(reversed(steps)), reverse=True), ctx())
    assert result.state == RunState.SUCCEEDED and ledger.resources == set()
    assert [c for c in ledger.calls if c.startswith("rollback")] == ["rollback b", "rollback a"]
    assert history(store, run_id=launch_id)[0]["state"] == "superseded"


def test_fence_refusal_stops_all_writes(store):
    from eucadb.errors import FencingError

    def fence(session):
        raise FencingError("not the leader")

    r = Runner(store, Retry(deadline=1), fence=fence)
    with pytest.raises(FencingError):
        r.run(Workflow("launch", (RecordingStep("a", Ledger()),)), ctx())
    with store.session() as s:
        assert s.query(WorkflowStep).count() == 0


def test_failed_update_of_a_working_deployment_is_not_rolled_back(store):
    ledger = Ledger()
    steps = (RecordingStep("a", ledger), RecordingStep("b", ledger, fail=WorkflowError("boot timeout")))
    c = ctx()
    c.rollback_on_failure = False
    result = runner(store).run(Workflow("launch", steps), c)
    assert result.state == RunState.FAILED and ledger.resources == {"a"}
    assert not any(call.startswith("rollback") for call in ledger.calls)


def test_a_bug_in_a_step_ends_the_run_failed_with_its_type_instead_of_stranding_it(store):
    ledger = Ledger()
    wf = Workflow("launch", (RecordingStep("a", ledger), RecordingStep("b", ledger, fail=KeyError("volume_id")),
                             RecordingStep("c", ledger)))
    result = runner(store).run(wf, ctx())
    assert result.state == RunState.FAILED
    assert result.error == "b: KeyError: 'volume_id'"
    shown = history(store, run_id=result.run_id)[0]
    assert shown["state"] == "failed"
    assert [s["state"] for s in shown["steps"]] == ["done", "failed", "pending"]
    assert shown["steps"][1]["error"] == "KeyError: 'volume_id'"
    assert "rollback a" not in ledger.calls        # misbehaving code is not trusted to undo things
    # the run is finished: the next one is a new run, not a resume of a run stuck "running"
    again = runner(store).run(Workflow("launch", (RecordingStep("a", ledger),)), ctx())
    assert again.run_id != result.run_id and again.state == RunState.SUCCEEDED


def test_a_resumed_run_keeps_the_options_it_was_started_with(store):
    """A failover resumed by the next leader knows which member it fails over from, though the
    decision that resumes it does not say."""
    seen = []

    class Needs(RecordingStep):
        def apply(self, c):
            seen.append(dict(c.options))
            return super().apply(c)
    ledger = Ledger()
    wf = Workflow("failover", (Needs("a", ledger),))
    r = runner(store)
    run_id = r._open_run(wf, "d1", {"from": 0, "digest": ""})
    result = r.run(wf, StepContext(deployment="d1", properties={}, app=None, options={"digest": ""}))
    assert result.run_id == run_id and seen == [{"from": 0, "digest": ""}]
