"""How `eucadb serve` runs the service: the API mounted on the serve port, the alarm evaluator and
the alarm-action drain (both on the leader only: the service is told `is_leader`)."""
from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from eucadb.errors import EucadbError
from eucadb.services.cloudwatch import actions
from eucadb.services.cloudwatch.api import MOUNT, CloudWatchApi
from eucadb.services.cloudwatch.evaluation import evaluate_all
from eucadb.services.keys import AccessKeys
from eucadb.services.cloudwatch.service import CloudWatch
from eucadb.states import StateGate

log = logging.getLogger(__name__)


def build(app, loop) -> tuple[CloudWatch, dict[str, CloudWatchApi]]:
    service = CloudWatch(pools=loop.pools, keys=AccessKeys(app.store, app.secrets),
                         is_enabled=StateGate(loop.services.states, "cloudwatch").enabled,
                         region=app.config.serve_region, cloud=app.clients,
                         is_leader=lambda: loop.lease.token is not None)
    return service, {MOUNT: CloudWatchApi(service)}


def _evaluate(service: CloudWatch) -> None:
    try:
        done = evaluate_all(service)
        log.debug("evaluated %d alarms, %d could not be", done.evaluated, len(done.failed))
    except (EucadbError, SQLAlchemyError) as exc:
        log.warning("alarm evaluation skipped: %s", exc)


def _act(service: CloudWatch) -> None:
    if not service.is_leader():
        return
    try:
        done = actions.drain(service)
        if done:
            log.info("alarm actions carried out: %s", ", ".join(f"{n} {k}" for k, n in sorted(done.items())))
    except (EucadbError, SQLAlchemyError) as exc:
        log.warning("alarm actions postponed: %s", exc)


def start_evaluator(service: CloudWatch, seconds: float = 60, action_seconds: float = 5) -> BackgroundScheduler:
    """Evaluate every alarm every `seconds` and carry out staged actions every `action_seconds`; a
    run that overlaps the next is skipped, not queued. Two jobs, so a slow cloud call never delays
    the evaluation of the other alarms."""
    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(_evaluate, "interval", seconds=seconds, args=[service], max_instances=1, coalesce=True,
                      id="cloudwatch-alarms")
    scheduler.add_job(_act, "interval", seconds=action_seconds, args=[service], max_instances=1, coalesce=True,
                      id="cloudwatch-actions")
    scheduler.start()
    return scheduler
