"""Property parsers: typed values out, or a ValueError saying what is allowed — never anything else."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eucadb.properties import types as t
from eucadb.properties.registry import PROPERTIES

ALL_TYPES = [p.type for p in PROPERTIES]


@settings(max_examples=300, deadline=None)
@given(raw=st.text(max_size=200), index=st.integers(min_value=0, max_value=len(ALL_TYPES) - 1))
def test_parsers_only_return_values_or_raise_valueerror(raw, index):
    ptype = ALL_TYPES[index]
    try:
        value = ptype.parse(raw)
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        # whatever was accepted must survive the store round trip and re-parse to itself
        assert ptype.load(ptype.dump(value)) == value
        assert ptype.parse(ptype.format(value)) == value


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(v=4), st.integers(min_value=0, max_value=32))
def test_cidr_accepts_exactly_the_valid_networks(addr, prefix):
    import ipaddress
    raw = f"{addr}/{prefix}"
    try:
        expected = str(ipaddress.ip_network(raw, strict=True))
    except ValueError:
        with pytest.raises(ValueError):
            t.Cidr().parse(raw)
    else:
        assert t.Cidr().parse(raw) == expected


@pytest.mark.parametrize("raw", ["10.0.0.0/33", "10.0.0.1/8", "10.0.0.0", "300.1.1.1/32", "x/1"])
def test_bad_cidrs(raw):
    with pytest.raises(ValueError, match="CIDR"):
        t.Cidr().parse(raw)


def test_int_bounds_and_list_dedup():
    size = t.Int(minimum=1, maximum=10)
    assert size.parse(" 7 ") == 7
    for bad in ["0", "11", "-3", "1.5", "", "1e3", "٣"]:
        with pytest.raises(ValueError, match="1..10"):
            size.parse(bad)
    assert t.CidrList().parse("10.0.0.0/8, 10.0.0.0/8,192.0.2.1/32") == ["10.0.0.0/8", "192.0.2.1/32"]
    with pytest.raises(ValueError):
        t.CidrList().parse("10.0.0.0/8,,")


def test_bool_and_enum():
    assert t.Bool().parse("Yes") is True and t.Bool().parse("off") is False
    with pytest.raises(ValueError, match="true or false"):
        t.Bool().parse("maybe")
    with pytest.raises(ValueError, match="one of a, b"):
        t.Enum(choices=("a", "b")).parse("c")
