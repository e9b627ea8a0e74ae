# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credentials inside option values: find them, and keep them out of output.

Private to the dcaas.cluster collection; its API may change without notice.
Standard library only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

# A key whose value is a credential, wherever it sits: clouds.yaml's
# password, token and application_credential_secret, cloud-init's passwd and
# chpasswd, munge_key, api_key... Not key_name (an OpenStack keypair) nor
# status_token_file (a path): they end differently.
SECRET_KEY_RE = re.compile(r"(pass(word|wd|phrase)?|secret|token|credential|key)s?$", re.IGNORECASE)

# What Ansible shows in place of a no_log option.
HIDDEN = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
MASK = "********"


def secret_values(value: Any, secret: bool = False) -> set[str]:
    """Every scalar under a credential key, as text (all of them with ``secret``)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found |= secret_values(item, secret or bool(SECRET_KEY_RE.search(str(key))))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= secret_values(item, secret)
    elif secret and value is not None and not isinstance(value, bool) and str(value):
        found.add(str(value))
    return found


def config_secrets(cfg: Any) -> set[str]:
    """The credentials in a loaded engine configuration, inline or read from its file."""
    return secret_values(dataclasses.asdict(cfg))


def mask(text: str, secrets: Iterable[str]) -> str:
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def hide_options(module: Any, names: Iterable[str]) -> dict[str, Any]:
    """Hide no_log options from a module's result; return their values.

    AnsibleModule already keeps no_log options out of the host's log, but it
    masks every scalar of them wherever it appears in the result: a config's
    ``2`` or ``small`` would blank node counts and node names. Instead, the
    options show as HIDDEN in the result's invocation (the caller must use
    the returned values), and only their credentials - and the whole of an
    option given as text, such as user-data - are masked in the rest.
    """
    values = {name: module.params[name] for name in names}
    everything: set[str] = set()
    credentials: set[str] = set()
    for name, value in values.items():
        everything |= secret_values(value, secret=True)
        credentials |= secret_values(value, secret=isinstance(value, str))
        if value is not None:
            module.params[name] = HIDDEN
    module.no_log_values = (module.no_log_values - everything) | credentials
    return values


def warn(module: Any, text: str) -> None:
    """``module.warn`` with the no_log values masked, which ansible-core 2.19 does not do for warnings."""
    module.warn(mask(text, module.no_log_values))
