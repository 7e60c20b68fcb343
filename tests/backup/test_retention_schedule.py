"""Retention rules (Barman's REDUNDANCY / RECOVERY WINDOW, plus "never what a restore uses") and the
backup schedule's fire times (APScheduler's CronTrigger; a missed run once, never twice)."""
from __future__ import annotations

import datetime as dt

import pytest

from eucadb.backup import retention, schedule
from eucadb.properties.registry import BY_NAME, WORKER
from eucadb.store import open_store

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def backups(*days_ago: float) -> list[dict]:
    """DONE catalogue entries that ended `days_ago` days before NOW, oldest first."""
    out = []
    for ago in sorted(days_ago, reverse=True):
        end = NOW - dt.timedelta(days=ago)
        out.append({"backup_id": end.strftime("%Y%m%dT%H%M%S"), "end_time_iso": end.isoformat()})
    return out


def ids(entries: list[dict], *positions: int) -> list[str]:
    return [entries[i]["backup_id"] for i in positions]


def test_redundancy_keeps_the_newest_n():
    four = backups(4, 3, 2, 1)
    assert retention.expired(four, 2, 0, NOW) == ids(four, 0, 1)
    assert retention.expired(four, 0, 0, NOW) == []            # no rule: keep all
    assert retention.expired(four, 9, 0, NOW) == []


def test_recovery_window_keeps_the_window_and_the_backup_before_it():
    five = backups(10, 6, 4, 2, 1)
    # a 5-day window needs the 6-day-old backup to restore to its first second
    assert retention.expired(five, 0, 5, NOW) == ids(five, 0)
    # both rules: a backup either rule keeps stays
    assert retention.expired(five, 4, 1, NOW) == ids(five, 0)


def test_a_backup_a_restore_uses_is_never_expired():
    four = backups(4, 3, 2, 1)
    assert retention.expired(four, 2, 0, NOW, in_use=[four[0]["backup_id"]]) == ids(four, 1)


def test_missed_fire_times_give_one_run_for_the_newest_never_one_per_fire():
    daily = "0 3 * * *"
    last = dt.datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    assert schedule.due(daily, last, NOW) == dt.datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    # once taken, nothing is due until the next fire time
    assert schedule.due(daily, dt.datetime(2026, 12, 2, 3, 0, tzinfo=UTC), NOW) is None
    assert schedule.due(daily, dt.datetime(2026, 12, 2, 3, 0, tzinfo=UTC),
                        dt.datetime(2026, 12, 3, 3, 0, 1, tzinfo=UTC)) == dt.datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


def test_the_fire_time_is_claimed_once_in_the_store_and_a_new_schedule_counts_from_now(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    every_minute = "* * * * *"
    view = schedule.read(store, "dep1", every_minute, now=NOW)
    assert view.last_fire_at == NOW                              # nothing from before it was set
    later = NOW + dt.timedelta(minutes=5, seconds=30)
    fire = schedule.due(every_minute, view.last_fire_at, later)
    assert fire == NOW + dt.timedelta(minutes=5)
    assert schedule.claim(store, "dep1", fire) is True
    assert schedule.claim(store, "dep1", fire) is False           # a restart, or a second server
    assert schedule.due(every_minute, schedule.read(store, "dep1", every_minute).last_fire_at, later) is None
    schedule.record(store, "dep1", "20261202T120500", None)
    assert schedule.read(store, "dep1", every_minute).backup_id == "20261202T120500"
    changed = schedule.read(store, "dep1", "0 3 * * *", now=later)
    assert changed.last_fire_at == later


@pytest.mark.parametrize("raw, ok", [("0 3 * * *", True), ("*/15 * * * *", True), ("", True),
                                      ("0 3 * *", False), ("61 * * * *", False), ("daily", False)])
def test_the_schedule_property_accepts_what_the_trigger_runs(raw, ok):
    prop = BY_NAME[WORKER + "backup.schedule"]
    if ok:
        assert prop.type.parse(raw) == raw
    else:
        with pytest.raises(ValueError, match="cron expression"):
            prop.type.parse(raw)
