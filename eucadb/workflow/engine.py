"""The step engine: ordered steps declared as data, progress persisted after every transition.

A run walks its steps in order. For each step it first asks `adopt` (does the resource already exist,
found by deterministic name + tag `eucadb:deployment`?) and only calls `apply` when it does not, so a
process killed anywhere — even between a cloud call and the write that records it — resumes without
duplicating anything. Transient cloud errors are retried by the one retry helper; any other failure
rolls the completed steps back in reverse order and records why.
"""
from __future__ import annotations

import enum
import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from botocore.exceptions import ClientError
from sqlalchemy import select

from eucadb.errors import EucadbError, FencingError, UserError, WorkflowError
from eucadb.retry import Retry, RetryTimeout
from eucadb.store import Fence, Store, unfenced
from eucadb.store.models import WorkflowRun, WorkflowStep, utcnow

if TYPE_CHECKING:
    from eucadb.app import App
    from eucadb.workflow.vault import DeploymentVault

log = logging.getLogger(__name__)
# What a step may fail with: eucadb's own errors, a retry deadline, or an AWS error the step did not
# handle itself (recorded and rolled back like any other failure, never a traceback).
STEP_FAILURES = (EucadbError, RetryTimeout, ClientError)


class StepState(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class RunState(str, enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"      # failed; completed steps undone
    FAILED = "failed"                # failed and the rollback failed too: see error
    SUPERSEDED = "superseded"        # another kind of run took over the deployment


class Step(Protocol):
    """One unit of a workflow. All three methods must be idempotent."""

    name: str
    title: str

    def adopt(self, ctx: "StepContext") -> dict | None:
        """Resource ids if the step's result already exists in the cloud, else None."""

    def apply(self, ctx: "StepContext") -> dict:
        """Create what is missing; return the ids of what the step owns."""

    def rollback(self, ctx: "StepContext") -> None:
        """Remove what the step owns (found by name/tag; ctx.resources may hold hints)."""


@dataclass(frozen=True)
class Workflow:
    kind: str
    steps: tuple[Step, ...]
    reverse: bool = False   # teardown: run each step's rollback, last step first
    always_roll_back: bool = False   # roll back on failure even on a deployment that once worked


@dataclass
class StepContext:
    """What steps see: the deployment, a snapshot of properties, the process's App (cloud clients,
    cloud facts, config) and the resources accumulated by the steps before."""

    deployment: str
    properties: Mapping[str, Any]
    app: "App"
    options: Mapping[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    rolling_back: bool = False         # set while a failed launch is being undone
    # A failed first launch is rolled back (no half-built deployment, Trove's stuck BUILD); a failed
    # update of a deployment that once worked is left in place for the next attempt (no outage).
    rollback_on_failure: bool = True
    # Set by Runner.run to the runner's own fence, so what a step writes to the vault is checked
    # against the leader lease in the write's transaction, like the runner's own progress records.
    fence: Fence = unfenced

    @property
    def vault(self) -> "DeploymentVault":
        """The deployment's vault, fenced: the only vault a step writes through."""
        return self.app.vault(self.deployment, fence=self.fence)


@dataclass(frozen=True)
class RunResult:
    run_id: int
    state: RunState
    error: str | None
    resources: Mapping[str, Any]


def fault_point(step: str, point: str) -> None:
    """Test knob: EUCADB_FAULT="kill:<step>:<point>" or "fail:<step>:<point>" (points: before,
    inside, after). Lets the fault tests stop a real process at exact places; inert otherwise."""
    spec = os.environ.get("EUCADB_FAULT", "")
    for item in filter(None, spec.split(",")):
        action, _, where = item.partition(":")
        if where != f"{step}:{point}":
            continue
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if action == "fail":
            raise WorkflowError(f"injected failure at {step} ({point})")


class Runner:
    """Runs workflows against the store; `fence(session)` guards every write (leader lease)."""

    def __init__(self, store: Store, retry: Retry, fence: Fence | None = None,
                 on_progress: Callable[[str], None] | None = None):
        self.store = store
        self.retry = retry
        self.fence = fence or unfenced
        self.on_progress = on_progress or (lambda message: None)

    # --- persistence -------------------------------------------------------------------------
    def _open_run(self, workflow: Workflow, deployment: str, options: Mapping[str, Any]) -> int:
        """Resume the unfinished run of this kind, or start a new one (superseding other kinds)."""
        with self.store.session() as s:
            self.fence(s)
            unfinished = s.scalars(select(WorkflowRun).where(
                WorkflowRun.deployment == deployment,
                WorkflowRun.state == RunState.RUNNING.value)).all()
            for run in unfinished:
                if run.kind == workflow.kind:
                    return run.id
                run.state, run.finished_at = RunState.SUPERSEDED.value, utcnow()
                run.error = f"superseded by a {workflow.kind} run"
            return _new_run(s, workflow, deployment, options)

    def _save_step(self, run_id: int, position: int, **changes: Any) -> None:
        with self.store.session() as s:
            self.fence(s)
            row = s.get(WorkflowStep, (run_id, position))
            for key, value in changes.items():
                setattr(row, key, json.dumps(value) if key == "resources" else value)

    def _finish_run(self, run_id: int, state: RunState, error: str | None) -> None:
        with self.store.session() as s:
            self.fence(s)
            run = s.get(WorkflowRun, run_id)
            run.state, run.error, run.finished_at = state.value, error, utcnow()

    def _steps(self, run_id: int) -> list[WorkflowStep]:
        with self.store.session() as s:
            return list(s.scalars(select(WorkflowStep).where(WorkflowStep.run_id == run_id)
                                  .order_by(WorkflowStep.position)))

    # --- running -----------------------------------------------------------------------------
    def run(self, workflow: Workflow, ctx: StepContext) -> RunResult:
        ctx.fence = self.fence
        run_id = self._open_run(workflow, ctx.deployment, ctx.options)
        # a resumed run keeps what it was started with (a failover's "from"), even when the caller
        # that resumes it knows nothing of that
        with self.store.session() as s:
            started_with = json.loads(s.get(WorkflowRun, run_id).options or "{}")
        ctx.options = {**started_with, **ctx.options}
        rows = self._steps(run_id)
        for row in rows:
            if row.state == StepState.DONE.value:
                ctx.resources.update(json.loads(row.resources))
        total = len(workflow.steps)
        for position, step in enumerate(workflow.steps):
            if rows[position].state == StepState.DONE.value:
                continue
            self.on_progress(f"{workflow.kind}: step {position + 1}/{total} {step.title}")
            try:
                self._run_step(workflow, step, run_id, position, rows[position].attempts, ctx)
            except FencingError:
                raise   # deposed: this process may write nothing more, not even the failure
            except STEP_FAILURES as exc:
                return self._fail(workflow, run_id, position, ctx, exc)
            except Exception as exc:  # noqa: BLE001 - a bug in a step must end the run, not strand it
                log.exception("%s: step %s raised an unexpected error", workflow.kind, step.name)
                return self._fail(workflow, run_id, position, ctx, exc, bug=True)
        self._finish_run(run_id, RunState.SUCCEEDED, None)
        self.on_progress(f"{workflow.kind}: done")
        return RunResult(run_id, RunState.SUCCEEDED, None, dict(ctx.resources))

    def _run_step(self, workflow: Workflow, step: Step, run_id: int, position: int, attempts: int,
                  ctx: StepContext) -> None:
        self._save_step(run_id, position, state=StepState.RUNNING.value, started_at=utcnow(),
                        attempts=attempts + 1, last_error=None)
        fault_point(step.name, "before")
        started = time.monotonic()
        if workflow.reverse:
            self.retry.call(lambda: step.rollback(ctx), f"{workflow.kind} {step.name}")
            resources: dict = {}
        else:
            resources = self.retry.call(lambda: step.adopt(ctx) or step.apply(ctx),
                                        f"{workflow.kind} {step.name}")
        fault_point(step.name, "inside")
        ctx.resources.update(resources)
        self._save_step(run_id, position, state=StepState.DONE.value, resources=resources,
                        finished_at=utcnow())
        log.info("%s: %s done in %.1fs %s", workflow.kind, step.name, time.monotonic() - started,
                 resources or "")
        fault_point(step.name, "after")

    def _fail(self, workflow: Workflow, run_id: int, position: int, ctx: StepContext,
              exc: BaseException, bug: bool = False) -> RunResult:
        """Record why the step failed and end the run. A bug (an exception no step expects) is
        recorded with its type and ends the run as failed without a rollback: code that just
        misbehaved should not be trusted to undo things; the next run starts from what exists."""
        detail = f"{type(exc).__name__}: {exc}" if bug else str(exc)
        error = f"{workflow.steps[position].name}: {detail}"
        self._save_step(run_id, position, state=StepState.FAILED.value, last_error=detail,
                        finished_at=utcnow())
        log.error("%s failed at %s", workflow.kind, error)
        if bug or workflow.reverse or not ctx.rollback_on_failure:
            # A teardown is never "rolled back" by re-creating things, and an update of a working
            # deployment keeps what runs; both are retried later from where they stopped.
            self._finish_run(run_id, RunState.FAILED, error)
            return RunResult(run_id, RunState.FAILED, error, dict(ctx.resources))
        rollback_errors = self._roll_back(workflow, run_id, position, ctx)
        if rollback_errors:
            error += "; rollback incomplete: " + "; ".join(rollback_errors)
            self._finish_run(run_id, RunState.FAILED, error)
            return RunResult(run_id, RunState.FAILED, error, dict(ctx.resources))
        self._finish_run(run_id, RunState.ROLLED_BACK, error)
        return RunResult(run_id, RunState.ROLLED_BACK, error, dict(ctx.resources))

    def _roll_back(self, workflow: Workflow, run_id: int, failed: int, ctx: StepContext) -> list[str]:
        """Undo steps failed..0 in reverse (the failed step may have created part of its work)."""
        errors: list[str] = []
        ctx.rolling_back = True
        for position in range(failed, -1, -1):
            step = workflow.steps[position]
            self.on_progress(f"{workflow.kind}: rolling back {step.title}")
            try:
                self.retry.call(lambda: step.rollback(ctx), f"rollback {step.name}")
            except STEP_FAILURES as exc:
                errors.append(f"{step.name}: {exc}")
                continue
            if position != failed:
                self._save_step(run_id, position, state=StepState.ROLLED_BACK.value)
        return errors


def _new_run(s: Any, workflow: Workflow, deployment: str, options: Mapping[str, Any]) -> int:
    run = WorkflowRun(kind=workflow.kind, deployment=deployment, state=RunState.RUNNING.value,
                      options=json.dumps(dict(options)))
    s.add(run)
    s.flush()
    for position, step in enumerate(workflow.steps):
        s.add(WorkflowStep(run_id=run.id, position=position, name=step.name, state=StepState.PENDING.value))
    return run.id


def request_run(store: Store, workflow: Workflow, deployment: str, options: Mapping[str, Any]) -> int:
    """Record a run for the leader to carry out (a CLI's request, e.g. a restore): it is RUNNING and
    persisted before any step, so the leader picks it up — after a kill -9 too — exactly as it
    resumes a run it was running itself. Refused while another run is in progress."""
    with store.session() as s:
        busy = s.scalars(select(WorkflowRun).where(WorkflowRun.deployment == deployment,
                                                   WorkflowRun.state == RunState.RUNNING.value)).first()
        if busy is not None:
            raise UserError(f"a {busy.kind} (run {busy.id}) is in progress; wait for it to finish "
                            "(`eucadb workflow show`)")
        return _new_run(s, workflow, deployment, options)


def transient(exc: BaseException) -> bool:
    """Errors worth retrying a step for (the cloud client's classification)."""
    from eucadb.cloud.client import is_transient
    return is_transient(exc)


def history(store: Store, run_id: int | None = None, deployment: str | None = None,
            kinds: tuple[str, ...] | None = None) -> list[dict]:
    """Runs and their steps for `workflow show` (newest run, or the one asked for; only `kinds`)."""
    with store.session() as s:
        query = select(WorkflowRun).order_by(WorkflowRun.id.desc())
        if run_id is not None:
            query = query.where(WorkflowRun.id == run_id)
        elif deployment:
            query = query.where(WorkflowRun.deployment == deployment)
        if kinds:
            query = query.where(WorkflowRun.kind.in_(kinds))
        runs = s.scalars(query.limit(1 if run_id is not None else 10)).all()
        out = []
        for run in runs:
            steps = s.scalars(select(WorkflowStep).where(WorkflowStep.run_id == run.id)
                              .order_by(WorkflowStep.position)).all()
            out.append({
                "run": run.id, "kind": run.kind, "deployment": run.deployment, "state": run.state,
                "options": json.loads(run.options or "{}"),
                "started_at": run.started_at, "finished_at": run.finished_at, "error": run.error,
                "steps": [{"position": st.position + 1, "name": st.name,
                           "step": f"{st.position + 1}. {st.name}",   # the label shown to people
                           "state": st.state,
                           "attempts": st.attempts, "resources": json.loads(st.resources),
                           "seconds": _seconds(st.started_at, st.finished_at),
                           "error": st.last_error} for st in steps]})
        return out


def _seconds(start, end) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 2)
