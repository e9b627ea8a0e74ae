# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``openstack`` cloud: Nova servers in one or more projects.

Private to the dcaas.cluster collection; its API may change without notice.
Standard library only at import time: openstacksdk is imported on first use,
so the engine loads on hosts that only use the local cloud.

Every server this provider makes carries the cluster label in its Nova
metadata; listing returns only such servers and deleting re-reads the server
and refuses one without the label, so a restarted engine adopts exactly what
it made and nothing else is ever touched. Each resource may live in its own
project (``Resource.tenant`` names a clouds.yaml entry), and listing walks
every project the resources use.

Errors become ``CloudError`` with the kind the engine acts on; messages say
which resource, what, and in which project, and never carry credentials.
"""

from __future__ import annotations

import base64
import json
import re
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import (
    CloudError,
    CloudProvider,
    LaunchSpec,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    LABEL_CLUSTER,
    LABEL_RESOURCE,
    LABEL_ROLE,
    ROLE_WORKER,
    Headroom,
    Instance,
    InstanceStatus,
    Resource,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.options import check_fields

MISSING_LIBRARY = (
    "missing library: install openstacksdk on the host that runs the engine "
    "(pip install openstacksdk, or the python3-openstacksdk package)"
)
DEFAULT_TIMEOUT = 30.0
PROBE_TIMEOUT = 5.0  # seconds: asking again why an endpoint failed discovery

_TEXT = {"type": "text"}
_NAMES = {"type": "list", "elements": "text"}
# Options a resource's ``options`` may override; the rest are per cloud.
RESOURCE_OPTION_SPEC: dict[str, dict] = {
    # Only its type is ever shown (options.check): it holds credentials.
    "auth": {"type": "dict"},
    "cloud": _TEXT,
    "key_name": _TEXT,
    "network": _TEXT,
    "security_groups": _NAMES,
    "server_group": _TEXT,
}
CLOUD_OPTION_SPEC: dict[str, dict] = {
    **RESOURCE_OPTION_SPEC,
    "auth_type": _TEXT,
    "clouds_file": _TEXT,
    "interface": _TEXT,
    "region_name": _TEXT,
    "tenants": _NAMES,
    "timeout": {"type": "number", "above": 0, "unit": " seconds", "default": DEFAULT_TIMEOUT},
}
# Options that decide which project a call goes to (and so which connection).
_CONNECTION_OPTIONS = ("auth", "auth_type", "cloud", "clouds_file", "interface", "region_name", "timeout")

# Nova's server statuses. Operations an admin runs on a live server (reboot,
# resize, migrate, rescue) leave it a working node as far as we care.
_STATUS = {
    "BUILD": InstanceStatus.BUILDING,
    "ACTIVE": InstanceStatus.ACTIVE,
    "REBOOT": InstanceStatus.ACTIVE,
    "HARD_REBOOT": InstanceStatus.ACTIVE,
    "REBUILD": InstanceStatus.BUILDING,
    "MIGRATING": InstanceStatus.ACTIVE,
    "RESIZE": InstanceStatus.ACTIVE,
    "VERIFY_RESIZE": InstanceStatus.ACTIVE,
    "REVERT_RESIZE": InstanceStatus.ACTIVE,
    "PASSWORD": InstanceStatus.ACTIVE,
    "RESCUE": InstanceStatus.STOPPED,
    "ERROR": InstanceStatus.ERROR,
    "UNKNOWN": InstanceStatus.ERROR,
    "SHUTOFF": InstanceStatus.STOPPED,
    "SUSPENDED": InstanceStatus.STOPPED,
    "PAUSED": InstanceStatus.STOPPED,
    "SHELVED": InstanceStatus.STOPPED,
    "SHELVED_OFFLOADED": InstanceStatus.STOPPED,
    "DELETED": InstanceStatus.DELETING,
    "SOFT_DELETED": InstanceStatus.DELETING,
}

# What Nova accepts as server metadata (its API schema): keys of these
# characters, keys and values at most 255 characters.
_METADATA_KEY_RE = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")
_METADATA_VALUE_MAX = 255
# Nova refuses user data above 64 KiB once base64-encoded.
_USER_DATA_MAX = 65535
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")

# Fault texts of a server that went to ERROR, by what the engine should do.
_FAULT_KINDS = (
    ("capacity", ("no valid host", "exceeded maximum number of retries", "insufficient compute resources")),
    ("quota", ("quota exceeded",)),
    ("config", ("image", "flavor", "network", "keypair", "security group", "could not be found")),
)


def fault_kind(fault: str | None) -> str:
    """What an ERROR server's fault means: capacity, quota, config or transient.

    Nova reports a failed placement (NoValidHost) asynchronously, as the
    fault of a server that went to ERROR; the engine can back off the
    resource the same way as after a synchronous ``capacity`` error.
    """
    text = (fault or "").lower()
    for kind, needles in _FAULT_KINDS:
        if any(needle in text for needle in needles):
            return kind
    return "transient"


def _unreachable(message: str, timeout: float) -> str | None:
    """Why the first URL in ``message`` cannot be reached (refused, timed
    out, unknown name, reset, an HTTP 5xx/408/429), or None when it answers
    otherwise (a 404, a TLS handshake that fails: misconfigured)
    or names no URL."""
    import requests  # keystoneauth's HTTP library: there with the SDK, and it takes the same proxies

    found = re.search(r"https?://[^\s,]+", message)
    if found is None:
        return None
    url = found.group(0).rstrip(".:;)'\"")
    try:
        # Nothing but a GET without credentials goes out: whether the server
        # is there is all it asks, so it need not trust its certificate.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            answer = requests.get(url, timeout=min(timeout, PROBE_TIMEOUT), verify=False, allow_redirects=False)
    except requests.exceptions.SSLError:
        return None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        # The socket's own error, under requests' and urllib3's wrappers.
        cause: BaseException | None = exc
        while cause is not None and type(cause).__module__ not in ("builtins", "socket"):
            cause = cause.__cause__ or cause.__context__
        if not isinstance(cause, OSError):
            return type(exc).__name__
        return f"{type(cause).__name__}: {cause.strerror}" if cause.strerror else type(cause).__name__
    except (requests.exceptions.RequestException, ValueError):
        return None
    answer.close()
    status = answer.status_code
    return f"HTTP {status}" if status >= 500 or status in (408, 429) else None


def _created(value: Any) -> float:
    """Nova's ``created`` (ISO 8601, UTC) as epoch seconds; now if unreadable."""
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()


