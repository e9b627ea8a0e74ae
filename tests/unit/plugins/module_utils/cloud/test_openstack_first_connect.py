"""How the openstack provider classifies a cloud it cannot use from the first call.

keystoneauth's version discovery, the first thing a new connection asks the
compute endpoint, drops the error behind a failure ("the service is
unavailable or misconfigured"). An outage (refused, timed out, unknown name,
5xx) must read ``transient`` (retry soon), a wrong endpoint or credentials
``config`` (long back-off, loud). The first part needs only openstacksdk and
loopback HTTP servers; the last test runs the real Nova behind fault_proxy
(skipped without .venv-nova).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError
from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.openstack import OpenStackProvider
from ansible_collections.dcaas.cluster.plugins.module_utils.model import Resource
from ansible_collections.dcaas.cluster.tests.fixtures.fault_proxy import FaultProxy

if TYPE_CHECKING:
    from ansible_collections.dcaas.cluster.tests.fixtures.nova import NovaCloud

pytest_plugins = ["ansible_collections.dcaas.cluster.tests.fixtures.nova"]
pytest.importorskip("openstack", reason="openstacksdk is not installed")

TOKEN = "s3cr3t-first-connect"
SMALL = Resource(name="small", flavor="c1.small", image="dcaas-worker", cores=1, memory_mb=1024)


class Fixed(BaseHTTPRequestHandler):
    """Answers every request with the server's ``status`` (0: never answers)."""

    def _answer(self) -> None:
        status = self.server.status
        if not status:
            self.server.release.wait(10)
            return
        body = json.dumps({"error": {"code": status, "message": "fixed"}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serving() -> Iterator[Any]:
    """Start a loopback server answering a fixed status; gives its base URL."""
    servers = []

    def start(status: int) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Fixed)
        server.daemon_threads = True
        server.status, server.release = status, threading.Event()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def refusing() -> Iterator[str]:
    """A loopback URL that refuses connections: bound, never listening, so no one else takes the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def provider_at(tmp_path: Any, endpoint: str, **settings: Any) -> OpenStackProvider:
    """A provider whose clouds.yaml reaches Nova at ``endpoint`` the way the Nova fixture's does."""
    entry = settings or {
        "auth_type": "admin_token",
        "auth": {"endpoint": endpoint, "token": TOKEN},
        "compute_endpoint_override": endpoint,
    }
    path = tmp_path / "clouds.yaml"
    path.write_text(json.dumps({"clouds": {"x": {"region_name": "RegionOne", **entry}}}))
    return OpenStackProvider("t", {"cloud": "x", "clouds_file": str(path), "timeout": 1})


def kind_of(provider: OpenStackProvider) -> tuple[str, str]:
    with pytest.raises(CloudError) as err:
        provider.list_instances()
    assert TOKEN not in str(err.value) and "password-first" not in str(err.value)
    return err.value.kind, str(err.value)


def keystone(auth_url: str) -> dict:
    auth = {"auth_url": auth_url, "username": "u", "password": "password-first", "project_name": "p"}
    return {"auth": {**auth, "user_domain_name": "Default", "project_domain_name": "Default"}}


def test_a_compute_endpoint_that_refuses_at_first_connect_is_transient(tmp_path, refusing):
    kind, message = kind_of(provider_at(tmp_path, refusing + "/v2.1"))
    assert kind == "transient" and "cannot reach the API (ConnectionRefusedError" in message


def test_a_compute_endpoint_whose_name_does_not_resolve_is_transient(tmp_path):
    kind, message = kind_of(provider_at(tmp_path, "http://no-such-host.invalid:8774/v2.1"))
    assert kind == "transient" and "cannot reach the API (gaierror" in message


@pytest.mark.parametrize(("status", "kind"), [(503, "transient"), (0, "transient"), (404, "config")])
def test_a_compute_endpoint_that_answers_so_at_first_connect(tmp_path, serving, status, kind):
    # 0: accepts the connection and never answers (the timeout ends it)
    assert kind_of(provider_at(tmp_path, serving(status) + "/v2.1"))[0] == kind


@pytest.mark.parametrize(
    ("answer", "kind", "words"),
    [
        ("refused", "transient", "cannot reach the API"),
        (404, "config", ""),
        (503, "transient", "HTTP 503"),
    ],
)
def test_an_identity_endpoint_at_first_connect(tmp_path, serving, refusing, answer, kind, words):
    # (Credentials Nova refuses, 401: test_openstack.py, test_errors_never_carry_credentials.)
    url = refusing if answer == "refused" else serving(answer)
    got, message = kind_of(provider_at(tmp_path, "", **keystone(url + "/v3")))
    assert got == kind and words in message


def test_a_malformed_auth_url_is_config(tmp_path):
    assert kind_of(provider_at(tmp_path, "", **keystone("not a url")))[0] == "config"


def test_the_real_nova_refusing_at_first_connect_is_transient_and_the_provider_recovers(
    nova_cloud: NovaCloud, tmp_path: Any
) -> None:
    proxy = FaultProxy(nova_cloud.endpoint)
    try:
        proxy.stop_listening()
        clouds = nova_cloud.clouds_via(proxy.endpoint, str(tmp_path / "clouds.yaml"))
        provider = OpenStackProvider("t", {"cloud": "tenant-a", "clouds_file": clouds, "timeout": 5})
        with pytest.raises(CloudError) as err:
            provider.headroom(SMALL)
        assert err.value.kind == "transient", err.value
        proxy.start_listening()
        assert provider.list_instances() == []  # the same provider, once Nova answers
        provider.close()
    finally:
        proxy.close()
