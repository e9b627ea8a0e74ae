"""The gridengine filters: the Grid Engine objects the head_node role makes are the ones the
adapter itself writes, and the role changes only what dcaas decides, once."""

from __future__ import annotations

import os

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.dcaas.cluster.plugins.filter.gridengine import (
    gridengine_changes,
    gridengine_host_objects,
    gridengine_listed,
    gridengine_objects,
)
from ansible_collections.dcaas.cluster.plugins.module_utils import naming
from ansible_collections.dcaas.cluster.plugins.module_utils.config import parse
from ansible_collections.dcaas.cluster.plugins.module_utils.model import WlmNode
from ansible_collections.dcaas.cluster.plugins.module_utils.observe import merge
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.gridengine import GridEngineManager

FUZZ = int(os.environ.get("DCAAS_FUZZ_EXAMPLES", "100"))
FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "gridengine")
ENGINE = {
    "cluster": "demo",
    "wlm": {"type": "gridengine", "options": {"qmaster": "demo-head", "parallel_environments": ["mpi", "smp"]}},
    "cloud": {"provider": "local"},
    "resources": [
        {"name": "small", "flavor": "m1", "image": "w", "cores": 2, "memory_mb": 2048, "max": 4},
        {"name": "chem", "flavor": "m1", "image": "w", "cores": 2, "memory_mb": 2048, "accounts": ["chem", "bio"]},
    ],
}
SCHEDULER = {"schedule_interval": "0:0:2", "queue_sort_method": "seqno"}


def fixture(name: str) -> str:
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as fh:
        return fh.read()


def by_name(objects: list[dict]) -> dict[str, dict]:
    return {f"{o['kind']}:{o['name']}": o for o in objects}


def shown(obj: dict, text: str | None) -> dict:
    """The result of the role's 'show' loop for one object: skipped when it does not exist."""
    return {"item": obj, "skipped": True} if text is None else {"item": obj, "rc": 0, "stdout": text}


def test_queues_are_the_adapters_own_text():
    objects = by_name(gridengine_objects(ENGINE)["objects"])
    cfg = parse(ENGINE)
    manager = GridEngineManager(None, cfg.wlm_options, cluster="demo")
    for res in cfg.resources:
        assert objects[f"queue:demo_{res.name}.q"]["config"] == manager.queue_config(res)
        assert objects[f"queue:demo_{res.name}.q"]["add"] == "-Aq"


def test_every_object_comes_after_what_it_names():
    kinds = [o["kind"] for o in gridengine_objects(ENGINE, scheduler_config=SCHEDULER)["objects"]]
    assert kinds == ["scheduler", "project", "project", "pe", "pe"] + ["exechost", "hostgroup"] * 2 + [
        "hostgroup",
        "queue",
        "queue",
    ]
    names = [o["name"] for o in gridengine_objects(ENGINE)["objects"]]
    assert names.index("@demo_drained") < names.index("demo_small.q")
    assert {"bio", "chem"} <= set(names)


def test_pe_slots_per_host_are_a_workers_cores_only_when_all_resources_agree():
    same = by_name(gridengine_objects(ENGINE)["objects"])
    assert "allocation_rule 2\n" in same["pe:mpi"]["config"]
    mixed = {**ENGINE, "resources": [*ENGINE["resources"], {**ENGINE["resources"][0], "name": "big", "cores": 8}]}
    assert "allocation_rule $pe_slots\n" in by_name(gridengine_objects(mixed)["objects"])["pe:smp"]["config"]
    site = by_name(gridengine_objects(ENGINE, pe_config={"allocation_rule": "$fill_up", "pe_name": "x"})["objects"])
    assert "allocation_rule $fill_up\n" in site["pe:mpi"]["config"]
    assert "pe_name mpi\n" in site["pe:mpi"]["config"]


def test_placeholders_fill_each_host_group_and_the_engine_ignores_them():
    result = gridengine_objects(ENGINE)
    objects = by_name(result["objects"])
    assert result["placeholders"] == [
        {"name": "future-small", "address": "192.0.2.1"},
        {"name": "future-chem", "address": "192.0.2.2"},
    ]
    assert "hostlist future-small\n" in objects["hostgroup:@demo_small"]["config"]
    assert "hostlist NONE\n" in objects["hostgroup:@demo_drained"]["config"]
    assert not any(p["name"].startswith(naming.node_prefix("demo")) for p in result["placeholders"])
    # What the adapter reports for a placeholder: registered, never heard from.
    observed = merge([], [WlmNode(name="future-small", state="unknown", cores=2)], [], parse(ENGINE).resources, "demo")
    assert observed.nodes == () and observed.stale_wlm_nodes == ()
    empty = by_name(gridengine_objects(ENGINE, placeholders=False)["objects"])
    assert "hostlist NONE\n" in empty["hostgroup:@demo_small"]["config"]
    assert not [k for k in empty if k.startswith("exechost:")]


@pytest.mark.parametrize(
    ("engine", "kwargs", "message"),
    [
        ({**ENGINE, "wlm": {"type": "slurm"}}, {}, "wlm.type: must be 'gridengine' here"),
        ({**ENGINE, "cluster": "future"}, {}, "would make the placeholder hosts"),
        ({**ENGINE, "resources": []}, {}, "resources: at least one resource is needed"),
        (
            {**ENGINE, "wlm": {**ENGINE["wlm"], "options": {"parallel_environments": "mpi"}}},
            {},
            "parallel_environments",
        ),
        (ENGINE, {"pe_config": {"slots": "1\nallocation_rule 1"}}, "pe_config: 'slots' must have a one-line"),
        (ENGINE, {"scheduler_config": ["schedule_interval"]}, "scheduler_config: must be a mapping"),
        ({**ENGINE, "wlm": {**ENGINE["wlm"], "options": {"parallel_environments": ["a b"]}}}, {}, "not a Grid Engine"),
    ],
)
def test_bad_input_is_refused_naming_the_field(engine, kwargs, message):
    with pytest.raises(AnsibleFilterError) as err:
        gridengine_objects(engine, **kwargs)
    assert message in str(err.value)


