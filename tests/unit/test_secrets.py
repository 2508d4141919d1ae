from __future__ import annotations

import pytest

from pulse.secrets import MASK, SecretKeyError, decrypt_credentials, encrypt_credentials, mask, redact


def test_credentials_round_trip_and_are_not_stored_in_clear() -> None:
    token = encrypt_credentials({"token": "ghp_supersecret"}, "key-one")
    assert "ghp_supersecret" not in token
    assert decrypt_credentials(token, "key-one") == {"token": "ghp_supersecret"}


def test_wrong_key_says_what_to_do() -> None:
    token = encrypt_credentials({"token": "x"}, "key-one")
    with pytest.raises(SecretKeyError, match="PULSE_SECRET_KEY differs"):
        decrypt_credentials(token, "key-two")


def test_mask_hides_secret_keys_recursively_and_keeps_the_rest() -> None:
    values = {"name": "gh", "credentials": {"token": "t"}, "config": {"org": "acme", "api_token": "s"}, "pat": None}
    expected = {"name": "gh", "credentials": MASK, "config": {"org": "acme", "api_token": MASK}, "pat": None}
    assert mask(values) == expected


def test_redact_removes_every_known_secret() -> None:
    assert redact("401 for token abc123 at abc123", ["abc123", ""]) == f"401 for token {MASK} at {MASK}"
