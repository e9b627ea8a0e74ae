# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How an error reaches a person: one line, cut short, never a traceback.

Private to the dcaas.cluster collection. Standard library only. The engine,
the daemon and dcaasd report what failed with these, so that a message that
quotes a whole WLM or cloud answer stays readable in the log and the result.
"""

from __future__ import annotations

from collections.abc import Iterable

from ansible_collections.dcaas.cluster.plugins.module_utils.redact import mask

# An exception's message can hold a whole WLM or cloud answer: this much is shown.
ERROR_CHARS = 300


def clip(text: str, limit: int = ERROR_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def text_of(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """The exception's whole message with ``secrets`` masked (before any cut, which could halve one)."""
    try:
        return mask(str(exc), secrets)
    except Exception:  # a broken __str__ must not fail the report of the failure
        return ""


def describe(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """The exception's class and its message, clipped; never a traceback."""
    text = text_of(exc, secrets)
    return f"{type(exc).__name__}: {clip(text)}" if text else type(exc).__name__
