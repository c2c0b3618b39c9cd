"""Looking for any piece of a secret in captured logs: every 8-character window of it, not just the whole value.

Logging ``token[:-2]``, the key without its ``whsec_`` prefix, or the signing key's bytes (hex or ``repr``)
would leak as much as the whole value; a scan for exact strings misses all of those.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

WINDOW = 8


def secret_forms(secret: str) -> list[str]:
    """The text forms a secret can leak in: itself; for a ``whsec_`` secret its base64 and its key's bytes."""
    forms = [secret]
    if secret.startswith("whsec_"):
        encoded = secret.removeprefix("whsec_")
        forms.append(encoded)
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            return forms
        forms += [key.hex(), repr(key)[2:-1]]
    return forms


def windows(secret: str, size: int = WINDOW) -> set[str]:
    """Every ``size``-character substring of every form of ``secret`` (the whole form when shorter)."""
    found: set[str] = set()
    for form in secret_forms(secret):
        found.update(form[i : i + size] for i in range(max(1, len(form) - size + 1)))
    return found


def leaks(text: str, secrets: Iterable[str], size: int = WINDOW) -> list[str]:
    """Each window of a secret found in ``text``, with a little context (empty: nothing leaked)."""
    found = []
    for secret in secrets:
        for window in sorted(windows(secret, size)):
            at = text.find(window)
            if at >= 0:
                found.append(f"{window!r} of {secret[:4]}…: …{text[max(0, at - 60) : at + 60]}…")
    return found