def test_missing_objects_are_added_and_existing_ones_keep_the_sites_keys():
    objects = gridengine_objects(ENGINE, scheduler_config=SCHEDULER)["objects"]
    site_queue = fixture("qconf_sq_small.q.txt").replace("small.q", "demo_small.q").replace("@small", "@demo_small")
    site_queue = site_queue.replace("rerun                 FALSE", "rerun                 TRUE")
    texts = {
        "scheduler:global": fixture("qconf_ssconf.txt"),
        "queue:demo_small.q": site_queue,
        "hostgroup:@demo_small": "group_name @demo_small\nhostlist demo-small-0a1b2c\n",
    }
    changes = by_name(gridengine_changes([shown(o, texts.get(f"{o['kind']}:{o['name']}")) for o in objects]))
    assert {k: c["action"] for k, c in changes.items() if c["action"] == "modify"} == {
        "scheduler:global": "modify",
        "queue:demo_small.q": "modify",
        "hostgroup:@demo_small": "modify",
    }
    sconf = changes["scheduler:global"]["config"]
    assert "schedule_interval 0:0:2\n" in sconf and "queue_sort_method seqno\n" in sconf
    assert "halftime 168\n" in sconf  # every other key as it was
    queue = changes["queue:demo_small.q"]["config"]
    assert "rerun TRUE\n" in queue and "pe_list mpi smp\n" in queue and "seq_no 2000100\n" in queue
    # Host group members are only ever added: the engine's workers stay.
    assert (
        changes["hostgroup:@demo_small"]["config"]
        == "group_name @demo_small\nhostlist demo-small-0a1b2c future-small\n"
    )
    assert changes["queue:demo_chem.q"]["action"] == "add"
    assert changes["queue:demo_chem.q"]["config"] == by_name(objects)["queue:demo_chem.q"]["config"]


def test_a_second_pass_changes_nothing():
    objects = gridengine_objects(ENGINE, scheduler_config=SCHEDULER)["objects"]
    first = gridengine_changes(
        [shown(o, fixture("qconf_ssconf.txt") if o["kind"] == "scheduler" else None) for o in objects]
    )
    written = {f"{c['kind']}:{c['name']}": c["config"] for c in first}
    # qconf prints what it was given, aligned in columns.
    aligned = {
        k: "".join(f"{line.split(' ', 1)[0]:<20}{line.split(' ', 1)[1]}\n" for line in v.splitlines())
        for k, v in written.items()
    }
    assert gridengine_changes([shown(o, aligned[f"{o['kind']}:{o['name']}"]) for o in objects]) == []


def test_the_scheduler_must_exist_and_a_failed_qconf_fails():
    (scheduler,) = gridengine_objects(ENGINE, scheduler_config=SCHEDULER)["objects"][:1]
    with pytest.raises(AnsibleFilterError, match="must exist"):
        gridengine_changes([shown(scheduler, None)])
    with pytest.raises(AnsibleFilterError, match="denied"):
        gridengine_changes([{"item": scheduler, "rc": 1, "stdout": "", "stderr": "denied: host is no admin host"}])


def test_lists_read_none_defined_as_empty_and_other_failures_as_errors():
    ok = {"item": "-sql", "rc": 0, "stdout": "all.q\ndemo_small.q\n"}
    empty = {"item": "-sprjl", "rc": 1, "stdout": "", "stderr": "no project list defined\n"}
    assert gridengine_listed([ok, empty]) == {"-sql": ["all.q", "demo_small.q"], "-sprjl": []}
    with pytest.raises(AnsibleFilterError, match="unable to contact qmaster"):
        gridengine_listed([{"item": "-sql", "rc": 1, "stderr": "error: unable to contact qmaster"}])


def test_a_static_host_joins_its_group_and_names_are_checked():
    host, group = gridengine_host_objects("node1", "@demo_small")
    assert host["config"].startswith("hostname node1\n") and host["add"] == "-Ae" and host["modify"] is None
    assert group["config"] == "group_name @demo_small\nhostlist node1\n" and group["own"] == ["hostlist"]
    for name, hostgroup in (("n*", "@g"), ("node1", "g"), ("future-small", "@g"), ("a,b", "@g")):
        with pytest.raises(AnsibleFilterError):
            gridengine_host_objects(name, hostgroup)


KEYS = st.sampled_from(["hostlist", "seq_no", "slots", "pe_list", "projects", "rerun", "load_thresholds", "qname"])
VALUES = st.text(alphabet="abc@_.,0123 ", min_size=1, max_size=12).filter(lambda v: v.strip())


@settings(max_examples=FUZZ, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_whatever_is_there_one_change_makes_it_right(have):
    objects = gridengine_objects(ENGINE)["objects"]
    queue = by_name(objects)["queue:demo_small.q"]
    text = "".join(f"{k} {v}\n" for k, v in have.items())
    changes = gridengine_changes([shown(queue, text)])
    after = changes[0]["config"] if changes else text
    assert gridengine_changes([shown(queue, after)]) == []


@settings(max_examples=FUZZ, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.text(max_size=20),
        st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=5)), max_size=3),
    )
)
def test_malformed_results_are_refused_with_a_message(results):
    with pytest.raises(AnsibleFilterError):
        gridengine_changes(results if results != [] else [{}])
    with pytest.raises(AnsibleFilterError):
        gridengine_listed(results if results != [] else [{}])
