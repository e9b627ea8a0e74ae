# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel NFS, for real: the nfs_server and nfs_client roles in two QEMU VMs.

Containers on this host cannot show kernel NFS (the host kernel has neither
server nor client), so two Debian VMs boot under QEMU (software emulation)
on a private bridge, hack/vm/cluster.sh. Ansible configures one as the NFS
server and the other as its client over ssh, exactly as on a real cluster,
then the test checks what a cluster admin would check by hand.

Needs root (bridge and tap devices). hack/vm/setup.sh installs QEMU and the
image tools; the test runs it when QEMU is missing, fails when that does not
work as root, and skips only for a user who cannot install packages. The VM
image is built once and cached (hack/vm/build-image.sh).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
VM_DIR = ROOT / "hack" / "vm"
COLLECTIONS = ROOT / "build" / "collections"
SERVER, CLIENT = "nfs-server", "nfs-client"
USER, USER_UID = "alice", 2001
# The image build (first run only) and two TCG boots in parallel.
UP_TIMEOUT = 1800
PLAYBOOK_TIMEOUT = 1200

PLAYBOOK = textwrap.dedent(
    """\
    - name: NFS server
      hosts: nfs_servers
      gather_facts: false
      roles:
        - role: dcaas.cluster.nfs_server
          nfs_server_cluster_network: {cluster_network}
          nfs_server_exports:
            - path: /home
            - path: /srv/scratch
              mode: "1777"

    - name: NFS clients
      hosts: nfs_clients
      gather_facts: false
      roles:
        - role: dcaas.cluster.nfs_client
          nfs_client_server: {server_address}
          nfs_client_mounts:
            - export: /home
              path: /home
            - export: /srv/scratch
              path: /scratch
    """
)