def _address(addresses: Any, network: str | None) -> str | None:
    """The server's address: a fixed IPv4 on the resource's network first."""
    if not isinstance(addresses, dict):
        return None
    ranked: list[tuple[int, str]] = []
    for net, entries in addresses.items():
        for entry in entries or ():
            addr = entry.get("addr")
            if not addr:
                continue
            rank = (
                (0 if net == network else 2)
                + (0 if entry.get("OS-EXT-IPS:type", "fixed") == "fixed" else 1)
                + (0 if entry.get("version", 4) == 4 else 4)
            )
            ranked.append((rank, addr))
    return min(ranked)[1] if ranked else None


def _status(server: Any) -> InstanceStatus:
    # A server being deleted keeps its status (often ACTIVE) until it is gone.
    if (getattr(server, "task_state", None) or "") == "deleting":
        return InstanceStatus.DELETING
    return _STATUS.get((server.status or "BUILD").upper(), InstanceStatus.ACTIVE)


def _fault(server: Any) -> str | None:
    fault = getattr(server, "fault", None)
    if isinstance(fault, dict) and fault.get("message"):
        return str(fault["message"]).strip()
    if (server.status or "").upper() == "UNKNOWN":
        return "server status UNKNOWN: its compute host does not answer"
    return None


@dataclass(frozen=True)
class _Target:
    """One project to talk to: a clouds.yaml entry or explicit credentials."""

    key: str  # identity of the connection settings; holds credentials, so never shown
    project: str  # how messages name the project
    tenant: str | None  # what instances found here report as their tenant
    cloud: str | None
    settings: tuple[tuple[str, Any], ...]


