"""The event model: valid events parse, every kind of bad input is one clear InvalidEvent, never a crash."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eucadb.services.reporting.events import (MAX_EVENTS, RESOURCE_TYPES, EventKind, InvalidEvent, parse_event,
                                              parse_events)
from reporting_scenario import ev

GOOD = ev("2026-01-01T12:00:00+02:00", "acct-1", "volume", "vol-1", "create", size_gib=10)


def test_valid_event_is_normalised_to_utc():
    e = parse_event(GOOD)
    assert e.ts == datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
    assert (e.account, e.resource_type, e.resource_id, e.event) == ("acct-1", "volume", "vol-1", EventKind.CREATE)
    assert e.attributes == {"size_gib": 10}
    assert parse_event(e.as_dict()) == e


def test_delete_needs_no_attributes_and_every_type_has_one():
    assert parse_event(ev("2026-01-01T00:00:00Z", "a", "instance", "i-1", "delete")).attributes == {}
    assert set(RESOURCE_TYPES) == {"instance", "volume", "snapshot", "address", "bucket"}


@pytest.mark.parametrize("change, message", [
    ({"ts": "2026-01-01T00:00:00"}, "has no timezone"),
    ({"ts": "yesterday"}, "not an ISO 8601 time"),
    ({"ts": 1767225600}, "must be an ISO 8601 string"),
    ({"account": ""}, "account is required"),
    ({"account": "a\x00b"}, "printable"),
    ({"resource_id": "x" * 300}, "at most 256"),
    ({"resource_type": "vm"}, "resource_type='vm' is not one of instance, volume"),
    ({"event": "resize"}, "event='resize' is not one of create, usage, delete"),
    ({"attributes": {"size_gib": -1}}, "size_gib=-1 must be an integer"),
    ({"attributes": {"size_gib": True}}, "size_gib=True must be an integer"),
    ({"attributes": {"size_gib": 1.5}}, "size_gib=1.5 must be an integer"),
    ({"attributes": {"sizegib": 1}}, "unknown attribute(s) 'sizegib' for volume; allowed: size_gib"),
    ({"attributes": {}}, "create of a volume needs attribute size_gib"),
    ({"attributes": [1]}, "attributes must be a JSON object"),
    ({"colour": "red"}, "unknown field(s) 'colour'"),
    ({"resource_type": "address", "attributes": {"ip": "10.0.0.300"}}, "must be an IPv4 or IPv6 address"),
    ({"resource_type": "instance", "attributes": {"instance_type": ""}}, "instance_type='' must be"),
])
def test_bad_events_name_the_problem(change, message):
    with pytest.raises(InvalidEvent, match="^event 0: .*" + re.escape(message)):
        parse_events([{**GOOD, **change}])


def test_batch_shape_errors():
    with pytest.raises(InvalidEvent, match="JSON list"):
        parse_events("nope")
    with pytest.raises(InvalidEvent, match=f"at most {MAX_EVENTS}"):
        parse_events([GOOD] * (MAX_EVENTS + 1))
    with pytest.raises(InvalidEvent, match="event 1: "):
        parse_events([GOOD, 7])
    assert len(parse_events(GOOD)) == 1      # a single object is a batch of one


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3),
                           max_leaves=8)
field_values = {"ts": st.one_of(st.sampled_from(["2026-01-01T00:00:00Z", "0001-01-01T00:00:00+23:59",
                                                  "9999-12-31T23:59:59-23:59"]), json_values),
                "account": st.one_of(st.text(max_size=5), json_values),
                "resource_type": st.one_of(st.sampled_from(list(RESOURCE_TYPES)), json_values),
                "resource_id": st.one_of(st.text(max_size=5), json_values),
                "event": st.one_of(st.sampled_from([k.value for k in EventKind]), json_values),
                "attributes": st.one_of(st.fixed_dictionaries({}, optional={
                    "size_gib": json_values, "instance_type": json_values, "ip": json_values,
                    "bytes": json_values}), json_values)}
events = st.fixed_dictionaries({}, optional={**field_values, "extra": json_values})


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(events, max_size=4), json_values))
def test_fuzz_parser_only_ever_raises_invalid_event(docs):
    try:
        parsed = parse_events(docs)
    except InvalidEvent as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for e in parsed:
        assert e.ts.tzinfo is not None and e.resource_type in RESOURCE_TYPES
