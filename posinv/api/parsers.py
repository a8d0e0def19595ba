"""The one JSON parser of the API (DEFAULT_PARSER_CLASSES): JSON whose text
a database cannot store (a NUL character, an unpaired UTF-16 surrogate) is a
400 naming where it is, before any view or service sees it. The register
entries endpoint alone reads plain JSON: there one record's bad text fails
that entry only (pos/services/apply.py keeps a `storable_copy`). PostgreSQL refuses both in
text and jsonb columns; without this, whichever store met them first (a
register entry kept as sent, an order line, a customer name) answered 500."""
from __future__ import annotations

from rest_framework.parsers import JSONParser

from posinv.exceptions import InvalidInput, Problem


def unstorable_text_problem(value) -> Problem | None:
    """The first text in `value` (walked through lists and objects, keys
    included) that a database cannot store, as a problem naming its path."""
    stack = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            reason = _text_problem(item)
            if reason:
                return Problem(field=path or "body", reason=reason, code="invalid")
        elif isinstance(item, dict):
            for key, inner in item.items():
                where = f"{path}.{key}" if path else str(key)
                reason = _text_problem(key)
                if reason:
                    return Problem(field=path or "body", reason=f"a field name {reason}", code="invalid")
                stack.append((where, inner))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", inner) for index, inner in enumerate(item))
    return None


def storable_copy(value):
    """`value` with every text made storable: NUL and unpaired surrogates
    become U+FFFD (kept for a person to see what was sent, never applied)."""
    if isinstance(value, str):
        if not _text_problem(value):
            return value
        return "".join("\ufffd" if ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
    if isinstance(value, dict):
        return {storable_copy(key): storable_copy(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [storable_copy(inner) for inner in value]
    return value


def _text_problem(text: str) -> str:
    if "\x00" in text:
        return "contains a NUL character, which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (not valid Unicode), which cannot be stored"
    return ""


class StorableJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        problem = unstorable_text_problem(data)
        if problem is not None:
            raise InvalidInput([problem])
        return data