class OpenStackProvider(CloudProvider):
    """Servers in OpenStack projects as the instances of the cluster.

    Options (``cloud.options``):

    - ``cloud``: the clouds.yaml entry of the default project;
    - ``auth`` (with ``auth_type``): credentials as under ``auth:`` in
      clouds.yaml, instead of a clouds.yaml entry;
    - ``clouds_file``: read this clouds.yaml instead of openstacksdk's usual
      places (OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack/, /etc/openstack/);
    - ``region_name``, ``interface``: passed to openstacksdk;
    - ``network``: network name or UUID for the workers (default: Nova's
      ``auto``: the one network the project can use);
    - ``key_name``, ``security_groups``: key pair and security group names;
    - ``server_group``: server group name or UUID (scheduler hint);
    - ``tenants``: more clouds.yaml entries to look for this cluster's servers
      in, e.g. a project no resource uses any more;
    - ``timeout``: seconds to wait for an API call (default 30).

    Which project a resource uses: its ``options.cloud`` or ``options.auth``
    if given; else its ``tenant`` as a clouds.yaml entry name (with ``auth``
    options that name no project, the tenant is the project name); else the
    cloud-level ``cloud``/``auth``; else openstacksdk's default (OS_CLOUD or
    OS_* variables). A resource's ``zone`` is the availability zone, and its
    ``options`` may override ``cloud``, ``auth``, ``network``, ``key_name``,
    ``security_groups`` and ``server_group``.
    """

    name = "openstack"

    def __init__(self, cluster: str, options: dict | None = None, resources: Iterable[Resource] = ()):
        super().__init__(cluster, options)
        errors: list[str] = []
        checked = check_fields(self.options, CLOUD_OPTION_SPEC, "cloud.options", errors)
        self.resources = tuple(resources)
        for res in self.resources:
            check_fields(res.options, RESOURCE_OPTION_SPEC, f"resource {res.name!r} options", errors)
        if errors:
            raise CloudError("config", "; ".join(errors))
        self.timeout = float(checked["timeout"])
        self._connections: dict[str, Any] = {}
        self._secrets: set[str] = set()
        self._ids: dict[tuple[str, str, str], str] = {}
        # Projects seen in use, so servers made there are listed even when
        # the resources were not given to the constructor.
        self._seen: dict[str, _Target] = {}

    # --- settings and connections -------------------------------------------
    def _resource_options(self, resource: Resource | None) -> dict[str, Any]:
        if resource is None:
            return {}
        ropts = resource.options
        errors: list[str] = []
        check_fields(ropts, RESOURCE_OPTION_SPEC, f"resource {resource.name!r} options", errors)
        if errors:
            raise CloudError("config", "; ".join(errors))
        return ropts

    def _settings(self, resource: Resource | None) -> dict[str, Any]:
        """The cloud's options with the resource's on top."""
        return {**self.options, **self._resource_options(resource)}

    def _target(self, resource: Resource | None = None, tenant: str | None = None) -> _Target:
        ropts = self._resource_options(resource)
        if resource is not None:
            tenant = resource.tenant
        if "cloud" in ropts or "auth" in ropts:
            cloud, auth = ropts.get("cloud"), ropts.get("auth")
        elif tenant and "auth" not in self.options:
            cloud, auth = tenant, None
        else:
            cloud, auth = self.options.get("cloud"), self.options.get("auth")
        if auth is not None:
            auth = dict(auth)
            # Credentials without a project: the tenant says which one.
            if tenant and not cloud and not (auth.get("project_name") or auth.get("project_id")):
                auth["project_name"] = tenant
        settings = {**self.options, **ropts}
        conn_settings = {k: settings[k] for k in _CONNECTION_OPTIONS if k not in ("cloud", "auth") and k in settings}
        if auth is not None:
            conn_settings["auth"] = auth
        key = json.dumps({"cloud": cloud, **conn_settings}, sort_keys=True, default=str)
        project = tenant or cloud or (auth or {}).get("project_name") or "default"
        return _Target(key=key, project=str(project), tenant=tenant, cloud=cloud, settings=tuple(conn_settings.items()))

    def _targets(self) -> list[_Target]:
        """Every project this cluster's servers may be in."""
        found: dict[str, _Target] = {}
        for res in self.resources:
            target = self._target(res)
            found.setdefault(target.key, target)
        for tenant in self.options.get("tenants") or ():
            target = self._target(tenant=tenant)
            found.setdefault(target.key, target)
        for key, target in self._seen.items():
            found.setdefault(key, target)
        if not found:
            target = self._target()
            found[target.key] = target
        return list(found.values())

    def _connect(self, target: _Target) -> Any:
        conn = self._connections.get(target.key)
        if conn is not None:
            return conn
        try:
            from openstack import connection
            from openstack.config import loader
        except ImportError:
            raise CloudError("config", MISSING_LIBRARY) from None
        settings = dict(target.settings)
        clouds_file = settings.pop("clouds_file", None)
        timeout = settings.pop("timeout", self.timeout)
        self._remember_secrets(settings.get("auth"))
        with self._calls(f"connecting to project {target.project!r}"):
            config = loader.OpenStackConfig(config_files=[clouds_file] if clouds_file else None)
            region = config.get_one(cloud=target.cloud, api_timeout=timeout, **settings)
            self._remember_secrets(region.auth)
            conn = connection.Connection(config=region)
        self._connections[target.key] = conn
        return conn

    def _remember_secrets(self, auth: Any) -> None:
        if not isinstance(auth, dict):
            return
        for key, value in auth.items():
            if isinstance(value, str) and len(value) >= 4 and any(s in key for s in ("password", "secret", "token")):
                self._secrets.add(value)

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    # --- errors ---------------------------------------------------------------
    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @contextmanager
    def _calls(self, what: str) -> Iterator[None]:
        """Turn SDK and HTTP failures during ``what`` into CloudError."""
        try:
            yield
        except CloudError:
            raise
        except Exception as exc:
            kind, detail = self._classify(exc, self.timeout)
            if kind is None:
                raise
            raise CloudError(kind, self._redact(f"{what}: {detail}")) from None

    @staticmethod
    def _classify(exc: BaseException, timeout: float) -> tuple[str | None, str]:
        try:
            from keystoneauth1 import exceptions as ksa
            from openstack import exceptions as sdk
        except ImportError:
            return None, ""
        status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
        detail = str(getattr(exc, "details", None) or exc).strip()
        if isinstance(exc, sdk.HttpException) and status:
            detail = f"HTTP {status}: {exc.details or exc.message}".strip()
        lowered = detail.lower()
        if "quota exceeded" in lowered and status in (403, 413):
            return "quota", detail
        if "no valid host" in lowered:
            return "capacity", detail
        if status == 401 or isinstance(exc, ksa.Unauthorized):
            return "config", f"authentication failed ({detail}); check the credentials of this project"
        if isinstance(status, int):
            if status >= 500 or status in (408, 429):
                return "transient", detail
            if status == 409 and "multiple possible networks" not in lowered:
                return "transient", detail
            return "config", detail
        # A failed version discovery caused by an unreachable service is an
        # outage, not a misconfiguration.
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, (ksa.ConnectionError, ksa.RetriableConnectionFailure, ConnectionError, TimeoutError)):
                return "transient", f"cannot reach the API: {detail}"
            cause = cause.__cause__ or cause.__context__
        if isinstance(exc, ksa.DiscoveryFailure):
            # keystoneauth drops the error behind a failed version discovery
            # ("the service is unavailable or misconfigured"): ask once more.
            why = _unreachable(detail, timeout)
            if why:
                return "transient", f"cannot reach the API ({why}): {detail}"
        if isinstance(exc, (ksa.EndpointNotFound, sdk.EndpointNotFound)):
            return "config", f"no compute endpoint in the service catalog ({detail})"
        if isinstance(exc, (sdk.ConfigException, ksa.AuthPluginException, ksa.DiscoveryFailure)):
            return "config", detail
        if isinstance(exc, (sdk.SDKException, ksa.ClientException)):
            return "transient", detail
        return None, ""

    # --- lookups ----------------------------------------------------------------
    def _lookup(self, target: _Target, conn: Any, kind: str, name: str, where: str) -> str:
        """The ID of a flavor, image, network or server group named in the config."""
        if kind != "flavor" and _UUID_RE.match(name):
            return name
        cache_key = (target.key, kind, name)
        if cache_key in self._ids:
            return self._ids[cache_key]
        from openstack import exceptions as sdk  # present: _connect imported openstack

        with self._calls(f"{where}: looking up {kind} {name!r} in project {target.project!r}"):
            try:
                if kind == "flavor":
                    found = conn.compute.find_flavor(name, ignore_missing=False)
                elif kind == "image":
                    found = self._find_image(conn, name)
                elif kind == "network":
                    found = conn.network.find_network(name, ignore_missing=False)
                else:
                    found = conn.compute.find_server_group(name, ignore_missing=False)
            except sdk.NotFoundException:
                found = None
        if found is None:
            raise CloudError("config", f"{where}: {kind} {name!r} not found in project {target.project!r}")
        self._ids[cache_key] = found.id
        return found.id

    @staticmethod
    def _find_image(conn: Any, name: str) -> Any:
        """Find an image by name through Nova's image proxy, else through Glance.

        The proxy (compute API up to microversion 2.35) answers on every Nova
        and needs nothing but the compute endpoint; a Nova that dropped it, or
        an image the proxy does not list, is asked of the image service.
        """
        from openstack import exceptions as sdk
        from openstack import warnings as sdk_warnings

        try:
            with warnings.catch_warnings():
                # openstacksdk warns that the proxy is deprecated: known, and
                # the fallback below covers its removal.
                warnings.simplefilter("ignore", sdk_warnings.OpenStackDeprecationWarning)
                return conn.compute.find_image(name, ignore_missing=False)
        except sdk.HttpException as exc:
            if exc.status_code not in (404, 410):
                raise
        return conn.image.find_image(name, ignore_missing=False)

    def _forget_ids(self, target: _Target) -> None:
        for key in [k for k in self._ids if k[0] == target.key]:
            del self._ids[key]

    # --- the provider interface -------------------------------------------------
    def _instance(self, server: Any, target: _Target, network: str | None = None) -> Instance:
        metadata = server.metadata or {}
        return Instance(
            id=server.id,
            name=server.name,
            resource=str(metadata.get(LABEL_RESOURCE, "")),
            status=_status(server),
            created=_created(server.created_at),
            role=str(metadata.get(LABEL_ROLE, ROLE_WORKER)),
            address=_address(server.addresses, network),
            zone=server.availability_zone or None,
            tenant=target.tenant,
            fault=_fault(server),
        )

    def _network_name(self, resource_name: str) -> str | None:
        for res in self.resources:
            if res.name == resource_name:
                return self._settings(res).get("network")
        return self.options.get("network")

    def list_instances(self) -> list[Instance]:
        # One failing project fails the whole listing: a partial list would
        # look like vanished instances, and the engine would replace them.
        instances: dict[str, Instance] = {}
        for target in self._targets():
            conn = self._connect(target)
            with self._calls(f"listing servers in project {target.project!r}"):
                for server in conn.compute.servers(details=True):
                    if (server.metadata or {}).get(LABEL_CLUSTER) != self.cluster:
                        continue
                    resource = str((server.metadata or {}).get(LABEL_RESOURCE, ""))
                    instances.setdefault(server.id, self._instance(server, target, self._network_name(resource)))
        return sorted(instances.values(), key=lambda i: (i.created, i.name))

    def _metadata(self, spec: LaunchSpec) -> dict[str, str]:
        metadata = {str(k): str(v) for k, v in spec.labels.items()}
        # Ours last: nothing in the spec may hide the owner.
        metadata[LABEL_CLUSTER] = self.cluster
        metadata[LABEL_RESOURCE] = spec.resource.name
        metadata.setdefault(LABEL_ROLE, ROLE_WORKER)
        bad = [k for k, v in metadata.items() if not _METADATA_KEY_RE.match(k) or len(v) > _METADATA_VALUE_MAX]
        if bad:
            raise CloudError(
                "config",
                f"resource {spec.resource.name!r}: metadata {', '.join(map(repr, sorted(bad)))} not valid for Nova "
                f"(keys: letters, digits, '-_:. ', 1-255 characters; values up to {_METADATA_VALUE_MAX})",
            )
        return metadata

    def create(self, spec: LaunchSpec) -> Instance:
        res = spec.resource
        where = f"resource {res.name!r}"
        target = self._target(res)
        settings = self._settings(res)
        metadata = self._metadata(spec)
        user_data = base64.b64encode(spec.user_data.encode("utf-8")).decode("ascii") if spec.user_data else None
        if user_data is not None and len(user_data) > _USER_DATA_MAX:
            raise CloudError(
                "config",
                f"{where}: user data is {len(user_data)} bytes base64-encoded; Nova takes at most {_USER_DATA_MAX}",
            )
        conn = self._connect(target)
        self._seen.setdefault(target.key, target)

        attrs: dict[str, Any] = {
            "name": spec.name,
            "flavor_id": self._lookup(target, conn, "flavor", res.flavor, where),
            "image_id": self._lookup(target, conn, "image", res.image, where),
            "metadata": metadata,
        }
        network = settings.get("network")
        attrs["networks"] = [{"uuid": self._lookup(target, conn, "network", network, where)}] if network else "auto"
        if settings.get("server_group"):
            group = self._lookup(target, conn, "server group", settings["server_group"], where)
            attrs["scheduler_hints"] = {"group": group}
        if res.zone:
            attrs["availability_zone"] = res.zone
        if settings.get("key_name"):
            attrs["key_name"] = settings["key_name"]
        if settings.get("security_groups"):
            attrs["security_groups"] = [{"name": name} for name in settings["security_groups"]]
        if user_data is not None:
            attrs["user_data"] = user_data

        try:
            with self._calls(f"{where}: creating server {spec.name!r} in project {target.project!r}"):
                server = conn.compute.create_server(**attrs)
        except CloudError as exc:
            if exc.kind == "config":
                # A flavor or network may have been replaced under the same name.
                self._forget_ids(target)
                if res.zone and "availability zone" in str(exc).lower():
                    raise self._zone_error(target, conn, res, exc) from None
            raise
        return Instance(
            id=server.id,
            name=spec.name,
            resource=res.name,
            status=InstanceStatus.BUILDING,
            created=time.time(),
            role=metadata[LABEL_ROLE],
            zone=res.zone,
            tenant=res.tenant,
        )

    def _zone_error(self, target: _Target, conn: Any, res: Resource, exc: CloudError) -> CloudError:
        """Nova says the same for an unknown zone and a zone whose hosts are all disabled."""
        zones: dict[str, bool] = {}
        try:
            for zone in conn.compute.availability_zones(details=False):
                zones[zone.name] = bool((zone.state or {}).get("available"))
        except Exception:  # the original error says enough
            return exc
        if res.zone in zones:
            return CloudError(
                "capacity",
                f"resource {res.name!r}: availability zone {res.zone!r} in project {target.project!r} "
                "has no host available (all disabled or down)",
            )
        known = ", ".join(sorted(zones)) or "none"
        return CloudError(
            "config",
            f"resource {res.name!r}: availability zone {res.zone!r} not found in project {target.project!r} "
            f"(known: {known})",
        )

    def _targets_for(self, instance: Instance) -> list[_Target]:
        """Where to look for an instance: its tenant's project first, then all."""
        targets = self._targets()
        for res in self.resources:
            if res.name == instance.resource:
                first = self._target(res)
                return [first, *(t for t in targets if t.key != first.key)]
        if instance.tenant is not None:
            first = self._target(tenant=instance.tenant)
            return [first, *(t for t in targets if t.key != first.key)]
        return targets

    def delete(self, instance: Instance) -> None:
        for target in self._targets_for(instance):
            conn = self._connect(target)
            from openstack import exceptions as sdk  # present: _connect imported openstack

            with self._calls(f"deleting server {instance.name!r} in project {target.project!r}"):
                try:
                    server = conn.compute.get_server(instance.id)
                except sdk.NotFoundException:
                    continue  # not in this project
                if (server.metadata or {}).get(LABEL_CLUSTER) != self.cluster:
                    raise CloudError(
                        "config",
                        f"refusing to delete server {instance.id} ({server.name!r}) in project {target.project!r}: "
                        f"its metadata does not carry {LABEL_CLUSTER}={self.cluster}",
                    )
                conn.compute.delete_server(server, ignore_missing=True)
                return
        # Not found in any project: gone already, nothing to do.

    def headroom(self, resource: Resource) -> Headroom:
        target = self._target(resource)
        conn = self._connect(target)
        self._seen.setdefault(target.key, target)
        with self._calls(f"resource {resource.name!r}: reading limits of project {target.project!r}"):
            absolute = conn.compute.get_limits().absolute

        def left(limit: Any, used: Any) -> int | None:
            # Nova reports -1 (or nothing) for an unlimited quota.
            if limit is None or int(limit) < 0:
                return None
            return max(0, int(limit) - int(used or 0))

        return Headroom(
            instances=left(absolute.instances, absolute.instances_used),
            cores=left(absolute.total_cores, absolute.total_cores_used),
            memory_mb=left(absolute.total_ram, absolute.total_ram_used),
        )
