"""Interrupted runs always resume: `eucadb serve` killed (-9) inside every step of a teardown, started
again each time, finishes it — nothing of the deployment is left in the cloud but the kept volume."""
from __future__ import annotations

import pytest

from e2e import deployment_resources, module_cloud, sibling
from pg import free_port
from serving import Server
from eucadb.workflow.deployment import current_deployment
from eucadb.workflow.engine import history
from eucadb.workflow.launch import TEARDOWN

pytestmark = pytest.mark.slow


cloud = module_cloud("resume")


def test_serve_killed_inside_every_teardown_step_resumes_to_nothing_but_the_volume(cloud, tmp_path):
    env = sibling(cloud, tmp_path)           # configured=false: a launched deployment is torn down
    env.run("workflow", "launch")
    store = env.app().store
    deployment = current_deployment(store)
    for step in TEARDOWN.steps:
        server = Server(env, free_port(), EUCADB_FAULT=f"kill:{step.name}:inside")
        assert server.proc.wait(timeout=180) == -9, f"serve was not killed inside {step.name}"
        server.log.close()
        run = history(store, deployment=deployment)[0]
        assert (run["kind"], run["state"]) == ("teardown", "running"), step.name
        done = [s["name"] for s in run["steps"] if s["state"] == "done"]
        assert step.name not in done, f"{step.name} recorded done although killed inside it"
    runs_before = len(history(store, deployment=deployment))
    server = Server(env, free_port())
    try:
        server.wait(lambda d: d["workflow"]["kind"] == "teardown" and d["workflow"]["state"] == "succeeded", 180)
    finally:
        assert server.stop() == 0
    runs = history(store, deployment=deployment)
    assert len(runs) == runs_before, "the teardown was restarted as a new run instead of resumed"
    left = deployment_resources(env, deployment)
    assert len(left.pop("volumes")) == 1 and not any(left.values()), left
