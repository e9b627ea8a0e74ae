"""Fixtures for the local cloud tests: a real podman, a tiny image, strict cleanup.

Every test gets its own cluster name ``b-<random>``, so its containers are
``dcaas-b-...`` and its default network is ``dcaas-b-...``; the finalizer
removes everything that carries the cluster's label or the test-run label,
whether the test passed or not, and never touches anything else.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.local import DEFAULT_SOCKET, LocalProvider
from ansible_collections.dcaas.cluster.plugins.module_utils.model import LABEL_CLUSTER, Resource

BUILD_SCRIPT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 5, "hack", "build-test-image.sh"))
TEST_IMAGE = "localhost/dcaas/test-busybox:latest"
# Put on what a test makes that must not carry a cluster label (foreign
# containers, volumes), so the finalizer still finds it.
LABEL_TEST_RUN = "dcaas-b.test-run"


@pytest.fixture(scope="session")
def podman_client() -> Iterator[Any]:
    podman = pytest.importorskip("podman", reason="podman-py is not installed")
    client = podman.PodmanClient(base_url=DEFAULT_SOCKET, timeout=30)
    try:
        client.ping()
    except OSError as exc:
        pytest.skip(f"podman API not answering at {DEFAULT_SOCKET} ({exc}); run: bash hack/setup-host.sh")
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_image(podman_client: Any) -> str:
    # Idempotent and about a second when the image is already there.
    proc = subprocess.run(["bash", BUILD_SCRIPT], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{BUILD_SCRIPT} failed:\n{proc.stdout}\n{proc.stderr}")
    return TEST_IMAGE


def _remove_everything(client: Any, cluster: str) -> None:
    ours = [f"{LABEL_CLUSTER}={cluster}", f"{LABEL_TEST_RUN}={cluster}"]
    for label in ours:
        filters = json.dumps({"label": [label]})
        rows = client.api.get("/containers/json", params={"all": True, "filters": filters}).json()
        for row in rows:
            client.api.delete(f"/containers/{row['Id']}", params={"force": True, "timeout": 0, "volumes": True})
    for label in ours:
        for net in client.networks.list(filters={"label": label}):
            net.remove(force=True)
        for vol in client.volumes.list(filters={"label": label}):
            vol.remove(force=True)


@pytest.fixture
def cluster(podman_client: Any, test_image: str) -> Iterator[str]:
    """A fresh cluster name; everything labelled with it is removed afterwards."""
    name = f"b-{secrets.token_hex(4)}"
    try:
        yield name
    finally:
        _remove_everything(podman_client, name)


@pytest.fixture
def make_provider(cluster: str) -> Iterator[Callable[..., LocalProvider]]:
    made: list[LocalProvider] = []

    def make(**options: Any) -> LocalProvider:
        provider = LocalProvider(cluster, options)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def resource() -> Callable[..., Resource]:
    """Build a Resource of the test image (tests that boot it also use ``cluster``)."""

    def make(name: str = "small", **kwargs: Any) -> Resource:
        values: dict[str, Any] = {"flavor": "c1m512", "image": TEST_IMAGE, "cores": 1, "memory_mb": 512}
        values.update(kwargs)
        return Resource(name=name, **values)

    return make


@pytest.fixture
def node_name(cluster: str) -> Callable[[str], str]:
    return lambda suffix: f"dcaas-{cluster}-{suffix}"


@pytest.fixture
def volume(podman_client: Any, cluster: str) -> str:
    """A named volume for the test (removed with the cluster's leftovers)."""
    name = f"dcaas-{cluster}-home"
    podman_client.volumes.create(name, labels={LABEL_TEST_RUN: cluster})
    return name


@pytest.fixture
def foreign(podman_client: Any, cluster: str, test_image: str) -> Callable[..., Any]:
    """Start a container that is not this cluster's (no label, or another cluster's)."""

    def make(suffix: str, labels: dict[str, str] | None = None) -> Any:
        all_labels = {LABEL_TEST_RUN: cluster, **(labels or {})}
        container = podman_client.containers.create(
            test_image, ["sleep", "600"], name=f"dcaas-{cluster}-{suffix}", labels=all_labels
        )
        container.start()
        return container

    return make
