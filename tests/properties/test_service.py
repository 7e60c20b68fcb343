"""PropertyService against both store flavours: validation, all-or-nothing, history, secrets."""
import pytest
from sqlalchemy import select

from eucadb.errors import UserError
from eucadb.properties import types as t
from eucadb.properties.registry import BY_NAME, MASK, WORKER, Property
from eucadb.properties.service import PropertyService
from eucadb.store.models import PropertyChange, PropertyValue
from eucadb.store.secretbox import SecretBox


COMPUTED = "services.database.test.computed_secret"


@pytest.fixture(autouse=True)
def computed_property(monkeypatch):
    """A read-only secret property: eucadb declares none today, the machinery stays tested."""
    monkeypatch.setitem(BY_NAME, COMPUTED, Property(COMPUTED, t.String(), "", "computed by eucadb",
                                                    read_only=True, secret=True))


@pytest.fixture
def props(store, tmp_path):
    return PropertyService(store, facts=None, secrets=SecretBox(tmp_path / "secret.key"), user="alice")


def test_set_get_reset_and_history(props):
    changes = props.set_many([WORKER + "volume_size=20", WORKER + "allowed_cidrs=10.1.0.0/16"])
    assert [c.name for c in changes] == [WORKER + "volume_size", WORKER + "allowed_cidrs"]
    assert props.value(WORKER + "volume_size") == 20
    assert props.get(WORKER + "allowed_cidrs").value == "10.1.0.0/16"
    props.reset(WORKER + "volume_size")
    assert props.get(WORKER + "volume_size").is_default
    history = props.history(WORKER + "volume_size")
    assert [(h.old, h.new, h.changed_by) for h in history] == [("10", "20", "alice"), ("20", "10", "alice")]
    assert props.set_many([WORKER + "allowed_cidrs=10.1.0.0/16"]) == []  # no-op is not history


def test_archive_timeout_defaults_to_a_minute_and_rolls_the_instance(props):
    """It is a postgresql.conf setting the instance writes at boot from user-data."""
    from eucadb.properties.registry import OnChange
    assert props.value(WORKER + "backup.archive_timeout") == 60
    assert BY_NAME[WORKER + "backup.archive_timeout"].on_change is OnChange.ROLL_INSTANCE
    props.set_many([WORKER + "backup.archive_timeout=15"])
    assert props.value(WORKER + "backup.archive_timeout") == 15


@pytest.mark.parametrize("assignment, fragment", [
    (WORKER + "instance_type=", "non-empty instance type"),
    (WORKER + "volume_size=-3", "integer 1..16384"),
    (WORKER + "allowed_cidrs=10.0.0.0/33", "valid CIDR"),
    (WORKER + "backup.archive_timeout=5", "integer 10..3600"),
    (WORKER + "backup.archive_timeout=1m", "integer 10..3600"),
    (WORKER + "replicas=6", "replicas='6' is not allowed: expected an integer 0..5"),
    (WORKER + "replicas=-1", "integer 0..5"),
    (WORKER + "failover=sometimes", "one of auto, manual"),
    (WORKER + "synchronous=yes", "one of off, on"),
    (WORKER + "max_lag_on_failover=lots", "integer 0.."),
    (WORKER + "nosuchname=1", "unknown property"),
    (COMPUTED + "=1.2.3.4", "read-only"),
    ("no-equals-sign", "is not NAME=VALUE"),
])
def test_bad_values_change_nothing(props, assignment, fragment):
    props.set_many([WORKER + "pool_size=5"])
    before = (props.values(), len(props.history()))
    with pytest.raises(UserError) as err:
        props.set_many([WORKER + "pool_size=7", assignment])
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert (props.values(), len(props.history())) == before


def test_unknown_names_get_close_matches(props):
    with pytest.raises(UserError, match=r"did you mean services\.database\.worker\.instance_type"):
        props.get("services.database.worker.instance_typ")
    with pytest.raises(UserError, match="did you mean"):
        props.get("keyname")


def test_cloud_checked_values_need_a_cloud(props):
    with pytest.raises(UserError, match="no cloud is configured"):
        props.set_many([WORKER + "image=emi-0123abcd"])
    props.set_many([WORKER + "image="])  # empty means unset: nothing to ask the cloud


def test_secrets_are_masked_and_encrypted_at_rest(props, store):
    props.set_computed({COMPUTED: "hunter2-very-secret"})
    assert props.get(COMPUTED).value == MASK
    assert props.value(COMPUTED) == "hunter2-very-secret"
    with store.session() as s:
        raw = [r.value for r in s.scalars(select(PropertyValue))]
        hist = [(h.old_value, h.new_value) for h in s.scalars(select(PropertyChange))]
    assert raw and all("hunter2" not in v for v in raw)
    assert hist == [("", MASK)]
