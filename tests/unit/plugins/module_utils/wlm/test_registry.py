"""The adapter registry: the one place that names workload managers."""

from __future__ import annotations

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.runner import Runner
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm import registry
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.base import Capability, WorkloadManager


def test_every_adapter_declares_itself() -> None:
    assert registry.DEFAULT in registry.names()
    for name, cls in registry.ADAPTERS.items():
        assert cls.name == name and issubclass(cls, WorkloadManager)
        assert cls.capabilities <= set(Capability)
        for spec in (cls.OPTION_SPEC, cls.RESOURCE_OPTION_SPEC):
            assert all(isinstance(v, dict) and "type" in v for v in spec.values()), name


def test_unknown_and_planned_names_are_errors_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"^wlm.type: unknown workload manager 'pbs'; use one of gridengine, slurm"):
        registry.adapter("pbs")
    for name in registry.PLANNED:
        if name not in registry.ADAPTERS:
            with pytest.raises(ValueError, match=rf"^wlm.type: the '{name}' adapter is not available"):
                registry.adapter(name)


def test_cloud_nodes_only_where_supported() -> None:
    class NoCloud(WorkloadManager):
        name = "nocloud"

    with pytest.raises(ValueError, match=r"wlm\.nodes: nocloud has no cloud nodes"):
        NoCloud(Runner(), cloud_nodes=True)
    assert not NoCloud(Runner()).cloud_nodes
    for name in registry.names():
        if registry.supports(name, Capability.CLOUD_NODES):
            assert registry.make(name, Runner(), {}, "c", cloud_nodes=True).cloud_nodes
