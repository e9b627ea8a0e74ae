# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real Slurm 22.05 cluster in podman containers, for integration tests.

Plain functions and a class for scripts (the fixture capture in
tests/unit/fixtures/slurm/capture.py uses them), and pytest fixtures for a
conftest.py::

    from slurm_env import slurm_cluster, slurm_images  # noqa: F401

What one environment owns, all named ``<prefix>-...`` and labelled
``dcaas.test-env=<prefix>``: a podman network with DNS (aardvark), a named
volume mounted as /home everywhere (the local cloud's shared home), a munge
key in a private temp directory, the head container (slurmctld, configless)
and the worker containers started from it. ``destroy()`` removes exactly
those. Workers boot the way the local cloud boots them: created, NoCloud
seed copied in, started; cloud-init applies the user-data that
``SlurmManager.join_config`` renders.

Images come from hack/build-images.sh; the fixtures skip when they are missing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.model import LABEL_CLUSTER, Resource
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import Runner
from ansible_collections.dcaas.cluster.plugins.module_utils.userdata import render as render_user_data
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.slurm import SlurmManager

HEAD_IMAGE = "localhost/dcaas/slurm-head:bookworm"
WORKER_IMAGE = "localhost/dcaas/slurm-worker:bookworm"
ENV_LABEL = "dcaas.test-env"
MUNGE_KEY_TARGET = "/run/secrets/munge.key"  # where the head image looks for it

T = TypeVar("T")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
# Slurm job states of a job that did not complete (GONE: no longer known).
FAILED_STATES = frozenset({"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "GONE"})


def ansible_env() -> dict[str, str]:
    """The environment for ansible commands run from tests: this collection, this repo's ansible.cfg, this venv."""
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, "build", "collections")
    env["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


class SlurmEnvError(RuntimeError):
    """The test cluster could not be set up; the message says which step failed."""


def podman(*args: str, check: bool = True, input_text: str | None = None, timeout: float = 120) -> str:
    """Run podman; on failure raise SlurmEnvError with its stderr."""
    proc = subprocess.run(
        ["podman", *args], input=input_text, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise SlurmEnvError(f"podman {' '.join(args[:3])} ... failed (rc={proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def missing_images() -> list[str]:
    """Images this module needs that are not built (empty list: all there)."""
    if shutil.which("podman") is None:
        return [HEAD_IMAGE, WORKER_IMAGE]
    return [
        img
        for img in (HEAD_IMAGE, WORKER_IMAGE)
        if subprocess.run(["podman", "image", "exists", img], capture_output=True, check=False).returncode != 0
    ]


def wait_for(what: str, probe: Callable[[], T], timeout: float, interval: float = 0.1) -> T:
    """Call ``probe`` until it returns something truthy; raise SlurmEnvError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SlurmEnvError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Worker:
    name: str
    created_s: float  # podman create + seed copy
    registered_s: float | None = None  # podman start -> node in sinfo


@dataclass
class SlurmEnv:
    """One test cluster; create with :func:`create_env`, end with :meth:`destroy`."""

    prefix: str
    cluster: str
    tmpdir: str
    network: str = ""
    volume: str = ""
    head: str = ""
    users: dict[str, int] = field(default_factory=dict)
    workers: list[str] = field(default_factory=list)

    @property
    def munge_key_file(self) -> str:
        return os.path.join(self.tmpdir, "munge.key")

    @property
    def conf_server(self) -> str:
        return f"{self.head}:6817"

    def runner(self, container: str | None = None) -> Runner:
        """A Runner that runs commands in the head (or another) container."""
        return Runner(prefix=["podman", "exec", container or self.head])

    def manager(self) -> SlurmManager:
        """The engine's Slurm adapter, pointed at this cluster's head."""
        return SlurmManager(
            self.runner(),
            {"conf_server": self.conf_server, "munge_key_file": self.munge_key_file},
            cluster=self.cluster,
        )

    def exec(
        self,
        argv: Sequence[str],
        container: str | None = None,
        user: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` in a container (default: the head), as ``user`` if given."""
        cmd = ["podman", "exec", *(["--user", user] if user else []), container or self.head, *argv]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise SlurmEnvError(
                f"{' '.join(argv)} in {container or self.head} failed (rc={proc.returncode}): "
                f"{proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc

    def add_user(self, name: str, uid: int) -> None:
        """A cluster user: home on the shared volume, same uid on every worker started later."""
        self.exec(["useradd", "--create-home", "--uid", str(uid), "--shell", "/bin/bash", name])
        self.users[name] = uid

    def node_state(self, name: str) -> str | None:
        """sinfo's long state of a node (``idle``, ``drained``...), None if unknown to slurmctld."""
        out = self.exec(["sinfo", "--noheader", "--Node", "--nodes", name, "--format", "%T"], check=False)
        return (out.stdout.strip() or None) if out.returncode == 0 else None

    def user_data(self, name: str, resource: Resource, extra: dict | None = None) -> str:
        """The worker's user-data: the adapter's join config plus the cluster's users."""
        extra = dict(extra or {})
        # Stand-in for the LDAP client of a real cluster: same names and uids
        # everywhere, homes on the shared volume.
        extra["runcmd"] = [
            *[
                [
                    "useradd",
                    "--no-create-home",
                    "--home-dir",
                    f"/home/{u}",
                    "--uid",
                    str(uid),
                    "--shell",
                    "/bin/bash",
                    u,
                ]
                for u, uid in sorted(self.users.items())
            ],
            *extra.get("runcmd", []),
        ]
        if not extra["runcmd"]:
            del extra["runcmd"]
        return render_user_data(self.manager().join_config(resource, name), extra)

    def start_worker(
        self, name: str, user_data: str, wait: bool = True, timeout: float = 60, labels: dict[str, str] | None = None
    ) -> Worker:
        """Create a worker container, copy its NoCloud seed in, start it.

        ``name`` is the container name, its hostname and (through the
        user-data) the Slurm node name. With ``wait`` the call returns once
        slurmctld lists the node.
        """
        t0 = time.monotonic()
        label_args = [f"--label={k}={v}" for k, v in {ENV_LABEL: self.prefix, **(labels or {})}.items()]
        podman(
            "create",
            "--name",
            name,
            "--hostname",
            name,
            "--network",
            self.network,
            "--volume",
            f"{self.volume}:/home",
            *label_args,
            WORKER_IMAGE,
        )
        self.workers.append(name)
        seed = tempfile.mkdtemp(prefix="seed-", dir=self.tmpdir)
        # user-data holds the munge key: private to root like the key itself.
        for fname, text in (("meta-data", f"instance-id: {name}\nlocal-hostname: {name}\n"), ("user-data", user_data)):
            path = os.path.join(seed, fname)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as fh:
                fh.write(text)
            podman("cp", path, f"{name}:/var/lib/cloud/seed/nocloud/{fname}")
        shutil.rmtree(seed)
        worker = Worker(name=name, created_s=time.monotonic() - t0)
        t1 = time.monotonic()
        podman("start", name)
        if wait:
            wait_for(f"node {name} to register with slurmctld", lambda: self.node_state(name), timeout)
            worker.registered_s = time.monotonic() - t1
        return worker

    def remove_container(self, name: str) -> None:
        podman("rm", "--force", "--time", "0", name, check=False)
        if name in self.workers:
            self.workers.remove(name)

    def destroy(self) -> None:
        """Remove everything this environment created; safe to call twice."""
        for name in [*self.workers, self.head]:
            if name:
                podman("rm", "--force", "--time", "0", name, check=False)
        self.workers.clear()
        # Anything else labelled for this environment (a test that started
        # containers itself, e.g. through the local cloud provider).
        leftovers = podman("ps", "--all", "--quiet", "--filter", f"label={ENV_LABEL}={self.prefix}", check=False)
        for cid in leftovers.split():
            podman("rm", "--force", "--time", "0", cid, check=False)
        if self.volume:
            podman("volume", "rm", "--force", self.volume, check=False)
        if self.network:
            podman("network", "rm", "--force", self.network, check=False)
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def create_env(
    prefix: str | None = None, cluster: str = "dcaas", timeout: float = 60, head_args: Sequence[str] = ()
) -> SlurmEnv:
    """Network, /home volume, munge key, head container; returns once ``scontrol ping`` says UP.

    ``prefix`` names every podman object (default ``dcaas-test-<random>``,
    or ``$DCAAS_TEST_PREFIX-<random>``). ``head_args`` go to ``podman run``
    of the head, e.g. ``["-v", "/run/podman/podman.sock:/run/podman/podman.sock"]``
    for an engine in the head that drives the local cloud. On any failure
    everything created so far is removed before the error is raised.
    """
    prefix = prefix or f"{os.environ.get('DCAAS_TEST_PREFIX', 'dcaas-test')}-{secrets.token_hex(3)}"
    env = SlurmEnv(prefix=prefix, cluster=cluster, tmpdir=tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        env.network = f"{prefix}-net"
        podman("network", "create", f"--label={ENV_LABEL}={prefix}", env.network)
        env.volume = f"{prefix}-home"
        podman("volume", "create", f"--label={ENV_LABEL}={prefix}", env.volume)
        # munged wants 1024 random bytes, readable by its owner only.
        fd = os.open(env.munge_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(1024))
        env.head = f"{prefix}-head"
        podman(
            "run",
            "--detach",
            "--name",
            env.head,
            "--hostname",
            env.head,
            "--network",
            env.network,
            f"--label={ENV_LABEL}={prefix}",
            "--volume",
            f"{env.volume}:/home",
            "--volume",
            f"{env.munge_key_file}:{MUNGE_KEY_TARGET}:ro",
            "--env",
            f"DCAAS_CLUSTER={cluster}",
            *head_args,
            HEAD_IMAGE,
        )

        def controller_up() -> bool:
            proc = env.exec(["scontrol", "ping"], check=False)
            return "is UP" in proc.stdout

        try:
            wait_for(f"slurmctld in {env.head}", controller_up, timeout, interval=0.2)
        except SlurmEnvError:
            journal = env.exec(["journalctl", "--no-pager", "-n", "30"], check=False).stdout
            raise SlurmEnvError(
                f"slurmctld in {env.head} did not come up within {timeout:.0f} s; last journal lines:\n{journal}"
            ) from None
    except BaseException:
        env.destroy()
        raise
    return env


def controller_pid(env: SlurmEnv) -> int:
    """slurmctld's PID in the head: unchanged means it was never restarted."""
    out = env.exec(["systemctl", "show", "--property=MainPID", "--value", "slurmctld"]).stdout
    return int(out.strip())


def remove_leftovers(prefix: str) -> None:
    """Remove every podman object labelled with ``prefix`` (after a crashed run)."""
    for kind, ls in (("container", ["ps", "--all"]), ("volume", ["volume", "ls"]), ("network", ["network", "ls"])):
        out = podman(*ls, "--quiet", "--filter", f"label={ENV_LABEL}={prefix}", check=False)
        for obj in out.split():
            rm = ["rm", "--force", "--time", "0"] if kind == "container" else [kind, "rm", "--force"]
            podman(*rm, obj, check=False)


def sbatch(env: SlurmEnv, *args: str) -> str:
    """Submit as alice from her home; returns the job id."""
    out = env.exec(["sbatch", "--parsable", "--chdir=/home/alice", *args], user="alice").stdout.strip()
    return out.split(";")[0]


def job_state(env: SlurmEnv, job_id: str) -> str:
    """A job's state word; GONE once slurmctld has forgotten it (MinJobAge)."""
    out = env.exec(["scontrol", "-o", "show", "job", job_id], check=False).stdout
    for word in out.split():
        if word.startswith("JobState="):
            return word.split("=", 1)[1]
    return "GONE"


def our_containers(cluster: str) -> list[str]:
    """Names of the containers that carry the engine's label for ``cluster``."""
    out = podman("ps", "--all", "--format", "{{.Names}}", "--filter", f"label={LABEL_CLUSTER}={cluster}")
    return sorted(out.split())


# --- pytest fixtures --------------------------------------------------------


@pytest.fixture(scope="session")
def slurm_images() -> None:
    """Skip unless podman and the Slurm images are available."""
    missing = missing_images()
    if missing:
        pytest.skip(f"needs podman and {', '.join(missing)}: run hack/build-images.sh")


@pytest.fixture(scope="module")
def slurm_cluster(slurm_images: None) -> Iterator[SlurmEnv]:
    """A running head (users: alice uid 5001); workers are the test's to start."""
    env = create_env()
    try:
        env.add_user("alice", 5001)
        yield env
    finally:
        env.destroy()
