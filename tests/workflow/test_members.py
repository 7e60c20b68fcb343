"""Member naming and placement: pure, so checked without a cloud."""
from __future__ import annotations

from eucadb.workflow.members import Member, member_of_slot, place, replica_indexes
from eucadb.workflow.replication_sql import standby_names


def test_member_zero_keeps_the_single_instance_names_so_an_existing_volume_is_kept():
    m0, m2 = Member("abcd1234", 0), Member("abcd1234", 2)
    assert (m0.group, m0.volume) == ("eucadb-abcd1234-db", "eucadb-abcd1234-data")
    assert (m2.group, m2.volume, m2.slot, m2.name) == ("eucadb-abcd1234-db-m2", "eucadb-abcd1234-data-m2",
                                                       "eucadb_member_2", "m2")
    assert {"Key": "eucadb:member", "Value": "2"} in m2.tags(m2.group)
    assert member_of_slot(m2.slot) == 2 and member_of_slot("someone_else") is None


def test_replicas_are_the_lowest_indexes_that_are_not_the_primary():
    assert replica_indexes(0, 0) == []
    assert replica_indexes(0, 2) == [1, 2]
    assert replica_indexes(1, 2) == [0, 2]     # after a failover to member 1


def test_replicas_go_to_zones_other_than_the_primarys():
    zones = ["one-a", "one-b", "one-c"]
    assert place("one-a", zones, [1, 2]) == {1: "one-b", 2: "one-c"}
    assert place("one-b", zones, [1, 2, 3]) == {1: "one-a", 2: "one-c", 3: "one-a"}
    assert place("one-a", ["one-a"], [1]) == {1: "one-a"}    # one zone: no choice


def test_synchronous_standby_names_follow_the_members():
    assert standby_names(["m2", "m1"], True) == 'ANY 1 ("m1", "m2")'
    assert standby_names(["m1"], False) == "" and standby_names([], True) == ""
