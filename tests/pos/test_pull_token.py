"""The main system pulls from a node with the register's real token, kept
encrypted at rest on a pull register (ADR 0008): what the database holds,
rotation, the header the pull client sends, and the clear failures when the
copy is missing, outdated or cannot be decrypted."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from pos.models import CashRegister, SyncEntry
from pos.services.transfer import register_create, register_pull, register_token_rotate
from posinv.crypto import ENV_KEYS, secret_decrypt
from posinv.exceptions import InvalidInput
from posinv.models import ApiToken, StockMove
from posinv.services.tokens import token_hash, token_issue
from tests.pos.factories import make_register

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def every_stored_text() -> list[str]:
    """Every value of the register and token tables, read with raw SQL."""
    texts = []
    with connection.cursor() as cursor:
        for table in (CashRegister._meta.db_table, ApiToken._meta.db_table):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - table names from our own models
            texts += [str(value) for row in cursor.fetchall() for value in row]
    return texts


@pytest.fixture
def fake_node():
    """A node's outbox API on a free local port: answers an empty outbox to
    the token it was given, 401 to anything else, and records the headers."""
    seen: list[str] = []
    expected: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            header = self.headers.get("Authorization", "")
            seen.append(header)
            if header == f"Token {expected.get('token')}":
                status, body = 200, {"register": "R2", "entries": [], "last_entry_no": 0, "more": False}
            else:
                status, body = 401, {"errors": [{"code": "authentication_failed", "reason": "Invalid token."}]}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "seen": seen, "expected": expected}
    server.shutdown()
    server.server_close()


def test_a_pull_register_keeps_its_token_encrypted_and_the_database_holds_no_plain_token(store):
    pull, pull_token = register_create(code="R2", location_code="S1", sync_type="pull", node_url="http://127.0.0.1:9")
    push, push_token = register_create(code="R1", location_code="S1", sync_type="push")

    pull.refresh_from_db()
    push.refresh_from_db()
    assert pull.pull_token_encrypted.startswith("enc:v1:")
    assert secret_decrypt(stored=pull.pull_token_encrypted) == pull_token
    assert push.pull_token_encrypted == ""  # a push register keeps no copy
    stored = every_stored_text()
    assert not [text for text in stored if pull_token in text or push_token in text]
    assert token_hash(pull_token) in stored  # the hash stays what the main system checks against


def test_rotating_a_pull_register_token_replaces_the_encrypted_copy(store):
    out, _ = run("create_register", "R2", "--location", "S1", "--type", "pull", "--node-url", "http://127.0.0.1:9")
    first = out.strip()
    before = CashRegister.objects.get(code="R2").pull_token_encrypted

    second = run("rotate_register_token", "R2")[0].strip()

    after = CashRegister.objects.get(code="R2").pull_token_encrypted
    assert second != first and after != before
    assert secret_decrypt(stored=after) == second
    assert ApiToken.objects.get(subject="R2").key_hash == token_hash(second)
    assert not [text for text in every_stored_text() if first in text or second in text]


def test_rotating_a_push_register_token_stores_no_copy(store):
    register = make_register(code="R1", location=store)

    token = register_token_rotate(register_id=register.pk)

    register.refresh_from_db()
    assert register.pull_token_encrypted == ""
    assert ApiToken.objects.get(subject="R1").key_hash == token_hash(token)


def test_the_pull_client_sends_the_real_token_not_its_hash(store, fake_node):
    register, token = register_create(code="R2", location_code="S1", sync_type="pull", node_url=fake_node["url"])
    fake_node["expected"]["token"] = token

    counts = register_pull(register_id=register.pk)

    assert fake_node["seen"] == [f"Token {token}"]
    assert counts == {"calls": 1, "received": 0, "applied": 0, "duplicate": 0, "failed": 0, "conflict": 0,
                      "waiting": 0}
    register.refresh_from_db()
    assert register.last_error == ""


def test_a_wrong_encryption_key_fails_clearly_and_changes_nothing(store, fake_node, monkeypatch):
    register, token = register_create(code="R2", location_code="S1", sync_type="pull", node_url=fake_node["url"])
    fake_node["expected"]["token"] = token
    stored = CashRegister.objects.get(pk=register.pk).pull_token_encrypted
    monkeypatch.setenv(ENV_KEYS, Fernet.generate_key().decode())  # not the key the copy was made with

    err = StringIO()
    with pytest.raises(CommandError, match="pull failed for R2"):
        call_command("register_pull", "R2", stdout=StringIO(), stderr=err)

    message = ("register R2: the stored token cannot be decrypted (no configured key opens this value "
               "(wrong key or tampered)); check POSINV_SECRET_KEY_ENCRYPTION / SECRET_KEY, or rotate the "
               "register's token")
    assert err.getvalue() == f"R2: token: {message}\n"
    register.refresh_from_db()
    assert register.last_error == message
    assert fake_node["seen"] == []  # nothing was sent to the node
    assert (register.last_applied_entry_no, register.pull_token_encrypted) == (0, stored)
    assert (SyncEntry.objects.count(), StockMove.objects.count()) == (0, 0)


def test_a_pull_register_without_a_stored_token_asks_the_operator_to_rotate_it(store, fake_node, admin_client):
    # Provisioned before the copy existed (or the type was switched in the admin).
    register = make_register(code="R2", location=store, sync_type="pull", node_url=fake_node["url"])
    token_issue(kind="register", subject="R2")

    with pytest.raises(InvalidInput) as caught:
        register_pull(register_id=register.pk)

    message = ("register R2 has no stored token to pull with; rotate its token (rotate_register_token or "
               "the register's admin action) and give the new one to the node")
    assert str(caught.value) == f"token: {message}"
    assert fake_node["seen"] == []
    listing = admin_client.get(reverse("admin:pos_cashregister_changelist"))
    page = listing.content.decode()
    assert message[:80] + "…" in page  # the register's last error, at a glance
    assert '<td class="field-pull_token"><span style="color:#ba2121">missing: rotate the token</span></td>' in page
    register_token_rotate(register_id=register.pk)
    page = admin_client.get(reverse("admin:pos_cashregister_changelist")).content.decode()
    assert '<td class="field-pull_token">stored</td>' in page
    assert "enc:v1:" not in page


def test_the_token_admin_issuing_or_rotating_a_register_token_refreshes_the_copy(store, fake_node, admin_client):
    register = make_register(code="R2", location=store, sync_type="pull", node_url=fake_node["url"])
    added = admin_client.post(reverse("admin:posinv_apitoken_add"), {"kind": "register", "subject": "R2"},
                              follow=True)
    first = [str(m) for m in get_messages(added.wsgi_request)][0].split("<code>")[1].split("</code>")[0]
    rotated = admin_client.post(reverse("admin:posinv_apitoken_changelist"),
                                {"action": "rotate", "_selected_action": [ApiToken.objects.get(subject="R2").pk]},
                                follow=True)
    second = [str(m) for m in get_messages(rotated.wsgi_request)][0].split("<code>")[1].split("</code>")[0]
    fake_node["expected"]["token"] = second

    counts = register_pull(register_id=register.pk)

    assert first != second
    assert fake_node["seen"] == [f"Token {second}"]
    assert counts["calls"] == 1
    assert not [text for text in every_stored_text() if first in text or second in text]


def test_a_token_issued_outside_the_register_services_is_reported_as_outdated(store, fake_node):
    register, _ = register_create(code="R2", location_code="S1", sync_type="pull", node_url=fake_node["url"])
    token_issue(kind="register", subject="R2")  # e.g. a script calling the token service directly

    with pytest.raises(InvalidInput) as caught:
        register_pull(register_id=register.pk)

    assert str(caught.value) == ("token: register R2: the stored token is not the current one; rotate it with "
                                 "rotate_register_token or the register's admin action")
    assert fake_node["seen"] == []
    register.refresh_from_db()
    assert register.last_error == str(caught.value).removeprefix("token: ")


def test_the_register_admin_rotates_the_token_shows_it_once_and_pull_works_again(store, fake_node, admin_client):
    register = make_register(code="R2", location=store, sync_type="pull", node_url=fake_node["url"])

    response = admin_client.post(reverse("admin:pos_cashregister_changelist"),
                                 {"action": "rotate_token_action", "_selected_action": [register.pk]}, follow=True)

    [shown] = [str(m) for m in get_messages(response.wsgi_request)]
    token = shown.split("<code>")[1].split("</code>")[0]
    assert shown.startswith("New token for register R2: <code>")
    fake_node["expected"]["token"] = token
    assert register_pull(register_id=register.pk)["calls"] == 1
    assert fake_node["seen"] == [f"Token {token}"]


def test_switching_a_register_to_push_in_the_admin_drops_the_encrypted_copy(store, admin_client):
    register, _ = register_create(code="R2", location_code="S1", sync_type="pull", node_url="http://127.0.0.1:9")
    form = {"location": store.pk, "code": "R2", "name": "Till R2", "active": "on", "sync_type": "push",
            "tables": ["receipt", "receipt_line"], "records_per_run": 500, "interval_seconds": 60,
            "node_url": "", "currency": "EUR"}

    response = admin_client.post(reverse("admin:pos_cashregister_change", args=[register.pk]), form)

    assert response.status_code == 302
    register.refresh_from_db()
    assert (register.sync_type, register.pull_token_encrypted) == ("push", "")


def test_reencrypting_under_a_new_first_key_keeps_pull_working_and_names_copies_no_key_opens(store, fake_node,
                                                                                            monkeypatch):
    old_key, new_key, lost_key = (Fernet.generate_key().decode() for _ in range(3))
    monkeypatch.setenv(ENV_KEYS, old_key)
    r2, token = register_create(code="R2", location_code="S1", sync_type="pull", node_url=fake_node["url"])
    monkeypatch.setenv(ENV_KEYS, lost_key)
    register_create(code="R3", location_code="S1", sync_type="pull", node_url=fake_node["url"])
    lost_copy = CashRegister.objects.get(code="R3").pull_token_encrypted
    monkeypatch.setenv(ENV_KEYS, f"{new_key},{old_key}")
    fake_node["expected"]["token"] = token

    err = StringIO()
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("reencrypt_register_tokens", stdout=out, stderr=err)

    assert out.getvalue() == "1 re-encrypted, 1 failed\n"
    assert err.getvalue() == "R2: reencrypted\nR3: failed\n"
    assert str(caught.value).startswith("no configured key opens the stored token of R3; those were left unchanged")
    assert CashRegister.objects.get(code="R3").pull_token_encrypted == lost_copy
    monkeypatch.setenv(ENV_KEYS, new_key)  # the old key removed: R2 still pulls
    assert register_pull(register_id=r2.pk)["calls"] == 1
    assert fake_node["seen"] == [f"Token {token}"]
