# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a worker's NoCloud seed exactly as the engine renders it.

verify.yml boots an instance of the baked worker image with this seed, so
the test proves that the image and the engine's user-data
(SlurmManager.join_config + userdata.render) fit together.

The munge key arrives base64-encoded on stdin (never on the command line);
it is written to a private file only for join_config to read, and removed.
Both seed files are mode 0600 because user-data carries the key.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile

from ansible_collections.dcaas.cluster.plugins.module_utils.model import Resource
from ansible_collections.dcaas.cluster.plugins.module_utils.userdata import render
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.slurm import SlurmManager


def write_private(path: str, data: bytes) -> None:
    """Write ``data`` to a file only root can read, created with that mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for meta-data and user-data")
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--conf-server", required=True)
    parser.add_argument("--node", required=True, help="node name = container name = host name")
    parser.add_argument("--resource", default="baked")
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--memory-mb", type=int, default=1024)
    args = parser.parse_args()

    key = base64.b64decode(sys.stdin.read().strip(), validate=True)
    os.makedirs(args.out, mode=0o700, exist_ok=True)
    resource = Resource(name=args.resource, flavor="local", image="baked", cores=args.cores, memory_mb=args.memory_mb)
    with tempfile.TemporaryDirectory(dir=args.out) as private:
        key_file = os.path.join(private, "munge.key")
        write_private(key_file, key)
        options = {"conf_server": args.conf_server, "munge_key_file": key_file}
        manager = SlurmManager(None, options, cluster=args.cluster)
        user_data = render(manager.join_config(resource, args.node))
    meta_data = f"instance-id: {args.node}\nlocal-hostname: {args.node}\n"
    write_private(os.path.join(args.out, "user-data"), user_data.encode("utf-8"))
    write_private(os.path.join(args.out, "meta-data"), meta_data.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
