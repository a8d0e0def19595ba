"""The model field that keeps store credentials encrypted at rest."""
from __future__ import annotations

from django.db import models

from posinv.crypto import secrets_encrypt


def secrets_sealed(value: object) -> object:
    """`value` (a dict of secret name -> value) with every value encrypted;
    already encrypted values are kept and empty ones dropped (an empty box is
    no secret). Anything but a dict is returned as it is (lookups pass here)."""
    if not isinstance(value, dict):
        return value
    kept = {name: str(v) for name, v in value.items() if v is not None and str(v).strip()}
    return secrets_encrypt(values=kept)


class EncryptedSecretsField(models.JSONField):
    """A JSON object whose values are stored only as `enc:v1:` ciphertext
    (posinv/crypto.py). Every write path encrypts: save() (and so create()
    and bulk_create()) through `pre_save`, which also puts the ciphertext back
    on the instance, and queryset update() through `get_prep_value`. Reading
    gives the ciphertext: only the connector factory decrypts
    (carts.services.stores.store_connector)."""

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if not isinstance(value, dict):
            raise TypeError(f"{self.name} must be a dict of secret name -> value")
        sealed = secrets_sealed(value)
        setattr(model_instance, self.attname, sealed)
        return sealed

    def get_prep_value(self, value):
        return super().get_prep_value(secrets_sealed(value))
