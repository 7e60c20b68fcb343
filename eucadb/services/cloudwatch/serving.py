"""How `eucadb serve` runs the service: the API mounted on the serve port and the alarm evaluator."""
from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from eucadb.errors import EucadbError
from eucadb.services.cloudwatch.api import MOUNT, CloudWatchApi
from eucadb.services.cloudwatch.evaluation import evaluate_all
from eucadb.services.keys import AccessKeys
from eucadb.services.cloudwatch.service import CloudWatch
from eucadb.states import StateGate

log = logging.getLogger(__name__)


def build(app, loop) -> tuple[CloudWatch, dict[str, CloudWatchApi]]:
    service = CloudWatch(pools=loop.pools, keys=AccessKeys(app.store, app.secrets),
                         is_enabled=StateGate(loop.services.states, "cloudwatch").enabled,
                         region=app.config.serve_region)
    return service, {MOUNT: CloudWatchApi(service)}


def _evaluate(service: CloudWatch) -> None:
    try:
        done = evaluate_all(service)
        log.debug("evaluated %d alarms, %d could not be", done.evaluated, len(done.failed))
    except (EucadbError, SQLAlchemyError) as exc:
        log.warning("alarm evaluation skipped: %s", exc)


def start_evaluator(service: CloudWatch, seconds: int = 60) -> BackgroundScheduler:
    """Evaluate every alarm once a minute; a run that overlaps the next is skipped, not queued."""
    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(_evaluate, "interval", seconds=seconds, args=[service], max_instances=1, coalesce=True,
                      id="cloudwatch-alarms")
    scheduler.start()
    return scheduler
