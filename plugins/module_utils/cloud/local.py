# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``local`` cloud: podman containers as instances.

Private to the dcaas.cluster collection; its API may change without notice.
Standard library only at import time: podman-py is imported on first use, so
the engine loads on hosts that only use OpenStack.

The provider talks to podman's REST API over its socket, the way the
OpenStack provider talks to Nova over HTTP, and never touches the host's
filesystem: the engine may run inside the head container with nothing but
the socket mounted. What a cloud keeps as server metadata lives in container
labels, so a restarted engine adopts exactly what it finds. Bootstrap is the
same cloud-init user-data as on OpenStack, written into the container as a
NoCloud seed through the archive API before the container starts.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
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

MISSING_LIBRARY = "missing library: install podman (podman-py) on the host that runs the engine"
DEFAULT_SOCKET = "unix:///run/podman/podman.sock"
DEFAULT_TIMEOUT = 30.0

LABEL_ZONE = "dcaas.zone"
LABEL_TENANT = "dcaas.tenant"
# The size an instance was started with, so quota usage can be counted from
# the containers alone (limits may not be enforced, and the config may have
# changed since the instance was made).
LABEL_CORES = "dcaas.cores"
LABEL_MEMORY = "dcaas.memory_mb"
# Which network's address is the instance's address.
LABEL_NETWORK = "dcaas.network"
OWN_LABEL_PREFIX = "dcaas."

# Quota of resources without a tenant.
DEFAULT_TENANT = "default"
QUOTA_FIELDS = ("instances", "cores", "memory_mb")

SEED_DIR = "var/lib/cloud/seed/nocloud"
SEED_ATTEMPTS = 3

# RFC 1123 host name label; also a valid podman container name.
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_PODMAN_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")

# podman's container states. ``exited`` and ``stopped`` depend on the exit code.
_STATES = {
    "created": InstanceStatus.BUILDING,
    "configured": InstanceStatus.BUILDING,
    "initialized": InstanceStatus.BUILDING,
    "running": InstanceStatus.ACTIVE,
    "paused": InstanceStatus.STOPPED,
    "stopping": InstanceStatus.DELETING,
    "removing": InstanceStatus.DELETING,
    "dead": InstanceStatus.ERROR,
}

_PODMAN_NAME = {
    "type": "text",
    "pattern": _PODMAN_NAME_RE,
    "what": "a podman name: letters, digits, '_', '.' and '-', starting with a letter or digit",
}
_MOUNT_POINT = {"type": "path", "directory": True, "example": "/home"}


def _not_own_label(key: str) -> str | None:
    if key.startswith(OWN_LABEL_PREFIX):
        return f"labels starting with {OWN_LABEL_PREFIX!r} are the engine's own; choose another prefix"
    return None


# Options that a resource's ``options`` may override; the rest are per cloud.
RESOURCE_OPTION_SPEC: dict[str, dict] = {
    "cap_add": {"type": "list", "elements": "text"},
    "command": {"type": "list", "elements": "text", "if_empty": "leave it out to run the image's own command"},
    "enforce_limits": {"type": "bool"},
    "extra_labels": {"type": "dict", "keys": {"type": "text", "check": _not_own_label}, "values": {"type": "str"}},
    "extra_networks": {"type": "list", "elements": _PODMAN_NAME},
    # Host paths bound into the instance: the head node gets podman's API
    # socket this way, as an OpenStack head would get credentials.
    "mounts": {"type": "dict", "keys": {**_MOUNT_POINT, "example": "/run/podman/podman.sock"}, "values": _MOUNT_POINT},
    "network": _PODMAN_NAME,
    "volumes": {"type": "dict", "keys": _PODMAN_NAME, "values": _MOUNT_POINT},
}
CLOUD_OPTION_SPEC: dict[str, dict] = {
    **RESOURCE_OPTION_SPEC,
    "quota": {
        "type": "dict",
        "default": {},
        "keys": {"type": "text", "what": f"a tenant's name, or {DEFAULT_TENANT!r}"},
        "values": {"type": "dict", "options": {key: {"type": "int", "min": 0} for key in QUOTA_FIELDS}},
    },
    "socket": {"type": "str"},
    "timeout": {"type": "number", "above": 0, "unit": " seconds", "default": DEFAULT_TIMEOUT},
}


@dataclass(frozen=True)
class LaunchSettings:
    """How the containers of one resource are made."""

    network: str
    volumes: dict[str, str]
    # More networks joined besides ``network`` (whose address is the
    # instance's): a head or LDAP host that serves several zones.
    extra_networks: tuple[str, ...] = ()
    mounts: dict[str, str] = field(default_factory=dict)
    cap_add: tuple[str, ...] = ()
    extra_labels: dict[str, str] = field(default_factory=dict)
    enforce_limits: bool = False
    command: tuple[str, ...] = ()