@dataclass
class VmCluster:
    run_dir: Path
    network: str  # the VMs' subnet, CIDR: the cluster network
    addresses: dict[str, str]
    boot_s: float
    timings: dict[str, float] = field(default_factory=dict)

    def ssh(self, name: str, command: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["ssh", "-F", str(self.run_dir / "ssh_config"), name, command],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"{name}: `{command}` exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def qemu_memory_kib(self) -> dict[str, tuple[int, int]]:
        """(current RSS, peak RSS) of each VM's QEMU process, in KiB."""
        usage = {}
        for name in self.addresses:
            pid = (self.run_dir / f"{name}.pid").read_text().strip()
            status = Path(f"/proc/{pid}/status").read_text()
            fields = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
            usage[name] = (int(fields["VmRSS"]), int(fields["VmHWM"]))
        return usage


def ensure_qemu() -> None:
    """Install the VM tooling when QEMU is missing; fail if that fails as root."""
    if shutil.which("qemu-system-x86_64"):
        return
    if os.geteuid() != 0:
        pytest.skip("qemu-system-x86_64 is missing and cannot be installed without root (run hack/vm/setup.sh)")
    proc = subprocess.run(["bash", str(VM_DIR / "setup.sh")], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not shutil.which("qemu-system-x86_64"):
        pytest.fail(
            "qemu-system-x86_64 is missing and hack/vm/setup.sh could not install it: "
            + (proc.stderr.strip() or proc.stdout.strip())[-500:]
        )


def ansible_env(run_dir: Path) -> dict[str, str]:
    # A config of our own: the repository's ansible.cfg points at the local
    # cloud's inventory, which has nothing to do with these VMs.
    cfg = run_dir / "ansible.cfg"
    cfg.write_text(
        textwrap.dedent(
            """\
            [defaults]
            host_key_checking = False
            retry_files_enabled = False
            interpreter_python = /usr/bin/python3
            forks = 5
            timeout = 60
            [ssh_connection]
            pipelining = True
            """
        )
    )
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(cfg),
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def ansible_playbook(run_dir: Path, playbook: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "-i", str(run_dir / "inventory.ini"), str(playbook), *args],
        capture_output=True,
        text=True,
        cwd=run_dir,
        env=ansible_env(run_dir),
        timeout=PLAYBOOK_TIMEOUT,
        check=False,
    )


def recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP counters per host."""
    counts = {}
    for host, rest in re.findall(r"^(\S+)\s+:\s+(ok=\d+.*)$", output, re.M):
        counts[host] = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", rest)}
    return counts


def exported_clients(exportfs_s: str) -> dict[str, list[str]]:
    """Parse `exportfs -s` ("PATH CLIENT(OPTIONS) ...") into {path: [client, ...]}."""
    exports = {}
    for line in exportfs_s.splitlines():
        if line.strip():
            path, rest = line.split(None, 1)
            exports[path] = re.findall(r"(\S+?)\([^)]*\)", rest)
    return exports


@pytest.fixture(scope="module")
def vm_cluster():
    ensure_qemu()
    # Not under pytest's basetemp: pytest prunes old basetemps when other
    # sessions start, and the pid files in here are how the VMs are stopped.
    run_dir = Path(tempfile.mkdtemp(prefix="dcaas-nfs-vm."))
    t0 = time.monotonic()
    try:
        # Inside the try: a timeout kills cluster.sh before it can clean up.
        proc = subprocess.run(
            ["bash", str(VM_DIR / "cluster.sh"), "up", str(run_dir), SERVER, CLIENT],
            capture_output=True,
            text=True,
            timeout=UP_TIMEOUT,
            check=False,
        )
        assert proc.returncode == 0, f"hack/vm/cluster.sh up failed:\n{proc.stderr[-3000:]}"
        addresses = dict(line.split() for line in (run_dir / "hosts").read_text().splitlines())
        network = (run_dir / "network").read_text().strip()
        cluster = VmCluster(run_dir=run_dir, network=network, addresses=addresses, boot_s=time.monotonic() - t0)
        (run_dir / "inventory.ini").write_text(
            f"[nfs_servers]\n{SERVER} ansible_host={addresses[SERVER]}\n\n"
            f"[nfs_clients]\n{CLIENT} ansible_host={addresses[CLIENT]}\n\n"
            "[all:vars]\nansible_user=root\n"
            f"ansible_ssh_private_key_file={run_dir / 'id_ed25519'}\n"
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n"
        )
        yield cluster
    finally:
        down = subprocess.run(
            ["bash", str(VM_DIR / "cluster.sh"), "down", str(run_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert down.returncode == 0, f"hack/vm/cluster.sh down failed:\n{down.stderr}"
        shutil.rmtree(run_dir, ignore_errors=True)


def test_kernel_nfs_between_two_vms(vm_cluster: VmCluster) -> None:
    vms = vm_cluster
    playbook = vms.run_dir / "nfs.yml"
    playbook.write_text(PLAYBOOK.format(cluster_network=vms.network, server_address=vms.addresses[SERVER]))

    t0 = time.monotonic()
    first = ansible_playbook(vms.run_dir, playbook)
    vms.timings["first run"] = time.monotonic() - t0
    assert first.returncode == 0, f"first run failed:\n{first.stdout[-6000:]}\n{first.stderr[-2000:]}"
    counts = recap(first.stdout)
    assert set(counts) == {SERVER, CLIENT}
    assert counts[SERVER]["changed"] > 0 and counts[CLIENT]["changed"] > 0

    # The client really mounted NFSv4.2 from the server, hard, over TCP.
    mounts = vms.ssh(CLIENT, "findmnt -n -t nfs4 -o TARGET,SOURCE,OPTIONS").stdout
    by_target = {line.split()[0]: line.split()[1:] for line in mounts.splitlines()}
    assert set(by_target) == {"/home", "/scratch"}, mounts
    assert by_target["/scratch"][0] == f"{vms.addresses[SERVER]}:/srv/scratch"
    options = by_target["/scratch"][1].split(",")
    assert {"vers=4.2", "hard", "proto=tcp"} <= set(options), options
    fstab = vms.ssh(CLIENT, "cat /etc/fstab").stdout
    assert re.search(rf"^{re.escape(vms.addresses[SERVER])}:/home\s+/home\s+nfs\s+\S*nfsvers=4\.2", fstab, re.M), fstab

    # A user's file written on the client is on the server's disk, theirs.
    # The account exists on both hosts with the same uid, as LDAP would
    # provide it; its home directory is made on the server.
    vms.ssh(SERVER, f"id {USER} || useradd --uid {USER_UID} --create-home --shell /bin/bash {USER}")
    vms.ssh(CLIENT, f"id {USER} || useradd --uid {USER_UID} --no-create-home --shell /bin/bash {USER}")
    token = f"written by {USER} on {CLIENT} at {time.time():.0f}"
    vms.ssh(CLIENT, f"su - {USER} -c {shlex.quote(f'echo {shlex.quote(token)} > ~/from-client.txt')}")
    assert vms.ssh(SERVER, f"cat /home/{USER}/from-client.txt").stdout.strip() == token
    assert vms.ssh(SERVER, f"stat -c %u /home/{USER}/from-client.txt").stdout.strip() == str(USER_UID)
    # ...and the other way round.
    vms.ssh(SERVER, "echo from-server > /srv/scratch/from-server.txt")
    assert vms.ssh(CLIENT, "cat /scratch/from-server.txt").stdout.strip() == "from-server"
    # root_squash: root on the client is nobody on the server, so it cannot
    # write into root's 0755 /home, and what it creates in the 1777 scratch
    # directory belongs to nobody.
    denied = vms.ssh(CLIENT, "touch /home/root-was-here", check=False)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr, denied
    vms.ssh(CLIENT, "touch /scratch/from-root")
    assert vms.ssh(SERVER, "stat -c %U /srv/scratch/from-root").stdout.strip() == "nobody"

    # The server exports to the cluster network and to nothing else.
    exports = exported_clients(vms.ssh(SERVER, "exportfs -s").stdout)
    assert exports == {"/home": [vms.network], "/srv/scratch": [vms.network]}, exports
    table = vms.ssh(SERVER, "cat /etc/exports.d/dcaas.exports").stdout
    assert "*" not in table.replace("# ", ""), table

    # Idempotence: a second run changes nothing on either host.
    t0 = time.monotonic()
    second = ansible_playbook(vms.run_dir, playbook)
    vms.timings["second run"] = time.monotonic() - t0
    assert second.returncode == 0, f"second run failed:\n{second.stdout[-6000:]}"
    counts = recap(second.stdout)
    assert counts[SERVER]["changed"] == 0 and counts[CLIENT]["changed"] == 0, (
        "second run is not idempotent:\n" + "\n".join(re.findall(r"^changed: .*$", second.stdout, re.M))
    )

    memory = vms.qemu_memory_kib()
    print(
        f"\nVMs up (image cached or built, boot, cloud-init) {vms.boot_s:.0f} s; "
        + "; ".join(f"{step} {seconds:.0f} s" for step, seconds in vms.timings.items())
        + "; QEMU RSS now/peak: "
        + ", ".join(f"{name} {now // 1024}/{peak // 1024} MiB" for name, (now, peak) in memory.items())
    )


# ganesha: this host may itself be a container, where the kernel backend is
# refused before the exports are looked at.
GANESHA = {"nfs_server_backend": "ganesha"}


@pytest.mark.parametrize(
    ("role", "role_vars", "message"),
    [
        (
            "nfs_server",
            {
                **GANESHA,
                "nfs_server_cluster_network": "10.0.0.0/24",
                "nfs_server_exports": [{"path": "/srv/x", "clients": ["*"]}],
            },
            "wildcards",
        ),
        (
            "nfs_server",
            {**GANESHA, "nfs_server_exports": [{"path": "/srv/x"}]},
            "nfs_server_cluster_network is not set",
        ),
        ("nfs_server", {**GANESHA, "nfs_server_cluster_network": "0.0.0.0/0"}, "/0 are refused"),
        (
            "nfs_server",
            {**GANESHA, "nfs_server_cluster_network": "10.0.0.0/24", "nfs_server_export_options": ["rw", "fsid=0"]},
            "not ['fsid']",
        ),
        ("nfs_client", {}, "set nfs_client_server"),
    ],
    ids=["world-export", "no-cluster-network", "slash-zero", "ganesha-unknown-option", "client-without-server"],
)
def test_preflight_refuses_bad_input_before_any_change(
    tmp_path: Path, role: str, role_vars: dict[str, object], message: str
) -> None:
    """Runs on this host in check mode, limited to the preflight phase: the
    role must stop there, so nothing could change even if it did not."""
    playbook = tmp_path / "preflight.yml"
    play = [
        {
            "name": "preflight",
            "hosts": "localhost",
            "gather_facts": False,
            "roles": [{"role": f"dcaas.cluster.{role}", **role_vars}],
        }
    ]
    playbook.write_text(json.dumps(play))
    (tmp_path / "inventory.ini").write_text("localhost ansible_connection=local\n")
    proc = ansible_playbook(tmp_path, playbook, "--check", "--tags", f"{role}_preflight")
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert message in proc.stdout, proc.stdout[-3000:]
