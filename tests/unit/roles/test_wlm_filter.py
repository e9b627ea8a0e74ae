"""The wlm_resource_nodes and engine_features filters: what the head lists for the engine's
resources is what the engine's adapter and naming rules make of them."""

from __future__ import annotations

import os
import re
import shlex

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.dcaas.cluster.plugins.filter.wlm import engine_features, wlm_resource_nodes
from ansible_collections.dcaas.cluster.plugins.module_utils import naming
from ansible_collections.dcaas.cluster.plugins.module_utils.config import parse
from ansible_collections.dcaas.cluster.plugins.module_utils.hostlist import expand
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import Runner
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.slurm import SlurmManager

FUZZ = int(os.environ.get("DCAAS_FUZZ_EXAMPLES", "150"))
RESOURCES = [
    {"name": "small", "flavor": "m1", "image": "w", "cores": 2, "memory_mb": 2048, "max": 4},
    {
        "name": "gpu",
        "flavor": "g1",
        "image": "w",
        "cores": 8,
        "memory_mb": 32000,
        "max": 1,
        "features": ["gpu", "cuda"],
        "options": {"slurm_node_conf": {"Weight": 10, "Gres": "gpu:1"}},
    },
]
RESERVE = 512


def engine(nodes: str = "dynamic"):
    return parse(
        {
            "cluster": "demo",
            "wlm": {"nodes": nodes, "options": {"memory_reserve_mb": RESERVE, "conf_server": "head"}},
            "resources": RESOURCES,
        }
    )


def registration(resource, key_file: str) -> dict[str, str]:
    """The Key=Value pairs the Slurm adapter has a new dynamic worker of ``resource`` register with."""
    options = {"conf_server": "head", "munge_key_file": key_file, "memory_reserve_mb": RESERVE}
    join = SlurmManager(Runner(), options, cluster="demo").join_config(resource, "demo-x-1")
    (default,) = [f for f in join["write_files"] if f["path"] == "/etc/default/slurmd"]
    value = re.search(r'SLURMD_OPTIONS="(.*)"', default["content"]).group(1)
    argv = shlex.split(value)
    return dict(pair.split("=", 1) for pair in argv[argv.index("--conf") + 1].split())


def as_slurm(node: dict) -> dict[str, str]:
    return {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in node.items() if k not in ("name", "State")}


@pytest.fixture
def key_file(tmp_path) -> str:
    path = tmp_path / "munge.key"
    path.write_bytes(b"k" * 64)
    return str(path)


def test_placeholders_carry_what_the_adapter_registers_a_worker_with(key_file):
    config = engine()
    nodes = wlm_resource_nodes(RESOURCES, cluster="demo", memory_reserve_mb=RESERVE)
    assert [(n["name"], n["State"]) for n in nodes] == [("future-small", "FUTURE"), ("future-gpu", "FUTURE")]
    for node, resource in zip(nodes, config.resources):
        expected = registration(resource, key_file)
        # A placeholder never runs a job: its features and size are what matter, not Weight or Gres.
        assert as_slurm(node) == {k: expected[k] for k in ("Feature", "CPUs", "RealMemory")}


def test_cloud_nodes_are_the_instances_the_engine_starts_and_register_alike(key_file):
    config = engine("cloud")
    nodes = wlm_resource_nodes(RESOURCES, cluster="demo", nodes="cloud", memory_reserve_mb=RESERVE)
    for node, resource in zip(nodes, config.resources):
        assert node["State"] == "CLOUD"
        names = expand(node["name"])
        assert names == [naming.cloud_node_name("demo", resource.name, n) for n in range(1, resource.max + 1)]
        assert {naming.cloud_node_resource(n, "demo", {"small", "gpu"}) for n in names} == {resource.name}
        assert as_slurm(node) == registration(resource, key_file)


def test_a_resource_with_no_cloud_nodes_gets_no_line():
    assert wlm_resource_nodes([{**RESOURCES[0], "max": 0}], cluster="demo", nodes="cloud") == []


