"""slurm.conf as the head_node role renders it, in both of the engine's node modes.

Ansible itself runs the role's preflight (which loads the role's defaults and
vars, checks them and keeps them for the play) on local inventory hosts, and
renders roles/head_node/templates/slurm.conf.j2 with its template lookup. The
facts are given, so nothing is gathered and nothing depends on the test host;
nothing is changed either.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from ansible_cli import run_ansible

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(REPO, "roles", "head_node")
# What the role rendered for BASE before cloud nodes existed (ansible.builtin.template, commit 7dce7e0).
DYNAMIC_BEFORE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "head_node", "slurm.conf.dynamic")

# The engine's schema requires them; the role does not use them.
FLAVOR = {"flavor": "m1", "image": "worker"}
FACTS = {"os_family": "Debian", "virtualization_type": "container", "hostname": "head"}
RESOURCES = [
    {"name": "small", **FLAVOR, "cores": 2, "memory_mb": 2048, "max": 4, "features": [], "options": {}},
    {
        "name": "gpu",
        **FLAVOR,
        "cores": 8,
        "memory_mb": 32000,
        "max": 2,
        "features": ["gpu", "cuda"],
        "options": {"slurm_node_conf": {"Weight": 10, "Gres": "gpu:1"}},
    },
    {"name": "spare", **FLAVOR, "cores": 1, "memory_mb": 1024, "max": 0, "features": [], "options": {}},
]
BASE = {
    "head_node_cluster_name": "hpc",
    "head_node_slurmctld_host": "head",
    "head_node_cloud_resources": RESOURCES,
    "head_node_cloud_memory_reserve_mb": 512,
    "head_node_nodes": [{"name": "static[1-2]", "CPUs": 4, "RealMemory": 8000, "Feature": ["static"]}],
}
CLOUD = {**BASE, "head_node_cloud_nodes": "cloud", "head_node_cloud_node_prefix": "demo"}
POWER_SAVING = {
    "SlurmctldParameters": "enable_configless,cloud_reg_addrs,idle_on_node_suspend",
    "PrivateData": "cloud",
    "ResumeProgram": "/bin/true",
    "SuspendProgram": "/bin/true",
    "SuspendTime": "2592000",
    "ResumeTimeout": "630",
    "SuspendTimeout": "30",
    "ResumeRate": "0",
    "SuspendRate": "0",
    "SuspendExcNodes": "static[1-2]",
}
ENTITY_KEYS = ("NodeName", "NodeSet", "PartitionName")


LONG = "r" + "x" * 30  # the longest name the engine allows, for a cluster and a resource alike

# Scenarios whose slurm.conf is rendered.
RENDERED = {
    "default": BASE,
    "dynamic": {**BASE, "head_node_cloud_nodes": "dynamic"},
    "cloud": CLOUD,
    "cloud-default-prefix": {k: v for k, v in CLOUD.items() if k != "head_node_cloud_node_prefix"},
    # The engine's default max (10) applies, as the engine applies it.
    "cloud-default-max": {
        **CLOUD,
        "head_node_cloud_resources": [{k: v for k, v in RESOURCES[0].items() if k != "max"}],
    },
    "cloud-admin-override": {
        **CLOUD,
        "head_node_cloud_resume_timeout": 930,
        "head_node_slurm_config": {"SuspendTime": 3600, "ResumeRate": 5, "SuspendExcNodes": None},
    },
}
# Scenarios preflight must accept.
ACCEPTED = {
    "cloud-admin-override": RENDERED["cloud-admin-override"],
    "cloud-resume-timeout-65533": {**CLOUD, "head_node_cloud_resume_timeout": 65533},
}
# Scenarios preflight must refuse, with (part of) the message it must give.
REFUSED = {
    "mode": ({**BASE, "head_node_cloud_nodes": "powersave"}, "head_node_cloud_nodes must be the engine's wlm.nodes"),
    "resume-timeout-16-bit": ({**CLOUD, "head_node_cloud_resume_timeout": 65534}, "got '65534'. The playbooks set it"),
    "suspend-time": ({**CLOUD, "head_node_cloud_suspend_time": "INFINITE"}, "head_node_cloud_suspend_time becomes"),
    "prefix": (
        {**CLOUD, "head_node_cloud_node_prefix": "my_hpc"},
        "Got 'my_hpc' (its default is head_node_cluster_name)",
    ),
    "long-node-name": (
        {**CLOUD, "head_node_cloud_node_prefix": LONG, "head_node_cloud_resources": [{**RESOURCES[0], "name": LONG}]},
        f"its last cloud node, '{LONG}-{LONG}-4', has a name longer than a host name",
    ),
    "negative-max": (
        {**CLOUD, "head_node_cloud_resources": [{**RESOURCES[0], "max": -1}]},
        "resources[0].max: ",
    ),
    # A name the role's own pattern once let through and the engine refuses (too long).
    "engine-name-rule": (
        {**BASE, "head_node_cloud_resources": [{**RESOURCES[0], "name": LONG + "x"}]},
        "resources[0].name: ",
    ),
    "no-flavor": (
        {**BASE, "head_node_cloud_resources": [{k: v for k, v in RESOURCES[0].items() if k != "flavor"}]},
        "resources[0].flavor: ",
    ),
    "node-conf-state": (
        {**CLOUD, "head_node_cloud_resources": [{**RESOURCES[0], "options": {"slurm_node_conf": {"State": "IDLE"}}}]},
        "resources[0] 'small': options.slurm_node_conf must not set NodeName or State",
    ),
    "duplicate-resource": (
        {**BASE, "head_node_cloud_resources": [RESOURCES[0], RESOURCES[0]]},
        "resources[1].name: 'small' is used by another resource",
    ),
    "memory-reserve": (
        {**BASE, "head_node_cloud_memory_reserve_mb": 2048},
        "resources[0] 'small': memory_mb=2048 leaves nothing after the memory reserve (2048 MiB)",
    ),
    "private-data-removed": (
        {**CLOUD, "head_node_slurm_config": {"PrivateData": None}},
        "PrivateData with cloud (got '')",
    ),
    "power-saving-off": (
        {**CLOUD, "head_node_slurm_config": {"SuspendTime": "INFINITE"}},
        "not INFINITE (got 'INFINITE')",
    ),
}

PREFLIGHT = {
    "name": "Preflight of the role, its variables kept for the play",
    "ansible.builtin.include_role": {"name": "dcaas.cluster.head_node", "tasks_from": "preflight", "public": True},
}
REFUSAL = "{{ ansible_failed_result.msg | b64encode }}"


def run_playbook(tmp_path, hosts: dict[str, dict], tasks: list[dict]) -> dict[str, tuple[str, str]]:
    """Run tasks on the given local hosts (name: variables); return what each printed: name -> (tag, text).

    The tasks print "<TAG> <base64 text>": one token, whatever Ansible's output format.
    """
    common = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"hosts": {name: {**host_vars, **common} for name, host_vars in hosts.items()}}}
    # Facts as play variables: those outrank the (empty) fact cache, inventory variables do not.
    play = [
        {"name": "head_node", "hosts": "all", "gather_facts": False, "vars": {"ansible_facts": FACTS}, "tasks": tasks}
    ]
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory), encoding="utf-8")
    (tmp_path / "play.yml").write_text(json.dumps(play), encoding="utf-8")
    result = run_ansible("ansible-playbook", "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    # Within one host's result: the lazy match must not run on into the next
    # result line (a loop's "ok: [host] => (item=...)" prints no tag).
    printed = re.findall(
        r"ok: \[([\w-]+)\] => (?:(?!\n\S).)*?\b(CONFS|ACCEPTED|REFUSED) ([A-Za-z0-9+/=]+)", result.stdout, re.S
    )
    return {name: (tag, base64.b64decode(data).decode("utf-8")) for name, tag, data in printed}


@pytest.fixture(scope="module")
def confs(tmp_path_factory) -> dict[str, str]:
    """slurm.conf of every RENDERED scenario: the role's template through Ansible's template lookup,
    after the role's preflight has loaded its defaults and vars; a scenario's variables override them
    as extra variables would."""
    tasks = [
        PREFLIGHT,
        {
            "name": "Render slurm.conf for each scenario",
            "ansible.builtin.set_fact": {
                "_confs": "{{ _confs | default({}) | combine({item.key: lookup('ansible.builtin.template',"
                " slurm_conf_j2, template_vars=item.value)}) }}"
            },
            "loop": "{{ scenarios | dict2items }}",
            "loop_control": {"label": "{{ item.key }}"},
        },
        {"name": "Show them", "ansible.builtin.debug": {"msg": "CONFS {{ _confs | to_json | b64encode }}"}},
    ]
    host = {"scenarios": RENDERED, "slurm_conf_j2": os.path.join(ROLE, "templates", "slurm", "slurm.conf.j2")}
    tag, text = run_playbook(tmp_path_factory.mktemp("head_node"), {"render": host}, tasks)["render"]
    assert tag == "CONFS"
    return json.loads(text)


def settings(conf: str) -> dict[str, str]:
    """The Key=Value lines of slurm.conf, without the node, node set and partition lines."""
    pairs = (line.split("=", 1) for line in conf.splitlines() if re.match(r"^[A-Za-z]+=", line))
    return {key: value for key, value in pairs if key not in ENTITY_KEYS}


def node_lines(conf: str) -> list[str]:
    return [line for line in conf.splitlines() if line.startswith("NodeName=")]


@pytest.mark.parametrize("name", ["default", "dynamic"])
def test_dynamic_mode_renders_what_it_did_before_cloud_nodes(confs, name):
    conf = confs[name]
    with open(DYNAMIC_BEFORE, encoding="utf-8") as fh:
        assert conf == fh.read()
    assert node_lines(conf) == [
        "NodeName=static[1-2] CPUs=4 Feature=static RealMemory=8000",
        "NodeName=future-small CPUs=2 Feature=dcaas,dcaas_small RealMemory=1536 State=FUTURE",
        "NodeName=future-gpu CPUs=8 Feature=dcaas,dcaas_gpu,gpu,cuda RealMemory=31488 State=FUTURE",
        "NodeName=future-spare CPUs=1 Feature=dcaas,dcaas_spare RealMemory=512 State=FUTURE",
    ]
    assert (set(POWER_SAVING) - {"SlurmctldParameters"}) & set(settings(conf)) == set()
    assert settings(conf)["SlurmctldParameters"] == "enable_configless"
    assert "State=CLOUD" not in conf


def test_cloud_mode_lists_max_nodes_per_resource_named_as_the_engine_names_them(confs):
    conf = confs["cloud"]
    assert node_lines(conf) == [
        "NodeName=static[1-2] CPUs=4 Feature=static RealMemory=8000",
        "NodeName=demo-small-[1-4] CPUs=2 Feature=dcaas,dcaas_small RealMemory=1536 State=CLOUD",
        # The resource's slurm_node_conf, as the engine adds it to a worker's registration.
        "NodeName=demo-gpu-[1-2] CPUs=8 Feature=dcaas,dcaas_gpu,gpu,cuda Gres=gpu:1 RealMemory=31488 State=CLOUD"
        " Weight=10",
    ]
    assert "future-" not in conf


def test_cloud_nodes_take_the_engines_default_max(confs):
    assert node_lines(confs["cloud-default-max"])[1:] == [
        "NodeName=demo-small-[1-10] CPUs=2 Feature=dcaas,dcaas_small RealMemory=1536 State=CLOUD"
    ]


def test_cloud_node_prefix_defaults_to_the_cluster_name(confs):
    assert [line.split()[0] for line in node_lines(confs["cloud-default-prefix"])] == [
        "NodeName=static[1-2]",
        "NodeName=hpc-small-[1-4]",
        "NodeName=hpc-gpu-[1-2]",
    ]


def test_cloud_mode_turns_power_saving_on_and_changes_nothing_else(confs):
    cloud, dynamic = settings(confs["cloud"]), settings(confs["default"])
    assert {key: cloud.get(key) for key in POWER_SAVING} == POWER_SAVING
    assert {k: v for k, v in cloud.items() if k not in POWER_SAVING} == {
        k: v for k, v in dynamic.items() if k != "SlurmctldParameters"
    }


def test_the_admin_mapping_overrides_the_cloud_keys(confs):
    got = settings(confs["cloud-admin-override"])
    assert got["SuspendTime"] == "3600"
    assert got["ResumeRate"] == "5"
    assert got["ResumeTimeout"] == "930"
    assert "SuspendExcNodes" not in got


@pytest.mark.skipif(shutil.which("scontrol") is None, reason="needs Slurm's scontrol (slurm-client)")
def test_slurm_parses_the_cloud_nodes(confs, tmp_path):
    # Slurm's own parser, as the role's validate step runs it; no controller needed.
    (tmp_path / "slurm.conf").write_text(confs["cloud"], encoding="utf-8")
    result = subprocess.run(
        ["scontrol", "show", "hostnames", "demo-small-[1-4]"],
        env=dict(os.environ, SLURM_CONF=str(tmp_path / "slurm.conf")),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["demo-small-1", "demo-small-2", "demo-small-3", "demo-small-4"]


def test_preflight_accepts_cloud_mode_and_refuses_bad_input_naming_the_option(tmp_path):
    # One run for every scenario (one host each): Ansible spends about a second of CPU per host.
    tasks = [
        {
            "name": "Preflight",
            "block": [
                PREFLIGHT,
                {"name": "Passed", "ansible.builtin.debug": {"msg": "ACCEPTED {{ 'ok' | b64encode }}"}},
            ],
            "rescue": [{"name": "Refused", "ansible.builtin.debug": {"msg": f"REFUSED {REFUSAL}"}}],
        }
    ]
    hosts = {**ACCEPTED, **{name: role_vars for name, (role_vars, _message) in REFUSED.items()}}
    got = run_playbook(tmp_path, hosts, tasks)
    expected = {name: ("ACCEPTED", "ok") for name in ACCEPTED}
    expected.update({name: ("REFUSED", message) for name, (_vars, message) in REFUSED.items()})
    wrong = {
        name: got.get(name)
        for name, (tag, message) in expected.items()
        if name not in got or got[name][0] != tag or message not in got[name][1]
    }
    assert not wrong, wrong
