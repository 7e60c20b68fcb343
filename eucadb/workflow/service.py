"""Running a workflow for this store's deployment: the glue between App, lease and engine."""
from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from eucadb.retry import Retry
from eucadb.workflow.deployment import current_deployment
from sqlalchemy import select

from eucadb.store.models import WorkflowRun, WorkflowStep
from eucadb.workflow.engine import Runner, RunResult, RunState, StepContext, Workflow, transient


def launched_before(store, deployment: str) -> bool:
    """Has a launch of this deployment ever succeeded (since the last completed teardown)?"""
    with store.session() as s:
        runs = s.scalars(select(WorkflowRun).where(WorkflowRun.deployment == deployment,
                                                   WorkflowRun.kind.in_(LIFECYCLE_KINDS),
                                                   WorkflowRun.state == RunState.SUCCEEDED.value)
                         .order_by(WorkflowRun.id.desc())).all()
    return bool(runs) and runs[0].kind in ("launch", "restore")


LIFECYCLE_KINDS = ("launch", "teardown", "restore")   # a restore is a launch onto a new volume


def launch_resources(store, deployment: str) -> dict[str, Any]:
    """What the latest succeeded launch made (every step's resources), for the members workflow."""
    with store.session() as s:
        run = s.scalars(select(WorkflowRun).where(
            WorkflowRun.deployment == deployment, WorkflowRun.kind.in_(("launch", "restore")),
            WorkflowRun.state == RunState.SUCCEEDED.value).order_by(WorkflowRun.id.desc())).first()
        if run is None:
            return {}
        out: dict[str, Any] = {}
        for step in s.scalars(select(WorkflowStep).where(WorkflowStep.run_id == run.id)
                              .order_by(WorkflowStep.position)):
            out.update(json.loads(step.resources or "{}"))
        return out


def run_workflow(app: Any, workflow: Workflow, options: Mapping[str, Any] | None = None,
                 fence: Callable[[Any], None] | None = None,
                 on_progress: Callable[[str], None] | None = None) -> RunResult:
    deployment = current_deployment(app.store)
    retry = Retry(deadline=app.config["retry.timeout"] * 3, max_delay=2.0, is_transient=transient,
                  from_first_failure=True)  # steps may run for minutes before a transient error
    runner = Runner(app.store, retry, fence=fence, on_progress=on_progress)
    ctx = StepContext(deployment=deployment, properties=app.properties.values(), app=app,
                      options=dict(options or {}),
                      rollback_on_failure=workflow.always_roll_back
                      or not launched_before(app.store, deployment))
    return runner.run(workflow, ctx)
