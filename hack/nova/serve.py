# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a real OpenStack Compute API (Nova) on 127.0.0.1 for tests.

Run with the interpreter of the separate Nova venv (hack/nova/setup.sh):

    .venv-nova/bin/python hack/nova/serve.py [--port N] [--log-file PATH]

Nova's own functional-test harness starts the API, conductor, scheduler and
several compute services (fake virt driver) in this one process, with sqlite
databases, an in-memory message bus, an in-process Placement service and
Nova's Glance and Neutron fixtures. Only the compute API is served over
HTTP, with wsgiref; everything behind it is the code a real cloud runs.

There is no Keystone. Each project gets a random token and requests carry it
in ``X-Auth-Token`` (keystoneauth's ``admin_token`` plugin sends it), which a
small middleware turns into the identity headers Nova's harness expects.

On success one line goes to stdout: ``READY {json}`` with the port, a
clouds.yaml ``clouds:`` mapping (one cloud per project plus an admin one) and
the topology. SIGTERM or SIGINT stops everything and exits 0; SIGUSR1 prints
every thread's stack to stderr (for a request that hangs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
import traceback
import warnings
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

# Nova decides between eventlet and native threads when nova.tests is first
# imported. Threads, because wsgiref and the harness then share one model and
# eventlet mode is deprecated in Nova.
os.environ.setdefault("OS_NOVA_DISABLE_EVENTLET_PATCHING", "1")
os.environ.setdefault("OS_TEST_TIMEOUT", "0")

STARTED = time.monotonic()

# Before any other nova import: nova.context pulls in futurist, which would
# import eventlet, and Nova refuses native threads once eventlet is loaded.
from nova import monkey_patch  # noqa: E402

monkey_patch.patch(backend="threading")

from neutronclient.common import exceptions as neutron_client_exc  # noqa: E402
from nova import context as nova_context  # noqa: E402
from nova import objects  # noqa: E402
from nova.tests import fixtures as nova_fixtures  # noqa: E402
from nova.tests.functional import integrated_helpers  # noqa: E402

# The cloud this fixture pretends to be. Hosts use MediumFakeDriver: 10 vCPU
# (x4 allocation ratio) and 8192 MB RAM (x1), so exactly one 8 GB flavor
# fills a host: that is how tests make a zone run out of capacity.
ZONES = {"az-a": ["compute-a1", "compute-a2"], "az-b": ["compute-b1"]}
# Nova's default flavors (m1.tiny ... m1.xlarge) stay; these are added.
FLAVORS = [
    {"name": "c1.small", "vcpus": 1, "ram": 1024, "disk": 10},
    {"name": "c2.medium", "vcpus": 2, "ram": 4096, "disk": 10},
    {"name": "c4.large", "vcpus": 4, "ram": 8192, "disk": 10},
]
IMAGE = "dcaas-worker"
# Nova's per-project quotas, as an admin would set them with
# `openstack quota set`: tenant-b is deliberately small.
PROJECTS = {
    "tenant-a": {"instances": 3, "cores": 12, "ram": 24576},
    "tenant-b": {"instances": 2, "cores": 4, "ram": 8192},
}
ADMIN_PROJECT = "dcaas-admin"
UNAUTHORIZED = "The request you have made requires authentication."


@contextlib.contextmanager
def _target_cell_in_place(self, context, cell_mapping):
    """Target a cell without the harness' switch of a process-wide "current cell".

    Nova's CellDatabases fixture points untargeted database access at the
    cell last targeted, under a reader-writer lock: a thread switching
    cells waits, as writer, until no thread is inside any target_cell block,
    and while it waits no new reader gets in. A thread inside such a block
    that writes waits for the fixture's per-database write lock; the thread
    holding that lock, inside its transaction, looks up its database (a new
    read lock) and waits for the writer: three threads stuck for good. Two
    engines and an admin client listing every project hit it within minutes
    on a loaded machine (the thread dump: the conductor's quota recheck
    switching to cell0, API and compute threads waiting in both locks);
    tests/fixtures/nova_cells_probe.py replays it step by step.

    A real cloud has no such switch: a targeted context carries its cell's
    connection (set_target_cell, which this keeps), and untargeted access
    uses the service's own database. Here every service that accesses the
    database untargeted (computes, conductor's cell work) belongs to cell1,
    the harness' default, which untargeted access now always uses.
    """
    with self._real_target_cell(context, cell_mapping) as targeted:
        yield targeted


# Before _Cloud.setUp: the fixture installs its bound method there.
nova_fixtures.CellDatabases._wrap_target_cell = _target_cell_in_place


class _Cloud(integrated_helpers._IntegratedTestBase):
    """Nova's integrated test base, set up once and kept running."""

    # Real asynchronous builds: a new server is BUILD first and reaches
    # ACTIVE or ERROR (NoValidHost) later, as in a real cloud.
    CAST_AS_CALL = False
    ADMIN_API = True
    microversion = "latest"

    def setUp(self) -> None:
        self.flags(compute_driver="fake.MediumFakeDriver")
        # Nothing held back for the host OS, so flavor sizes add up exactly.
        self.flags(reserved_host_memory_mb=0)
        # The harness makes Nova fail responses that break its own schemas;
        # a real cloud only logs them (the default). Nova 34 breaks one when
        # it lists a server that failed the conductor's quota recheck
        # (scheduler_hints null at 2.100), which made listing fail with 400.
        self.flags(response_validation="warn", group="api")
        # The harness looks for api-paste.ini relative to a source checkout;
        # pip installs it under <venv>/etc/nova/.
        self.flags(api_paste_config=os.path.join(sys.prefix, "etc", "nova", "api-paste.ini"), group="wsgi")
        super().setUp()

    def _setup_compute_service(self):
        # The harness starts one compute host; we want one per zone member.
        first = None
        for hosts in ZONES.values():
            for host in hosts:
                service = self._start_compute(host)
                first = first or service
        return first

    def runTest(self) -> None:  # testtools wants a test method to exist
        pass

    def stop(self) -> None:
        # testtools runs cleanups from its RunTest machinery, which we do not
        # use; pop them the same way (last in, first out).
        while self._cleanups:
            function, args, kwargs = self._cleanups.pop()
            try:
                function(*args, **kwargs)
            except Exception as exc:  # keep tearing down the rest
                logging.getLogger(__name__).warning("cleanup %r failed: %s", function, exc)


def _give_ports_owners_and_addresses(neutron) -> None:
    """Make the Neutron fixture's new ports look like a real network's.

    The fixture stamps every new port with the harness' project and the same
    IP address; Nova then hides a port of another project and every server
    would share one address. Keep the requesting project and hand out
    addresses in turn.
    """
    create_port = neutron.create_port
    next_host = iter(range(10, 250))

    def create_owned_port(body=None):
        port = create_port(body)["port"]
        owner = ((body or {}).get("port") or {}).get("tenant_id")
        stored = neutron._ports[port["id"]]
        if owner:
            stored["tenant_id"] = stored["project_id"] = owner
        for fixed_ip in stored.get("fixed_ips", []):
            if ":" not in fixed_ip["ip_address"]:
                fixed_ip["ip_address"] = f"192.168.1.{next(next_host)}"
        return {"port": dict(stored)}

    neutron.create_port = create_owned_port

    # Nova resolves security group names with neutronclient's find_resource,
    # which the fixture lacks (a 500 instead of Nova's 400 for a bad name).
    def find_resource(resource, name_or_id, project_id=None, cmd_resource=None, parent_id=None, fields=None):
        for group in neutron._security_groups.values():
            if name_or_id in (group["id"], group["name"]):
                return dict(group)
        raise neutron_client_exc.NotFound(message=f"Unable to find {resource} with name or id '{name_or_id}'")

    neutron.find_resource = find_resource


def _build_topology(cloud: _Cloud) -> dict:
    api = cloud.admin_api
    for zone, hosts in ZONES.items():
        agg = api.post_aggregate({"aggregate": {"name": zone, "availability_zone": zone}})
        for host in hosts:
            api.add_host_to_aggregate(agg["id"], host)
    for flavor in FLAVORS:
        api.post_flavor({"flavor": dict(flavor)})

    image = cloud.glance.create(
        None,
        {
            "name": IMAGE,
            "status": "active",
            "visibility": "public",
            "container_format": "bare",
            "disk_format": "raw",
            "min_ram": 0,
            "min_disk": 0,
            "properties": {},
        },
    )

    # The fixture's only network belongs to the harness' default project;
    # sharing it lets every project boot onto it, as with a provider network.
    network = cloud.neutron.network_1
    cloud.neutron._networks[network["id"]]["shared"] = True
    _give_ports_owners_and_addresses(cloud.neutron)

    ctx = nova_context.get_admin_context()
    for project, limits in PROJECTS.items():
        for resource, limit in limits.items():
            objects.Quotas.create_limit(ctx, project, resource, limit)

    flavors = {f["name"]: {"vcpus": f["vcpus"], "ram": f["ram"], "disk": f["disk"]} for f in api.get_flavors()}
    return {
        "zones": ZONES,
        "flavors": flavors,
        "image": {"name": IMAGE, "id": image["id"]},
        "network": {"name": network["name"], "id": network["id"]},
        "quotas": PROJECTS,
    }


class _TokenAuth:
    """Stand-in for keystonemiddleware: a known token names user, project, roles."""

    def __init__(self, app, tokens: dict[str, tuple[str, str, str]]):
        self.app = app
        self.tokens = tokens

    def __call__(self, environ, start_response):
        # Never trust identity headers from the client, as auth_token would not.
        for key in ("HTTP_X_AUTH_USER", "HTTP_X_AUTH_PROJECT_ID", "HTTP_X_ROLES"):
            environ.pop(key, None)
        identity = self.tokens.get(environ.get("HTTP_X_AUTH_TOKEN", ""))
        path = environ.get("PATH_INFO", "")
        # Version documents are public in a real cloud too (discovery).
        if identity is None and path.rstrip("/") not in ("", "/v2", "/v2.1"):
            body = json.dumps({"error": {"code": 401, "title": "Unauthorized", "message": UNAUTHORIZED}}).encode()
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            start_response("401 Unauthorized", headers)
            return [body]
        if identity is not None:
            user, project, roles = identity
            environ["HTTP_X_AUTH_USER"] = user
            environ["HTTP_X_AUTH_PROJECT_ID"] = project
            environ["HTTP_X_ROLES"] = roles
        return self.app(environ, start_response)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        logging.getLogger("dcaas.nova.http").info("%s %s", self.address_string(), format % args)


def _clouds(port: int, tokens: dict[str, tuple[str, str, str]]) -> dict:
    endpoint = f"http://127.0.0.1:{port}/v2.1"
    clouds = {}
    for token, (user, project, _roles) in tokens.items():
        clouds[project] = {
            "auth_type": "admin_token",
            "auth": {"endpoint": endpoint, "token": token},
            "compute_endpoint_override": endpoint,
            "region_name": "RegionOne",
            "dcaas_project": project,
            "dcaas_user": user,
        }
    return clouds


def _dump_threads() -> None:
    """Every thread's stack, with its name, on stderr: ``kill -USR1 <pid>`` when a request hangs.

    (faulthandler would stop at 100 threads; Nova's pools alone hold more.)
    """
    names = {t.ident: t.name for t in threading.enumerate()}
    out = [f"--- {len(names)} threads at {time.strftime('%H:%M:%S')} ---"]
    for ident, frame in sys._current_frames().items():
        out.append(f"Thread {names.get(ident, ident)}:")
        out.extend(line.rstrip() for line in traceback.format_stack(frame))
    # fd 2 is the real stderr: the harness replaced sys.stderr with a buffer.
    os.write(2, ("\n".join(out) + "\n").encode("utf-8", "replace"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--log-file", help="write Nova's log (INFO) here; default: discard")
    args = parser.parse_args(argv)

    # stdout carries the READY line and nothing else: whatever Nova or its
    # libraries print (oslo.log writes to stdout once the harness' logging
    # fixture is cleaned up) goes to stderr.
    ready_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    cloud = _Cloud()
    cloud.setUp()
    # Nova's WarningsFixture turns some deprecation warnings into errors,
    # which is right for Nova's CI and wrong for a long-running test cloud
    # (SQLAlchemy 2.1 has been seen to trip it).
    warnings.resetwarnings()
    warnings.simplefilter("ignore")
    if args.log_file:
        handler = logging.FileHandler(args.log_file)
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
        logging.getLogger().addHandler(handler)

    topology = _build_topology(cloud)
    tokens = {secrets.token_hex(16): (f"{p}-user", p, "reader,member") for p in PROJECTS}
    tokens[secrets.token_hex(16)] = ("admin", ADMIN_PROJECT, "reader,member,admin")

    app = _TokenAuth(cloud.api_fixture.app(), tokens)
    server = make_server("127.0.0.1", args.port, app, server_class=_Server, handler_class=_QuietHandler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="wsgi", daemon=True)
    thread.start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: _dump_threads())

    info = {
        "port": port,
        "endpoint": f"http://127.0.0.1:{port}/v2.1",
        "clouds": _clouds(port, tokens),
        "admin_cloud": ADMIN_PROJECT,
        "startup_s": round(time.monotonic() - STARTED, 2),
        **topology,
    }
    ready_out.write("READY " + json.dumps(info, sort_keys=True) + "\n")

    stop.wait()
    server.shutdown()
    server.server_close()
    cloud.stop()
    return 0


if __name__ == "__main__":
    # The harness swaps sys.stdout/sys.stderr for capture buffers, and Nova's
    # worker threads are not daemons, so a normal interpreter exit can hang
    # and a traceback can vanish: report on the original stderr and leave
    # with os._exit.
    real_stderr = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    try:
        code = main()
    except BaseException:
        traceback.print_exc(file=real_stderr)
        code = 1
    real_stderr.flush()
    os._exit(code)
