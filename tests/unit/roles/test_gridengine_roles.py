"""The head_node and worker roles with head_node_wlm / worker_wlm gridengine, as Ansible runs
their preflight on local inventory hosts (nothing is changed): what the head makes in Grid
Engine is the gridengine_objects filter's answer for the engine's resources, the native units
are what Grid Engine 8.1.9 needs, and bad input is refused naming the option."""

from __future__ import annotations

import json
import os

from test_head_node_slurm_conf import REFUSAL, REPO, run_playbook

from ansible_collections.dcaas.cluster.plugins.filter.gridengine import gridengine_objects

RESOURCES = [{"name": "small", "flavor": "m1", "image": "w", "cores": 2, "memory_mb": 2048, "max": 4}]
OPTIONS = {"qmaster": "head", "parallel_environments": ["mpi"]}
HEAD = {
    "head_node_wlm": "gridengine",
    "head_node_cloud_node_prefix": "demo",
    "head_node_cloud_resources": RESOURCES,
    "head_node_gridengine_options": OPTIONS,
}
WORKER = {"worker_wlm": "gridengine", "worker_gridengine_qmaster": "head", "worker_gridengine_hostgroup": "@demo_small"}
UNITS = {
    "head_unit": "/head_node/templates/gridengine/gridengine-master.service.j2",
    "worker_unit": "/worker/templates/gridengine/gridengine-exec.service.j2",
}
ROLES = {"head": "dcaas.cluster.head_node", "worker": "dcaas.cluster.worker"}

ACCEPTED = {
    "head": ("head", HEAD),
    "worker": ("worker", {**WORKER, "common_gridengine_qmaster_host": "head"}),
    "bake": ("worker", {"worker_wlm": "gridengine", "worker_bake": True}),
}
REFUSED = {
    "head-cloud-nodes": ("head", {**HEAD, "head_node_cloud_nodes": "cloud"}, "head_node_cloud_nodes must be 'dynamic'"),
    "head-no-resources": (
        "head",
        {**HEAD, "head_node_cloud_resources": []},
        "must list the engine's resources (got 0)",
    ),
    "head-fqdn-qmaster": (
        "head",
        {**HEAD, "head_node_gridengine_qmaster": "head.example.org"},
        "got 'head.example.org'",
    ),
    "head-bad-option": (
        "head",
        {**HEAD, "head_node_gridengine_options": {"parallel_environments": "mpi"}},
        "wlm.options.parallel_environments",
    ),
    "worker-no-group": ("worker", {**WORKER, "worker_gridengine_hostgroup": ""}, "worker_gridengine_hostgroup"),
    "worker-unknown-wlm": ("worker", {**WORKER, "worker_wlm": "torque"}, "worker_wlm is 'torque'"),
}


def preflight(role: str) -> dict:
    return {
        "name": "Preflight",
        "ansible.builtin.include_role": {"name": ROLES[role], "tasks_from": "preflight", "public": True},
        "when": f"role == '{role}'",
    }


def test_preflight_and_what_the_roles_render(tmp_path):
    show = {
        "head": "{{ {'objects': _head_node_gridengine.objects, 'hosts': _head_node_etc_hosts_extra,"
        " 'debconf': _head_node_debconf, 'port': _head_node_port,"
        " 'unit': lookup('ansible.builtin.template', role_dir ~ head_unit)}"
        " | to_json | b64encode }}",
        "worker": "{{ {'debconf': _worker_debconf, 'service': _worker_service,"
        " 'unit': lookup('ansible.builtin.template', role_dir ~ worker_unit)}"
        " | to_json | b64encode }}",
    }
    tasks = [
        {
            "name": "Preflight",
            "block": [
                preflight("head"),
                preflight("worker"),
                {
                    "name": "Passed",
                    "ansible.builtin.debug": {"msg": "ACCEPTED " + show["head"]},
                    "when": "role == 'head'",
                },
                {
                    "name": "Passed",
                    "ansible.builtin.debug": {"msg": "ACCEPTED " + show["worker"]},
                    "when": "role == 'worker'",
                },
            ],
            "rescue": [{"name": "Refused", "ansible.builtin.debug": {"msg": f"REFUSED {REFUSAL}"}}],
        }
    ]
    role_dir = os.path.join(REPO, "roles")
    hosts = {
        name: {**v, "role": r, "role_dir": role_dir, "common_is_container": True, **UNITS}
        for name, (r, v) in ACCEPTED.items()
    }
    hosts.update({name: {**v, "role": r, "role_dir": role_dir} for name, (r, v, _m) in REFUSED.items()})
    got = run_playbook(tmp_path, hosts, tasks)

    wrong = {
        n: got.get(n)
        for n, (_r, _v, m) in REFUSED.items()
        if n not in got or got[n][0] != "REFUSED" or m not in got[n][1]
    }
    assert not wrong, wrong
    assert all(got[n][0] == "ACCEPTED" for n in ACCEPTED), {n: got.get(n) for n in ACCEPTED}

    head = json.loads(got["head"][1])
    engine = {
        "cluster": "demo",
        "wlm": {"type": "gridengine", "nodes": "dynamic", "options": OPTIONS},
        "resources": RESOURCES,
    }
    scheduler = {"schedule_interval": "0:0:2", "queue_sort_method": "seqno"}
    expected = gridengine_objects(engine, scheduler_config=scheduler)
    assert head["objects"] == expected["objects"]
    assert head["hosts"] == expected["placeholders"] == [{"name": "future-small", "address": "192.0.2.1"}]
    assert {d["question"]: d["value"] for d in head["debconf"]}["shared/gridenginemaster"] == "head"
    assert head["port"] == 6444
    assert "Type=forking\n" in head["unit"] and "PIDFile=/var/spool/gridengine/qmaster/qmaster.pid\n" in head["unit"]
    assert "LimitNOFILE=1024\n" in head["unit"]

    worker = json.loads(got["worker"][1])
    assert worker["service"] == "gridengine-exec"  # the name the adapter's user-data enables
    assert "KillMode=process\n" in worker["unit"]
    assert "PIDFile=/var/spool/gridengine/execd/%l/execd.pid\n" in worker["unit"]
    assert "ConditionPathExists=/var/lib/gridengine/default/common/act_qmaster\n" in worker["unit"]
    assert {d["question"]: d["value"] for d in worker["debconf"]}["shared/gridenginemaster"] == "head"
    baked = json.loads(got["bake"][1])
    # An image names no qmaster.
    assert {d["question"]: d["value"] for d in baked["debconf"]}["shared/gridenginemaster"] == ""
