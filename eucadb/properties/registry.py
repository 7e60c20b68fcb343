"""The property table (docs/architecture.md §4): every property eucadb knows, declared as data.

Names follow Eucalyptus (`services.database.worker.*`). Each entry says how to parse it, what the cloud
must confirm about it, and what has to happen when it changes while the database is running — the
bootstrapper reads `on_change` rather than carrying its own list of special cases.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from eucadb.properties import types as t

WORKER = "services.database.worker."


class OnChange(enum.Enum):
    """What a change needs while running. Values are published (status, history); never rename."""

    NOTHING = "nothing: read when next used"
    LIFECYCLE = "launch or tear down the database instance"
    ROLL_INSTANCE = "new launch template version and a rolling replacement keeping the data volume"
    REBUILD_POOLS = "rebuild the connection pools"
    MEMBERS = "add or remove replica members; the primary keeps running"


class CloudCheck(enum.Enum):
    """Facts the cloud must confirm before a value is accepted (see cloud/facts.py)."""

    IMAGE = "image"
    INSTANCE_TYPE = "instance_type"
    KEY_PAIR = "key_pair"
    ZONES = "zones"
    VOLUME = "volume"


@dataclass(frozen=True)
class Property:
    name: str
    type: t.PropertyType
    default: Any
    description: str
    on_change: OnChange = OnChange.NOTHING
    cloud_check: CloudCheck | None = None
    secret: bool = False
    read_only: bool = False  # computed by eucadb; operators cannot set it

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


_HOST = r"[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*"

PROPERTIES: tuple[Property, ...] = (
    Property(WORKER + "configured", t.Bool(), False,
             "launch the append-only database instance and enable the services that use it",
             OnChange.LIFECYCLE),
    Property(WORKER + "image", t.CloudResource(kind="image", pattern=r"[ae]mi-[0-9a-f]{8,17}",
                                               example="emi-0123abcd"), "",
             "machine image of the database worker (see `eucadb image install`)",
             OnChange.ROLL_INSTANCE, CloudCheck.IMAGE),
    Property(WORKER + "instance_type",
             t.String(pattern=r"[a-z][a-z0-9-]*\.[a-z0-9]+", pattern_doc="instance type such as m1.small",
                      allow_empty=False, max_length=64), "m1.small",
             "instance type of the database worker", OnChange.ROLL_INSTANCE, CloudCheck.INSTANCE_TYPE),
    Property(WORKER + "keyname", t.CloudResource(kind="key pair", pattern=r"[\x21-\x7e][\x20-\x7e]{0,254}",
                                                 example="admin-key"), "",
             "SSH key pair for the worker instance (empty: none)", OnChange.ROLL_INSTANCE,
             CloudCheck.KEY_PAIR),
    Property(WORKER + "availability_zones",
             t.List(item=t.String(pattern=r"[a-z0-9-]+", pattern_doc="zone name such as one-a",
                                  allow_empty=False, max_length=64)), [],
             "zones the worker may run in (empty: all zones)", OnChange.ROLL_INSTANCE, CloudCheck.ZONES),
    Property(WORKER + "volume", t.CloudResource(kind="volume", pattern=r"vol-[0-9a-f]{8,17}",
                                                example="vol-0123abcd"), "",
             "existing data volume to use (empty: eucadb creates one)", OnChange.ROLL_INSTANCE,
             CloudCheck.VOLUME),
    Property(WORKER + "volume_size", t.Int(minimum=1, maximum=16384), 10,
             "size in GiB of the data volume eucadb creates", OnChange.NOTHING),
    Property(WORKER + "allowed_cidrs", t.CidrList(), [],
             "networks allowed to reach PostgreSQL on 5432 (empty: the front end's own address/32); "
             "security group ingress and the instance's pg_hba", OnChange.ROLL_INSTANCE),
    Property(WORKER + "expiration_days", t.Int(minimum=1, maximum=3650), 365,
             "lifetime of the server certificate in days (renewed at 2/3 of it)", OnChange.NOTHING),
    Property(WORKER + "init_script", t.String(max_length=16384, pattern_doc="shell script"), "",
             "extra script the instance runs at boot, before PostgreSQL starts", OnChange.ROLL_INSTANCE),
    Property(WORKER + "ntp_server", t.String(pattern=_HOST, pattern_doc="host name or address"), "",
             "NTP server for the worker instance (empty: the image's default)", OnChange.ROLL_INSTANCE),
    Property(WORKER + "pool_size", t.Int(minimum=1, maximum=200), 10,
             "connections kept open per remote persistence context", OnChange.REBUILD_POOLS),
    Property(WORKER + "pool_max_overflow", t.Int(minimum=0, maximum=200), 10,
             "extra connections a pool may open under load", OnChange.REBUILD_POOLS),
    Property(WORKER + "pool_timeout", t.Int(minimum=1, maximum=300), 30,
             "seconds a request waits for a pooled connection", OnChange.REBUILD_POOLS),
    Property(WORKER + "health_interval", t.Int(minimum=1, maximum=3600), 10,
             "seconds between health checks of the remote database", OnChange.NOTHING),
    Property(WORKER + "health_grace", t.Int(minimum=0, maximum=86400), 600,
             "seconds a new database instance may take to pass its first health check; after that, 3 "
             "failed checks in a row make the autoscaling group replace it", OnChange.NOTHING),
    Property(WORKER + "backup.archive_timeout", t.Int(minimum=10, maximum=3600), 60,
             "seconds after which PostgreSQL switches to a new WAL segment so it is archived to the "
             "backup bucket even when little is written: the worst-case data loss (RPO) of a restore",
             OnChange.ROLL_INSTANCE),
    Property(WORKER + "backup.schedule", t.Cron(), "",
             "when the leader takes a base backup (cron, UTC; empty: only `eucadb backup create`); a "
             "run missed while no leader ran is taken once when one starts, never twice", OnChange.NOTHING),
    Property(WORKER + "backup.retention_count", t.Int(minimum=0, maximum=1000), 0,
             "keep at least this many newest base backups (Barman's REDUNDANCY n; 0: no count rule); "
             "older ones and the WAL only they need are deleted after each backup", OnChange.NOTHING),
    Property(WORKER + "backup.retention_days", t.Int(minimum=0, maximum=3650), 0,
             "keep what a restore to any time of the last n days needs (Barman's RECOVERY WINDOW OF n "
             "DAYS; 0: no window rule); with retention_count too, a backup either rule keeps stays",
             OnChange.NOTHING),
    Property(WORKER + "replicas", t.Int(minimum=0, maximum=5), 0,
             "streaming read replicas of the database (0..5), each its own instance, volume and "
             "autoscaling group, in zones other than the primary's when there are several",
             OnChange.MEMBERS),
    Property(WORKER + "failover", t.Enum(choices=("auto", "manual")), "auto",
             "auto: when the primary is lost the leader fences it through the cloud and promotes the "
             "most advanced replica; manual: only `eucadb switchover` changes the primary"),
    Property(WORKER + "synchronous", t.Enum(choices=("off", "on")), "off",
             "on: a commit waits until one replica has the WAL (synchronous_standby_names = "
             "'ANY 1 (...)'), so an acknowledged write survives the loss of the primary"),
    Property(WORKER + "max_lag_on_failover", t.Int(minimum=0, maximum=1 << 40), 16 * 1024 * 1024,
             "bytes of WAL a replica may lag behind the primary and still be promoted by a failover"),
)

BY_NAME: dict[str, Property] = {p.name: p for p in PROPERTIES}
MASK = "********"