@pytest.mark.parametrize(
    ("resources", "kwargs", "message"),
    [
        (
            [{**RESOURCES[0], "memory_mb": 512}],
            {"memory_reserve_mb": 512},
            "resources[0] 'small': memory_mb=512 leaves",
        ),
        ([{**RESOURCES[0], "cores": 0}], {}, "resources[0] 'small': cores must be a whole number of 1 or more"),
        ([{"cores": 1}], {}, "resources[0]: is not a mapping with a name"),
        (["small"], {}, "resources[0]: is not a mapping"),
        ("small", {}, "resources: must be a list"),
        (RESOURCES, {"nodes": "powersave"}, "nodes: must be the engine's wlm.nodes"),
        (RESOURCES, {"wlm": "lsf"}, "wlm: 'lsf' is not one of slurm"),
        (RESOURCES, {"memory_reserve_mb": -1}, "memory_reserve_mb must be a whole number of 0 or more"),
        (
            [{**RESOURCES[0], "options": {"slurm_node_conf": {"nodename": "x"}}}],
            {"nodes": "cloud"},
            "resources[0] 'small': options.slurm_node_conf must not set NodeName or State",
        ),
        ([{**RESOURCES[0], "options": {"slurm_node_conf": "Weight=1"}}], {"nodes": "cloud"}, "must be a mapping"),
        (
            [{**RESOURCES[0], "name": "r" * 31, "max": 100}],
            {"nodes": "cloud", "cluster": "c" * 31},
            "has a name longer than a host name may be (63 characters)",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_resource_and_field(resources, kwargs, message):
    with pytest.raises(AnsibleFilterError) as err:
        wlm_resource_nodes(resources, **{"cluster": "demo", **kwargs})
    assert message in str(err.value)


def test_engine_features_are_the_base_and_one_per_resource():
    assert engine_features(RESOURCES) == sorted({*naming.worker_features("small"), *naming.worker_features("gpu")})
    assert "gpu" not in engine_features(RESOURCES)  # a resource's own features are the admin's to share
    with pytest.raises(AnsibleFilterError, match="resources: must be a list"):
        engine_features({"name": "small"})


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70_000),
    st.text(max_size=6),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
NAMES = st.one_of(st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True), VALUES)
RESOURCE = st.one_of(
    VALUES,
    st.fixed_dictionaries(
        {
            "name": NAMES,
            "cores": st.one_of(st.integers(0, 64), VALUES),
            "memory_mb": st.one_of(st.integers(0, 9000), VALUES),
        },
        optional={
            "max": st.one_of(st.integers(0, 50), VALUES),
            "features": st.one_of(st.lists(st.from_regex(r"[a-z]{1,5}", fullmatch=True), max_size=2), VALUES),
            "options": st.one_of(st.fixed_dictionaries({"slurm_node_conf": VALUES}), VALUES),
        },
    ),
)


@settings(max_examples=FUZZ, deadline=None)
@given(
    resources=st.lists(RESOURCE, max_size=3),
    nodes=st.sampled_from(["dynamic", "cloud"]),
    reserve=st.one_of(st.integers(0, 4096), VALUES),
)
def test_any_input_gives_the_engines_nodes_or_an_error_naming_the_field(resources, nodes, reserve):
    try:
        out = wlm_resource_nodes(resources, cluster="demo", nodes=nodes, memory_reserve_mb=reserve)
    except AnsibleFilterError as exc:
        assert re.match(r"(resources(\[\d+\])?|memory_reserve_mb)[ :]", str(exc)), str(exc)
        assert len(str(exc)) < 400
        return
    listed = [r for r in resources if nodes == "dynamic" or int(r.get("max") or 0) > 0]
    assert len(out) == len(listed)
    for node, resource in zip(out, listed):
        assert node["Feature"][:2] == naming.worker_features(resource["name"])[:2]
        assert node["CPUs"] >= 1
        assert node["RealMemory"] >= 1
        if nodes == "cloud":
            assert expand(node["name"])[-1] == naming.cloud_node_name("demo", resource["name"], int(resource["max"]))
