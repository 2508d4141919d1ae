"""Source credentials, encrypted at rest with a key from the environment.

The key is ``PULSE_SECRET_KEY`` (any string; it is stretched to a Fernet key), or a random
key generated into ``$PULSE_HOME/secret.key`` on the first local run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

MASK = "********"
#: Keys whose values are secrets wherever they appear (config, audit rows, errors).
SECRET_KEYS = frozenset({"token", "api_token", "password", "pat", "secret", "credentials"})


class SecretKeyError(RuntimeError):
    """Stored credentials cannot be decrypted with the configured key."""


def _fernet(key: str) -> Fernet:
    digest = hashlib.sha256(key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_credentials(credentials: dict[str, Any], key: str) -> str:
    return _fernet(key).encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()


def decrypt_credentials(token: str, key: str) -> dict[str, Any]:
    try:
        return dict(json.loads(_fernet(key).decrypt(token.encode())))
    except InvalidToken as exc:
        raise SecretKeyError(
            "Stored source credentials cannot be decrypted: PULSE_SECRET_KEY differs from the key "
            "they were saved with. Restore the original key, or re-enter the credentials with "
            "`pulse source add`."
        ) from exc


def mask(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy of ``values`` with every secret replaced by a fixed mask (recursively)."""
    if values is None:
        return None
    masked: dict[str, Any] = {}
    for name, value in values.items():
        if name.lower() in SECRET_KEYS or name.lower().endswith(("_token", "_secret", "_password")):
            masked[name] = MASK if value is not None else None
        elif isinstance(value, dict):
            masked[name] = mask(value)
        else:
            masked[name] = value
    return masked


def redact(text: str, secrets: list[str]) -> str:
    """Remove every known secret value from a message before it is logged or stored."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
