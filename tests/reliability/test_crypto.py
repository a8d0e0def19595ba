"""Secrets at rest (posinv/crypto.py): Fernet with a key from
POSINV_SECRET_KEY_ENCRYPTION, or derived from SECRET_KEY when unset."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from posinv.crypto import (
    ENV_KEYS,
    SecretUndecryptable,
    encryption_keys,
    secret_box_json,
    secret_decrypt,
    secret_encrypt,
    secret_is_encrypted,
    secret_open_json,
    secrets_decrypt,
    secrets_encrypt,
    secrets_rotate,
)

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def test_a_secret_round_trips_and_the_stored_form_holds_no_plaintext(monkeypatch):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    stored = secret_encrypt(plaintext="shpat_live_9f8e7d")
    assert stored.startswith("enc:v1:")
    assert "shpat_live_9f8e7d" not in stored
    assert secret_encrypt(plaintext="shpat_live_9f8e7d") != stored  # random IV: equal secrets look different
    assert secret_decrypt(stored=stored) == "shpat_live_9f8e7d"


def test_another_key_cannot_open_it(monkeypatch):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    stored = secret_encrypt(plaintext="ck_123")
    monkeypatch.setenv(ENV_KEYS, KEY_B)
    with pytest.raises(SecretUndecryptable, match="wrong key or tampered"):
        secret_decrypt(stored=stored)


def test_a_tampered_value_is_refused(monkeypatch):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    stored = secret_encrypt(plaintext="ck_123")
    flipped = stored[:-5] + ("A" if stored[-5] != "A" else "B") + stored[-4:]
    with pytest.raises(SecretUndecryptable):
        secret_decrypt(stored=flipped)


def test_plaintext_is_not_mistaken_for_a_secret():
    assert secret_is_encrypted("ck_123") is False
    with pytest.raises(SecretUndecryptable, match="not encrypted"):
        secret_decrypt(stored="ck_123")


def test_rotation_old_values_open_with_the_new_key_first_and_are_rewritten(monkeypatch):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    old = secrets_encrypt(values={"consumer_key": "ck_1", "consumer_secret": "cs_2"})
    # when a new key is put first and the old one kept to decrypt
    monkeypatch.setenv(ENV_KEYS, f"{KEY_B},{KEY_A}")
    assert secrets_decrypt(values=old) == {"consumer_key": "ck_1", "consumer_secret": "cs_2"}
    rotated = secrets_rotate(values=old)
    # then the rotated values open with the new key alone
    monkeypatch.setenv(ENV_KEYS, KEY_B)
    assert secrets_decrypt(values=rotated) == {"consumer_key": "ck_1", "consumer_secret": "cs_2"}
    with pytest.raises(SecretUndecryptable):
        secrets_decrypt(values=old)


def test_encrypting_a_dict_twice_keeps_it_once_encrypted(monkeypatch):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    once = secrets_encrypt(values={"access_token": "tok"})
    assert secrets_encrypt(values=once) == once
    assert secrets_decrypt(values=once) == {"access_token": "tok"}


def test_a_json_blob_round_trips(monkeypatch):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    stored = secret_box_json(data={"user": "u", "password": "p", "port": 21})
    assert secret_open_json(stored=stored) == {"password": "p", "port": 21, "user": "u"}


def test_without_the_variable_the_key_is_derived_from_secret_key_and_differs_per_secret_key(monkeypatch, settings):
    monkeypatch.delenv(ENV_KEYS, raising=False)
    settings.SECRET_KEY = "first-secret-key-for-this-test"
    stored = secret_encrypt(plaintext="pw")
    first = encryption_keys()
    assert len(first) == 1 and Fernet(first[0])
    assert settings.SECRET_KEY.encode() not in first[0]
    assert secret_decrypt(stored=stored) == "pw"
    settings.SECRET_KEY = "another-secret-key-for-this-test"
    assert encryption_keys() != first
    with pytest.raises(SecretUndecryptable):
        secret_decrypt(stored=stored)


def test_a_malformed_key_fails_fast_with_a_clear_message(monkeypatch):
    monkeypatch.setenv(ENV_KEYS, f"{KEY_A},not-a-key")
    with pytest.raises(ImproperlyConfigured, match="POSINV_SECRET_KEY_ENCRYPTION: key 2 is not a Fernet key"):
        secret_encrypt(plaintext="x")
