"""Encryption of secrets at rest (external store credentials, vendor API keys).

Fernet (AES-128-CBC + HMAC-SHA256, from the `cryptography` package): a stored
value is `enc:v1:<fernet token>`, authenticated, so a tampered or foreign
value is refused instead of decrypted into garbage.

The key comes from the environment:

* `POSINV_SECRET_KEY_ENCRYPTION`: one Fernet key, or several separated by
  commas for rotation (the first encrypts, all decrypt; `secrets_rotate`
  rewrites a value under the first). Generate one with
  `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
  Production should set it: the credentials then stay closed to someone who
  holds a database dump and even Django's SECRET_KEY, and SECRET_KEY can be
  rotated (which logs everyone out) without losing the stored credentials.
* Without it, a key is derived from SECRET_KEY (HKDF-SHA256 with a purpose
  label, so it is never SECRET_KEY itself and never equals a key Django derives
  for signing). That keeps the embedded default working with no extra setting
  and still keeps credentials out of a dump of the database alone.
"""
from __future__ import annotations

import base64
import json
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "enc:v1:"
ENV_KEYS = "POSINV_SECRET_KEY_ENCRYPTION"
_HKDF_INFO = b"posinv secrets at rest v1"


class SecretUndecryptable(Exception):
    """A stored secret that no configured key opens (wrong key, tampered, truncated)."""


def _derived_key(secret_key: str) -> bytes:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"posinv.crypto", info=_HKDF_INFO).derive(
        secret_key.encode("utf-8")
    )
    return base64.urlsafe_b64encode(raw)


def encryption_keys() -> list[bytes]:
    """The Fernet keys in use, the encrypting one first."""
    configured = os.environ.get(ENV_KEYS, "").strip()
    if configured:
        keys = [part.strip().encode("ascii") for part in configured.split(",") if part.strip()]
        for index, key in enumerate(keys):
            try:
                Fernet(key)
            except (ValueError, TypeError) as exc:
                raise ImproperlyConfigured(
                    f"{ENV_KEYS}: key {index + 1} is not a Fernet key (32 url-safe base64 bytes)."
                ) from exc
        return keys
    return [_derived_key(settings.SECRET_KEY)]


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in encryption_keys()])


def secret_is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def secret_encrypt(*, plaintext: str) -> str:
    """`plaintext` encrypted under the current key, as `enc:v1:...`."""
    if not isinstance(plaintext, str):
        raise TypeError("secret_encrypt takes a str")
    return PREFIX + _fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def secret_decrypt(*, stored: str) -> str:
    """The plaintext of an `enc:v1:` value; raises SecretUndecryptable when
    no key opens it. A value without the prefix is refused too: callers that
    still hold plaintext rows must migrate them with `secrets_encrypt`."""
    if not secret_is_encrypted(stored):
        raise SecretUndecryptable("value is not encrypted (no enc:v1: prefix)")
    try:
        return _fernet().decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, ValueError) as exc:
        raise SecretUndecryptable("no configured key opens this value (wrong key or tampered)") from exc


def secrets_encrypt(*, values: dict[str, str]) -> dict[str, str]:
    """A credentials dict with every value encrypted; already encrypted values
    are kept as they are, so running it twice (a data migration re-run) is harmless."""
    return {name: value if secret_is_encrypted(value) else secret_encrypt(plaintext=str(value))
            for name, value in values.items()}


def secrets_decrypt(*, values: dict[str, str]) -> dict[str, str]:
    """The plaintext credentials dict (each value must be encrypted)."""
    return {name: secret_decrypt(stored=value) for name, value in values.items()}


def secrets_rotate(*, values: dict[str, str]) -> dict[str, str]:
    """Every value re-encrypted under the first key (after a new key was put first)."""
    fernet = _fernet()
    out = {}
    for name, value in values.items():
        if not secret_is_encrypted(value):
            raise SecretUndecryptable(f"{name}: value is not encrypted")
        try:
            out[name] = PREFIX + fernet.rotate(value[len(PREFIX):].encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise SecretUndecryptable(f"{name}: no configured key opens this value") from exc
    return out


def secret_box_json(*, data: object) -> str:
    """A JSON-serialisable object encrypted as one value (a whole credentials blob)."""
    return secret_encrypt(plaintext=json.dumps(data, sort_keys=True))


def secret_open_json(*, stored: str) -> object:
    return json.loads(secret_decrypt(stored=stored))