def _checked(options: dict, spec: dict, where: str) -> dict:
    errors: list[str] = []
    out = check_fields(options, spec, where, errors)
    if errors:
        raise CloudError("config", "; ".join(errors))
    return out


def _created(value: Any) -> float:
    """podman reports creation time as epoch seconds or RFC 3339 with nanoseconds."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value:
        text = value.replace("Z", "+00:00")
        # Python 3.11 reads at most microseconds.
        text = re.sub(r"(\.\d{6})\d+", r"\1", text)
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            pass
    return 0.0


# Exit codes of a container ended by a signal, as `podman stop` does (SIGTERM,
# then SIGKILL after its timeout): stopped, not failed to boot.
_SIGNAL_EXITS = (128 + 9, 128 + 15)


def _status(state: str, exit_code: int | None) -> InstanceStatus:
    state = (state or "").lower()
    if state in ("exited", "stopped"):
        return InstanceStatus.ERROR if exit_code and exit_code not in _SIGNAL_EXITS else InstanceStatus.STOPPED
    return _STATES.get(state, InstanceStatus.ERROR)


def _tenant_key(tenant: str | None) -> str:
    return tenant or DEFAULT_TENANT


def _seed_archive(instance_id: str, hostname: str, user_data: str) -> bytes:
    """A tar of the NoCloud seed. user-data is 0600: it may hold a WLM secret."""
    # instance-id changes per container, so cloud-init runs its per-instance
    # steps even in an image committed from a node that already booted once.
    meta = f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"
    now = int(time.time())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, text, mode in (("meta-data", meta, 0o644), ("user-data", user_data, 0o600)):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"{SEED_DIR}/{name}")
            info.size, info.mode, info.mtime = len(data), mode, now
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class LocalProvider(CloudProvider):
    """Containers on one podman host as the instances of a cloud.

    Options (``cloud.options``):

    - ``socket``: podman API URL (default unix:///run/podman/podman.sock);
    - ``network``: named podman network with DNS (default ``dcaas-<cluster>``),
      created when missing;
    - ``volumes``: named volume -> mount path, e.g. the shared /home;
    - ``quota``: {tenant: {instances, cores, memory_mb}}, an emulated project
      quota (resources without a tenant use the key ``default``);
    - ``cap_add``: extra capabilities; ``extra_labels``: extra labels;
    - ``enforce_limits``: apply the resource's cores and memory as cgroup
      limits (default false: test clusters oversubscribe small hosts);
    - ``command``: argv to start instead of the image's command;
    - ``timeout``: seconds to wait for an API call (default 30).

    A resource's ``options`` may override ``network``, ``volumes``,
    ``cap_add``, ``extra_labels``, ``enforce_limits`` and ``command``
    (``volumes`` and ``extra_labels`` are merged over the cloud's).
    """

    name = "local"

    def __init__(self, cluster: str, options: dict | None = None):
        super().__init__(cluster, options)
        checked = _checked(self.options, CLOUD_OPTION_SPEC, "cloud.options")
        self.socket = self.options.get("socket") or DEFAULT_SOCKET
        self.timeout = checked["timeout"]
        # A tenant's limits left out are no limit.
        self.quota = {
            tenant: {key: value for key, value in limits.items() if value is not None}
            for tenant, limits in checked["quota"].items()
        }
        self.network = self.options.get("network") or f"dcaas-{cluster}"
        self._client: Any = None

    # --- plumbing ------------------------------------------------------------
    def _api(self) -> Any:
        if self._client is None:
            try:
                import podman  # lazily: only the local cloud needs podman-py
            except ImportError:
                raise CloudError("config", MISSING_LIBRARY) from None
            try:
                self._client = podman.PodmanClient(base_url=self.socket, timeout=self.timeout)
            except ValueError as exc:
                raise CloudError("config", f"cloud.options.socket: {exc}") from None
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @contextmanager
    def _calls(self, what: str) -> Iterator[None]:
        """Turn podman-py/requests errors (all OSError) into CloudError kinds."""
        try:
            yield
        except OSError as exc:
            raise self._error(what, exc) from None

    def _error(self, what: str, exc: OSError) -> CloudError:
        status = getattr(exc, "status_code", None)
        if status is None:
            # No HTTP answer at all: refused, no socket, timeout.
            reason = exc.__cause__ or exc.__context__ or exc
            return CloudError(
                "transient",
                f"{what}: podman API at {self.socket} did not answer ({type(reason).__name__}); "
                "is the podman API service running (podman system service --time=0 <socket>)? "
                "Or fix cloud.options.socket",
            )
        detail = str(getattr(exc, "explanation", None) or (exc.args[0] if exc.args else exc))
        low = detail.lower()
        if "image not known" in low or "no such image" in low or "image not found" in low:
            return CloudError(
                "config", f"{what}: image not found on the podman host ({detail}); build it with make images"
            )
        if "command that was not found" in low or "executable file not found" in low:
            return CloudError(
                "config", f"{what}: the image cannot run its command ({detail}); fix the image or the command option"
            )
        if "already in use" in low or "already exists" in low:
            return CloudError("config", f"{what}: name conflict ({detail}); remove the old container or rename")
        if 400 <= status < 500:
            return CloudError("config", f"{what}: podman refused the request: {detail}")
        return CloudError("transient", f"{what}: podman API error {status}: {detail}")

    def _get(self, path: str, **kwargs: Any) -> Any:
        response = self._api().api.get(path, **kwargs)
        response.raise_for_status()
        return response.json()

    def _exists(self, path: str) -> bool:
        response = self._api().api.get(path)
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True

    # --- reading -------------------------------------------------------------
    def _rows(self) -> list[dict]:
        """This cluster's containers, filtered by label on the server."""
        params = {"all": True, "filters": json.dumps({"label": [f"{LABEL_CLUSTER}={self.cluster}"]})}
        with self._calls("list containers"):
            rows = self._get("/containers/json", params=params)
            # podman's own listing has no addresses and Docker's has no exit
            # codes: two calls, whatever the number of instances.
            compat = self._get("/containers/json", params=params, compatible=True)
        addresses = {}
        for row in compat:
            nets = (row.get("NetworkSettings") or {}).get("Networks") or {}
            addresses[row.get("Id")] = {n: (v or {}).get("IPAddress") or None for n, v in nets.items()}
        out = []
        for row in rows or ():
            labels = row.get("Labels") or {}
            # Belt and braces: the server filtered already.
            if labels.get(LABEL_CLUSTER) != self.cluster:
                continue
            names = row.get("Names") or [row["Id"][:12]]
            out.append(
                {
                    "id": row["Id"],
                    "name": names[0].lstrip("/"),
                    "labels": labels,
                    "state": row.get("State", ""),
                    "exit_code": row.get("ExitCode"),
                    "created": row.get("Created"),
                    "addresses": addresses.get(row["Id"], {}),
                    "error": "",
                }
            )
        return out

    def _inspect_row(self, ident: str) -> dict | None:
        with self._calls(f"inspect container {ident}"):
            response = self._api().api.get(f"/containers/{ident}/json")
            if response.status_code == 404:
                return None
            response.raise_for_status()
            data = response.json()
        state = data.get("State") or {}
        nets = (data.get("NetworkSettings") or {}).get("Networks") or {}
        return {
            "id": data["Id"],
            "name": (data.get("Name") or data["Id"][:12]).lstrip("/"),
            "labels": (data.get("Config") or {}).get("Labels") or {},
            "state": state.get("Status", ""),
            "exit_code": state.get("ExitCode"),
            "created": data.get("Created"),
            "addresses": {n: (v or {}).get("IPAddress") or None for n, v in nets.items()},
            "error": state.get("Error") or "",
        }

    def _fault(self, row: dict) -> str:
        """Why an instance failed: exit code, podman's error, the last line it printed."""
        parts = [f"exited with code {row['exit_code']}" if row["exit_code"] else f"container is {row['state']}"]
        error, lines = row["error"], []
        # Best effort, and only for failed instances: the fault is for humans.
        with suppress(CloudError), self._calls("read logs"):
            container = self._api().containers.get(row["id"])
            error = error or (container.attrs.get("State") or {}).get("Error") or ""
            output = b"".join(container.logs(tail=5)).decode("utf-8", "replace")
            lines = [line.strip() for line in output.splitlines() if line.strip()]
        if error:
            parts.append(error)
        if lines:
            parts.append(f"last output: {lines[-1][:200]}")
        return "; ".join(parts)

    def _instance(self, row: dict, network: str | None = None) -> Instance:
        labels = row["labels"]
        status = _status(row["state"], row["exit_code"])
        addresses = row["addresses"]
        net = network or labels.get(LABEL_NETWORK) or self.network
        address = addresses.get(net) or next((a for a in addresses.values() if a), None)
        return Instance(
            id=row["id"],
            name=row["name"],
            resource=labels.get(LABEL_RESOURCE, ""),
            status=status,
            created=_created(row["created"]),
            role=labels.get(LABEL_ROLE, ROLE_WORKER),
            address=address if status is InstanceStatus.ACTIVE else None,
            zone=labels.get(LABEL_ZONE) or None,
            tenant=labels.get(LABEL_TENANT) or None,
            fault=self._fault(row) if status is InstanceStatus.ERROR else None,
        )

    def list_instances(self) -> list[Instance]:
        return [self._instance(row) for row in self._rows()]

    # --- quota -----------------------------------------------------------------
    def _usage(self, tenant: str) -> dict[str, int]:
        used = dict.fromkeys(QUOTA_FIELDS, 0)
        for row in self._rows():
            labels = row["labels"]
            if _tenant_key(labels.get(LABEL_TENANT)) != tenant:
                continue
            # Like a cloud, an instance in error still holds its quota.
            used["instances"] += 1
            for key, label in (("cores", LABEL_CORES), ("memory_mb", LABEL_MEMORY)):
                # A label edited by hand by someone counts as zero.
                with suppress(ValueError):
                    used[key] += int(labels.get(label, 0))
        return used

    def headroom(self, resource: Resource) -> Headroom:
        tenant = _tenant_key(resource.tenant)
        limits = self.quota.get(tenant)
        if not limits:
            return Headroom()
        used = self._usage(tenant)
        left = {key: max(0, limits[key] - used[key]) if key in limits else None for key in QUOTA_FIELDS}
        return Headroom(**left)

    def _check_quota(self, resource: Resource) -> None:
        tenant = _tenant_key(resource.tenant)
        limits = self.quota.get(tenant)
        if not limits:
            return
        used = self._usage(tenant)
        want = {"instances": 1, "cores": resource.cores, "memory_mb": resource.memory_mb}
        over = [
            f"{key} {used[key]}+{want[key]} > {limits[key]}"
            for key in QUOTA_FIELDS
            if key in limits and used[key] + want[key] > limits[key]
        ]
        if over:
            raise CloudError(
                "quota",
                f"resource {resource.name!r}: quota of tenant {tenant!r} exceeded ({', '.join(over)})",
            )

    # --- creating --------------------------------------------------------------
    def launch_settings(self, resource: Resource) -> LaunchSettings:
        """The launch settings of a resource: cloud options with the resource's on top."""
        ropts = resource.options
        _checked(ropts, RESOURCE_OPTION_SPEC, f"resource {resource.name!r} options")

        def pick(key: str, default: Any) -> Any:
            if key in ropts:
                return ropts[key]
            return self.options.get(key, default)

        return LaunchSettings(
            network=pick("network", None) or self.network,
            extra_networks=tuple(pick("extra_networks", None) or ()),
            volumes={**(self.options.get("volumes") or {}), **(ropts.get("volumes") or {})},
            mounts=dict(pick("mounts", None) or {}),
            cap_add=tuple(pick("cap_add", None) or ()),
            extra_labels={**(self.options.get("extra_labels") or {}), **(ropts.get("extra_labels") or {})},
            enforce_limits=bool(pick("enforce_limits", False)),
            command=tuple(pick("command", None) or ()),
        )

    def ensure_network(self, name: str | None = None) -> str:
        """Create the named network (with DNS) when missing; return its name.

        Refuses an existing network without DNS, such as podman's default:
        nodes there cannot resolve each other by name.
        """
        name = name or self.network
        with self._calls(f"network {name}"):
            response = self._api().api.get(f"/networks/{name}/json")
            if response.status_code == 404:
                self._api().networks.create(name, dns_enabled=True, labels={LABEL_CLUSTER: self.cluster})
                return name
            response.raise_for_status()
            data = response.json()
        if not data.get("dns_enabled", False):
            raise CloudError(
                "config",
                f"network {name!r} has DNS disabled, so nodes cannot resolve each other by name; "
                "set cloud.options.network to a network created with DNS (any name but 'podman')",
            )
        return name

    def _labels(self, spec: LaunchSpec, settings: LaunchSettings) -> dict[str, str]:
        res = spec.resource
        labels = {**settings.extra_labels, **spec.labels}
        # Ours last: nothing in the spec or the options may hide the owner.
        labels.update(
            {
                LABEL_CLUSTER: self.cluster,
                LABEL_ROLE: spec.labels.get(LABEL_ROLE, ROLE_WORKER),
                LABEL_RESOURCE: res.name,
                LABEL_CORES: str(res.cores),
                LABEL_MEMORY: str(res.memory_mb),
                LABEL_NETWORK: settings.network,
            }
        )
        if res.zone:
            labels[LABEL_ZONE] = res.zone
        if res.tenant:
            labels[LABEL_TENANT] = res.tenant
        return labels

    def create(self, spec: LaunchSpec) -> Instance:
        res = spec.resource
        if not _HOSTNAME_RE.match(spec.name):
            raise CloudError("config", f"instance name {spec.name!r} is not a valid host name")
        settings = self.launch_settings(res)
        self._check_quota(res)
        client = self._api()
        with self._calls(f"resource {res.name!r}: look up image {res.image}"):
            # podman 4.3 answers a create with a missing image with a bare 500.
            if not self._exists(f"/images/{res.image}/exists"):
                raise CloudError(
                    "config",
                    f"resource {res.name!r}: image {res.image!r} not found on the podman host; "
                    "build it with make images",
                )
            for volume in settings.volumes:
                # podman would quietly make an empty one: a typo must not
                # give workers an empty /home.
                if not self._exists(f"/volumes/{volume}/exists"):
                    raise CloudError(
                        "config",
                        f"resource {res.name!r}: volume {volume!r} does not exist; create it "
                        f"(podman volume create {volume}) or fix cloud.options.volumes",
                    )
        for network in (settings.network, *settings.extra_networks):
            self.ensure_network(network)

        kwargs: dict[str, Any] = {
            "name": spec.name,
            "hostname": spec.name,
            "labels": self._labels(spec, settings),
            # "always": /sbin/init runs as PID 1 with systemd's mounts and stop
            # signal, however the image spells its command.
            "systemd": "always",
            "networks": {net: {} for net in (settings.network, *settings.extra_networks)},
            "volumes": {vol: {"bind": path, "mode": "rw"} for vol, path in settings.volumes.items()},
        }
        if settings.mounts:
            kwargs["mounts"] = [
                {"type": "bind", "source": src, "target": dst, "read_only": False}
                for src, dst in settings.mounts.items()
            ]
        if settings.cap_add:
            kwargs["cap_add"] = list(settings.cap_add)
        if settings.enforce_limits:
            kwargs["cpu_period"] = 100_000
            kwargs["cpu_quota"] = 100_000 * res.cores
            kwargs["mem_limit"] = res.memory_mb * 1024 * 1024
        with self._calls(f"resource {res.name!r}: create container {spec.name}"):
            container = client.containers.create(res.image, command=list(settings.command) or None, **kwargs)
        try:
            self._put_seed(container.id, spec)
            with self._calls(f"container {spec.name}: start"):
                container.start()
            row = self._inspect_row(container.id)
        except BaseException:
            # A half-made instance would hold quota and its name. Should the
            # removal fail too, the original error is the one to report; the
            # labelled leftover is listed and replaced like any failed boot.
            with suppress(CloudError):
                self._remove(container.id)
            raise
        if row is None:
            raise CloudError("transient", f"container {spec.name} vanished right after it started")
        return self._instance(row, settings.network)

    def _put_seed(self, container_id: str, spec: LaunchSpec) -> None:
        archive = _seed_archive(container_id, spec.name, spec.user_data)
        with self._calls(f"container {spec.name}: write cloud-init seed"):
            for attempt in range(SEED_ATTEMPTS):
                response = self._api().api.put(
                    f"/containers/{container_id}/archive", params={"path": "/"}, data=archive
                )
                # Under load podman 4.3 sometimes fails the copy with a 500
                # ("passing bulk input to subprocess: ... broken pipe"); writing
                # the same two files again is harmless.
                if response.status_code < 500 or attempt == SEED_ATTEMPTS - 1:
                    response.raise_for_status()
                    return
                time.sleep(0.2 * (attempt + 1))

    # --- deleting --------------------------------------------------------------
    def _remove(self, ident: str) -> None:
        """rm -f -t 0; a container that is already gone is fine."""
        with self._calls(f"remove container {ident}"):
            response = self._api().api.delete(
                f"/containers/{ident}", params={"force": True, "timeout": 0, "volumes": True}
            )
            if response.status_code != 404:
                response.raise_for_status()

    def delete(self, instance: Instance) -> None:
        # Re-read the live container: the Instance may be stale or made up,
        # and the labels on the container are what makes it ours.
        row = self._inspect_row(instance.id)
        if row is None:
            return
        if row["labels"].get(LABEL_CLUSTER) != self.cluster:
            raise CloudError(
                "config",
                f"refusing to delete container {row['name']} ({row['id'][:12]}): it does not carry "
                f"label {LABEL_CLUSTER}={self.cluster}",
            )
        self._remove(row["id"])
