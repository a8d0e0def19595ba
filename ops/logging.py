"""Structured logs: one JSON object per line, with credentials redacted.

`JsonFormatter` turns every record into one line. A message that already is
a JSON object (job runs log `json.dumps({...})`) is merged into the line
rather than nested as a string, so a log shipper sees its fields. The
`RedactFilter` runs first and blanks the value of any key that names a
credential (token, secret, password, authorization, api key, cookie...)
and any `Token xyz` / `Bearer xyz` / `password=xyz` inside free text,
because a connector error or a request dump can carry one."""
from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import unquote_plus

REDACTED = "[redacted]"

# Keys whose value is a credential wherever they appear (any case, any
# separator): "token", "X-Shopify-Access-Token", "consumer_secret", "api_key"...
_SECRET_KEY = re.compile(
    r"(token|secret|passw(or)?d|authori[sz]ation|api[_-]?key|apikey|cookie|session[_-]?id|credential|signature)",
    re.IGNORECASE,
)
# Free text: `Authorization: Token abc`, `Bearer abc`, `password=abc`,
# `"api_key": "abc"`, `?token=abc`.
_TEXT_PATTERNS = [
    # A credential after an auth scheme has a digit or is long: "Basic settings" is prose.
    re.compile(r"(?i)\b(Token|Bearer|Basic)\s+(?=[A-Za-z0-9._~+/=-]*\d|[A-Za-z0-9._~+/=-]{12})[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(
        r"""(?i)(["']?[\w-]*(?:token|secret|passw(?:or)?d|authori[sz]ation|api[_-]?key|apikey|cookie|credential)"""
        # the value, unless it is an auth scheme the first pattern handles
        r"""[\w-]*["']?\s*[:=]\s*)(["']?)(?!(?:Token|Bearer|Basic)\s|\[redacted\])([^\s"'&,;}]+)"""
    ),
]


# Query parameters that carry a credential on some platform: the key names
# above plus `consumer_key` (WooCommerce over HTTPS), `key`, `sig`, `hmac`,
# `auth`, `oauth_*`, `pwd`, `nonce`. Redacting a harmless one costs nothing.
_CREDENTIAL_PARAM = re.compile(_SECRET_KEY.pattern + r"|key|sig|hmac|auth|pwd|pass|nonce", re.IGNORECASE)


def redact_query(query: str) -> str:
    """A URL query string with the value of every credential-naming
    parameter replaced by [redacted]; other parameters are kept as sent."""
    if not query:
        return ""
    kept = []
    for part in query.split("&"):
        name, sep, _value = part.partition("=")
        if sep and _CREDENTIAL_PARAM.search(unquote_plus(name)):
            part = f"{name}={REDACTED}"
        kept.append(part)
    return "&".join(kept)


def redact_text(text: str) -> str:
    """`text` with every credential-looking value replaced by [redacted]."""
    text = _TEXT_PATTERNS[0].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _TEXT_PATTERNS[1].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


def redact(value, *, depth: int = 0):
    """A copy of `value` (dicts, lists, strings) with credentials redacted."""
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {
            key: (REDACTED if isinstance(key, str) and _SECRET_KEY.search(key) and val not in (None, "")
                  else redact(val, depth=depth + 1))
            for key, val in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(redact(item, depth=depth + 1) for item in value)
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactFilter(logging.Filter):
    """Redacts credentials in a record's message, arguments and extra fields
    before any handler formats it. Always lets the record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format must not lose the line
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = redact(fields)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, then either the
    message's own fields (when it is a JSON object) or `message`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        parsed = None
        if message.startswith("{"):
            try:
                parsed = json.loads(message)
            except ValueError:
                parsed = None
        if isinstance(parsed, dict):
            line.update(redact(parsed))
        else:
            line["message"] = redact_text(message)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(redact(fields))
        if record.exc_info:
            line["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)
