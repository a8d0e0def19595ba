# Issue 11: external store credentials encrypted at rest.

import carts.fields
from django.db import migrations

from posinv.crypto import SecretUndecryptable, secret_decrypt, secret_is_encrypted, secrets_encrypt


def _secret_names(platform: str) -> set[str]:
    # The connectors declare which parameters are secret; a platform no longer
    # registered keeps its params as they are (its secrets are encrypted anyway).
    from carts.connectors.base import platforms

    cls = platforms().get(platform)
    return {p.name for p in cls.params if p.secret} if cls else set()


def secrets_encrypt_existing(apps, schema_editor):
    """Encrypt every stored secret, and move a secret parameter that was put
    among the plain `params` into the secrets. Already encrypted values are
    kept, so running it again changes nothing."""
    ExternalStore = apps.get_model("carts", "ExternalStore")
    db = schema_editor.connection.alias
    for store in ExternalStore.objects.using(db).order_by("pk").iterator():
        params = dict(store.params or {})
        secret_names = _secret_names(store.platform)
        moved = {name: params.pop(name) for name in list(params) if name in secret_names}
        merged = {**moved, **(store.secrets or {})}
        sealed = secrets_encrypt(values={k: str(v) for k, v in merged.items() if v is not None and str(v).strip()})
        if sealed != store.secrets or moved:
            ExternalStore.objects.using(db).filter(pk=store.pk).update(params=params, secrets=sealed)


def secrets_decrypt_existing(apps, schema_editor):
    """Going back to 0004 (whose code reads plain secrets) writes the
    plaintext back, so it needs the key that encrypted them; a store no key
    opens stops the rollback with its code (nothing is half-applied: the
    migration runs in one transaction on PostgreSQL)."""
    ExternalStore = apps.get_model("carts", "ExternalStore")
    db = schema_editor.connection.alias
    for store in ExternalStore.objects.using(db).order_by("pk").iterator():
        plain = {}
        for name, value in (store.secrets or {}).items():
            try:
                plain[name] = secret_decrypt(stored=value) if secret_is_encrypted(value) else value
            except SecretUndecryptable:
                raise RuntimeError(f"store {store.code}: secret {name} cannot be decrypted with the keys in "
                                   "POSINV_SECRET_KEY_ENCRYPTION; cannot migrate back") from None
        if plain != store.secrets:
            ExternalStore.objects.using(db).filter(pk=store.pk).update(secrets=plain)


class Migration(migrations.Migration):

    dependencies = [
        ('carts', '0004_externalstore_direct_source'),
    ]

    # The data step runs while the column is still a plain JSONField (so going
    # back, the field is plain again before the values are decrypted into it).
    operations = [
        migrations.RunPython(secrets_encrypt_existing, secrets_decrypt_existing),
        migrations.AlterField(
            model_name='externalstore',
            name='secrets',
            field=carts.fields.EncryptedSecretsField(blank=True, default=dict, editable=False, help_text='Secret parameters, each value encrypted; only the connector factory decrypts them.'),
        ),
    ]
