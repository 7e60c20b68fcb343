"""Running a workflow for this store's deployment: the glue between App, lease and engine."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from eucadb.retry import Retry
from eucadb.workflow.deployment import current_deployment
from eucadb.workflow.engine import Runner, RunResult, StepContext, Workflow, transient


def run_workflow(app: Any, workflow: Workflow, options: Mapping[str, Any] | None = None,
                 fence: Callable[[Any], None] | None = None,
                 on_progress: Callable[[str], None] | None = None) -> RunResult:
    deployment = current_deployment(app.store)
    retry = Retry(deadline=app.config["retry.timeout"] * 3, max_delay=2.0, is_transient=transient)
    runner = Runner(app.store, retry, fence=fence, on_progress=on_progress)
    ctx = StepContext(deployment=deployment, properties=app.properties.values(), services=app,
                      options=dict(options or {}))
    return runner.run(workflow, ctx)
