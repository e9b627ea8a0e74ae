"""Local provider options used by the Advanced architecture (no podman needed)."""

from __future__ import annotations

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError
from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.local import LocalProvider
from ansible_collections.dcaas.cluster.plugins.module_utils.config import parse
from ansible_collections.dcaas.cluster.plugins.module_utils.model import Resource


def resource(**options) -> Resource:
    return Resource("chem", "local", "img", cores=2, memory_mb=2048, options=options)


def test_extra_networks_and_the_wlm_adapters_resource_options_kept_apart():
    cloud = LocalProvider("adv", {"network": "adv-az1"})
    options = {"network": "adv-az2", "extra_networks": ["adv-az1"], "slurm_node_conf": {"Weight": 1}}
    config = {
        "cluster": "adv",
        "resources": [
            {"name": "chem", "flavor": "local", "image": "img", "cores": 2, "memory_mb": 2048, "options": options}
        ],
    }
    # slurm_node_conf is the Slurm adapter's: the loader hands it to the
    # adapter alone, and the provider sees only its own options.
    res = parse(config).resources[0]
    assert res.options == {"network": "adv-az2", "extra_networks": ["adv-az1"]}
    settings = cloud.launch_settings(res)
    assert (settings.network, settings.extra_networks) == ("adv-az2", ("adv-az1",))
    assert cloud.launch_settings(resource()).extra_networks == ()


@pytest.mark.parametrize("value", ["adv-az1", ["bad name"], [""]])
def test_bad_extra_networks_are_refused_with_the_field_named(value):
    with pytest.raises(CloudError, match="extra_networks"):
        LocalProvider("adv", {}).launch_settings(resource(extra_networks=value))
