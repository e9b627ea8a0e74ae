# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one seam through which the engine runs commands.

Private to the dcaas.cluster collection. Workload-manager adapters never call
subprocess themselves: they get a Runner, so tests can record or replay what
they run, and the same adapter can drive a WLM on this host or, through a
``prefix`` such as ``["podman", "exec", "head"]``, on another one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass


class CommandError(Exception):
    """A command failed; the message names the command and its stderr."""

    def __init__(self, argv: Sequence[str], rc: int, stdout: str, stderr: str):
        self.argv = list(argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        detail = (stderr or stdout).strip().splitlines()
        tail = detail[-1] if detail else "no output"
        super().__init__(f"command {' '.join(self.argv)!r} failed with rc={rc}: {tail}")


@dataclass
class Runner:
    prefix: Sequence[str] = ()
    timeout: float = 60.0

    def run(self, argv: Sequence[str], check: bool = True, input_text: str | None = None) -> str:
        full = [*self.prefix, *argv]
        if input_text is not None and self.prefix and "-i" not in self.prefix:
            # podman/docker exec need -i to pass stdin through.
            full = [*self.prefix[:2], "-i", *self.prefix[2:], *argv]
        try:
            proc = subprocess.run(
                full,
                input=input_text,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise CommandError(full, 127, "", f"{full[0]}: not found ({exc})") from None
        except subprocess.TimeoutExpired:
            raise CommandError(full, -1, "", f"timed out after {self.timeout:.0f} s") from None
        if check and proc.returncode != 0:
            raise CommandError(full, proc.returncode, proc.stdout, proc.stderr)
        return proc.stdout
