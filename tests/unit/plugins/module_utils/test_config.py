"""Config validation: every error names the field and the fix; defaults are filled."""

from __future__ import annotations

import json

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.config import ConfigError, load, parse

GOOD = {
    "cluster": "demo",
    "resources": [{"name": "small", "flavor": "m1.small", "image": "worker", "cores": 2, "memory_mb": 2048}],
}


def errors_of(data) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return info.value.errors


def test_defaults_are_filled():
    cfg = parse(GOOD)
    assert cfg.wlm_type == "slurm" and cfg.provider == "local" and cfg.wlm_nodes == "dynamic"
    assert cfg.timers.idle_timeout == 600 and cfg.limits.max_launches_per_cycle == 10
    assert (cfg.timers.prewarm, cfg.timers.quiet) == (60, 1200)
    r = cfg.resources[0]
    assert (r.min, r.max, r.spare, r.priority, r.accounts) == (0, 10, 1, 100, ())


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"cluster": "Demo_1"}, "cluster: 'Demo_1' is not a valid name"),
        ({"wlm": {"type": "pbs"}}, "wlm.type: 'pbs' is not one of slurm, gridengine, torque"),
        ({"wlm": {"nodes": "static"}}, "wlm.nodes: 'static' is not one of dynamic, cloud"),
        ({"timers": {"prewarm": -1}}, "timers.prewarm: must be at least 0, got -1"),
        ({"timers": {"quiet": -1}}, "timers.quiet: must be at least 0, got -1"),
        ({"cloud": {"provider": "aws"}}, "cloud.provider: 'aws' is not one of local, openstack"),
        ({"timers": {"idle_timeout": "soon"}}, "timers.idle_timeout: expected an integer, got 'soon'"),
        ({"timers": {"idle_timeout": -5}}, "timers.idle_timeout: must be at least 0, got -5"),
        ({"timers": {"backoff_initial": 900, "backoff_max": 60}}, "timers.backoff_initial: must not be above"),
        ({"limits": {"max_launches": 3}}, "limits.max_launches: unknown field; known fields here are"),
        ({"resources": []}, "resources: at least one resource is needed"),
        ({"resources": "small"}, "resources: expected a list"),
    ],
)
def test_top_level_errors_name_the_field(patch, expected):
    assert any(expected in e for e in errors_of({**GOOD, **patch})), errors_of({**GOOD, **patch})


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"flavor": None}, "resources[0].flavor: required field is missing"),
        ({"cores": None}, "resources[0].cores: required field is missing; give the size of flavor 'm1.small'"),
        ({"min": 5, "max": 2}, "resources[0]: min=5 is above max=2; lower min or raise max"),
        ({"accounts": "chem"}, "resources[0].accounts: expected a list"),
        ({"flavour": "x"}, "resources[0].flavour: unknown field"),
        ({"name": "Small"}, "resources[0].name: 'Small' is not a valid name"),
    ],
)
def test_resource_errors_name_the_field(patch, expected):
    res = {**GOOD["resources"][0], **patch}
    res = {k: v for k, v in res.items() if v is not None}
    errs = errors_of({**GOOD, "resources": [res]})
    assert any(expected in e for e in errs), errs


def test_duplicate_resource_names():
    errs = errors_of({**GOOD, "resources": GOOD["resources"] * 2})
    assert any("resources[1].name: 'small' is used by another resource" in e for e in errs)


def test_all_problems_are_reported_at_once():
    errs = errors_of({"cluster": "X", "resources": [{"name": "a"}], "bogus": 1})
    assert len(errs) >= 5


def test_load_json_and_yaml(tmp_path):
    j = tmp_path / "engine.json"
    j.write_text(json.dumps(GOOD))
    y = tmp_path / "engine.yml"
    y.write_text("cluster: demo\nresources:\n  - {name: small, flavor: m1, image: w, cores: 2, memory_mb: 1024}\n")
    assert load(str(j)).cluster == load(str(y)).cluster == "demo"


def test_load_reports_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load(str(bad))
