"""The naming rules the policy, the observer, the adapters and the roles share."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.dcaas.cluster.plugins.module_utils import naming


def test_worker_name_is_a_hostname_and_unique() -> None:
    name = naming.worker_name("c" * 40, "r" * 40)
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9-]+", name) and not name.startswith("-")
    assert name.startswith(naming.node_prefix("c" * 40))
    assert naming.worker_name("demo", "small") != naming.worker_name("demo", "small")


def test_cloud_node_names_round_trip() -> None:
    assert naming.cloud_node_name("demo", "big-mem", 3) == "demo-big-mem-3"
    assert naming.cloud_node_resource("demo-big-mem-3", "demo", {"big-mem"}) == "big-mem"
    assert naming.cloud_node_range("demo", "big-mem", 4) == "demo-big-mem-[1-4]"
    assert naming.cloud_node_range("demo", "x", 1) == "demo-x-1"


def test_names_that_are_not_cloud_nodes() -> None:
    res = {"small"}
    for name in ("other-small-1", "demo-small-", "demo-small-a", "demo-large-1", "demo-small-1x", "demo-", ""):
        assert naming.cloud_node_resource(name, "demo", res) is None, name


def test_features() -> None:
    assert naming.worker_features("gpu", ("a100",)) == ["dcaas", "dcaas_gpu", "a100"]
    assert naming.resource_feature("x") == "dcaas_x"


def test_drain_reason_prefixed_once_and_one_line() -> None:
    once = naming.drain_reason("idle for\n600 s")
    assert once == "dcaas: idle for 600 s"
    assert naming.drain_reason(once) == once
    assert naming.drained_by_engine(once)
    assert not naming.drained_by_engine("admin: bad DIMM")
    assert not naming.drained_by_engine(None)
    assert not naming.drained_by_engine("")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=30), st.frozensets(st.text(max_size=10), max_size=4))
def test_cloud_node_resource_never_raises_and_is_consistent(name, cluster, resources) -> None:
    got = naming.cloud_node_resource(name, cluster, resources)
    if got is not None:
        assert got in resources
        assert name.startswith(f"{cluster}-{got}-") and name.rsplit("-", 1)[1].isdigit()
