"""The metric catalogue (local context `cloudwatch`): one small integer id per time series.

Ids are resolved in bulk per request and cached, so steady-state ingestion does not touch the local
store at all; a new series costs one INSERT here before its datapoints go to the remote database.

Tenancy: the account is part of a series' identity here (cw_series.account, store migration 0010),
so the same metric put by two accounts is two series with two ids, and the remote datapoints stay
account-free (series_id only: no per-row account string on the big table). A Catalogue is used
through `scoped(account)`: every lookup, creation and listing is that account's.
"""
from __future__ import annotations

import json
import threading
from typing import Iterable, NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from eucadb.services.cloudwatch.tables import Series

LOCAL = "cloudwatch"
PAGE = 500


class SeriesKey(NamedTuple):
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]   # sorted by name

    @classmethod
    def of(cls, namespace: str, metric_name: str, dimensions: Iterable[dict] | None) -> "SeriesKey":
        """The one place a series identity is built from request members (ingest calls it per datum)."""
        pairs = sorted([(d["Name"], d["Value"]) for d in dimensions]) if dimensions else ()
        return cls(namespace, metric_name, tuple(pairs))

    @property
    def canonical(self) -> str:
        return json.dumps([list(p) for p in self.dimensions], separators=(",", ":"), ensure_ascii=False)

    def as_metric(self) -> dict:
        return {"Namespace": self.namespace, "MetricName": self.metric_name,
                "Dimensions": [{"Name": n, "Value": v} for n, v in self.dimensions]}


def _key(row: Series) -> SeriesKey:
    return SeriesKey(row.namespace, row.metric_name, tuple(tuple(p) for p in json.loads(row.dimensions)))


class UnscopedCatalogue(RuntimeError):
    """A programming error: the shared catalogue used without naming the account."""


class Catalogue:
    def __init__(self, pools, account: str | None = None,
                 cache: dict[str, dict[SeriesKey, int]] | None = None, lock: threading.Lock | None = None):
        self.pools, self._account = pools, account
        self._cache = {} if cache is None else cache      # account -> key -> id, shared by every scope
        self._lock = lock or threading.Lock()

    def scoped(self, account: str) -> "Catalogue":
        """The catalogue of one account (sharing this one's cache of ids)."""
        return Catalogue(self.pools, account, self._cache, self._lock)

    @property
    def account(self) -> str:
        if not self._account:
            raise UnscopedCatalogue("the metric catalogue is used only through scoped(account)")
        return self._account

    @property
    def _ids(self) -> dict[SeriesKey, int]:
        ids = self._cache.get(self.account)
        if ids is None:
            with self._lock:
                ids = self._cache.setdefault(self.account, {})
        return ids

    def find(self, key: SeriesKey) -> int | None:
        """The id of an existing series (no creation: reads must not grow the catalogue)."""
        ids = self._ids
        if key in ids:
            return ids[key]
        with self.pools.session(LOCAL) as s:
            sid = s.scalar(select(Series.id).where(Series.account == self.account,
                                                   Series.namespace == key.namespace,
                                                   Series.metric_name == key.metric_name,
                                                   Series.dimensions == key.canonical))
        if sid is not None:
            with self._lock:
                ids[key] = sid
        return sid

    def ids(self, keys: list[SeriesKey]) -> list[int]:
        """The ids of `keys`, in order, creating missing series: PutMetricData's lookup, one hash per key
        when every series is known (the steady state)."""
        known = self._ids
        out = [known.get(k) for k in keys]
        if None in out:
            found = self.resolve(k for k, sid in zip(keys, out) if sid is None)
            out = [found[k] if sid is None else sid for k, sid in zip(keys, out)]
        return out

    def resolve(self, keys: Iterable[SeriesKey]) -> dict[SeriesKey, int]:
        """Ids for all keys, creating the missing series (a concurrent creator wins: we re-read)."""
        wanted = set(keys)
        ids = self._ids
        out = {k: ids[k] for k in wanted if k in ids}
        missing = wanted - out.keys()
        for attempt in range(2):
            if not missing:
                break
            try:
                out.update(self._load_or_create(missing))
                missing = set()
            except IntegrityError:
                if attempt:
                    raise
        with self._lock:
            ids.update(out)
        return out

    def _load_or_create(self, keys: set[SeriesKey]) -> dict[SeriesKey, int]:
        found: dict[SeriesKey, int] = {}
        by_metric: dict[tuple[str, str], list[SeriesKey]] = {}
        for k in keys:
            by_metric.setdefault((k.namespace, k.metric_name), []).append(k)
        with self.pools.session(LOCAL) as s:
            for (namespace, name), group in by_metric.items():
                canon = [k.canonical for k in group]
                for i in range(0, len(canon), 500):
                    rows = s.execute(select(Series.id, Series.dimensions).where(
                        Series.account == self.account, Series.namespace == namespace, Series.metric_name == name,
                        Series.dimensions.in_(canon[i:i + 500])))
                    by_canon = {d: sid for sid, d in rows}
                    found.update({k: by_canon[k.canonical] for k in group[i:i + 500] if k.canonical in by_canon})
            fresh = [Series(account=self.account, namespace=k.namespace, metric_name=k.metric_name,
                            dimensions=k.canonical)
                     for k in keys if k not in found]
            s.add_all(fresh)
            s.flush()
            found.update({_key(r): r.id for r in fresh})
        return found

    def list(self, namespace: str | None, metric_name: str | None, filters: list[dict],
             after_id: int) -> tuple[list[SeriesKey], int | None]:
        """One page of series matching the filters, and the id to continue after (None: done)."""
        stmt = select(Series).where(Series.account == self.account, Series.id > after_id).order_by(Series.id)
        if namespace:
            stmt = stmt.where(Series.namespace == namespace)
        if metric_name:
            stmt = stmt.where(Series.metric_name == metric_name)
        page: list[SeriesKey] = []
        last = after_id
        with self.pools.session(LOCAL) as s:
            while True:
                rows = s.scalars(stmt.where(Series.id > last).limit(PAGE * 4)).all()
                for row in rows:
                    last = row.id
                    key = _key(row)
                    if _matches(key, filters):
                        page.append(key)
                        if len(page) == PAGE:
                            more = s.scalar(stmt.where(Series.id > last).limit(1)) is not None
                            return page, (last if more else None)
                if len(rows) < PAGE * 4:
                    return page, None


def _matches(key: SeriesKey, filters: list[dict]) -> bool:
    dims = dict(key.dimensions)
    return all(f["Name"] in dims and ("Value" not in f or dims[f["Name"]] == f["Value"]) for f in filters)
