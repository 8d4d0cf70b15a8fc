"""Events are UTF-8 JSON, over HTTP and in JSON Lines files alike: how the
bytes that arrive become text, or are refused with a reason."""
from __future__ import annotations

import json
from typing import Any, Iterator

from models.events import field_name

_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\x00\x00\xfe\xff", b"\xff\xfe", b"\xfe\xff")  # UTF-32 BE, UTF-16 LE (and UTF-32 LE), UTF-16 BE


class NotUtf8(ValueError):
    pass


class _Members(dict):
    twice: str | None = None


def _members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = _Members()
    for key, value in pairs:
        if key in found and found.twice is None:
            found.twice = key
        found[key] = value
    return found


def parse_json(text: str) -> Any:
    """JSON text as Python values, remembering any object that names a member
    twice (see `named_twice`); invalid JSON raises ValueError as json.loads does."""
    return json.loads(text, object_pairs_hook=_members)


TWICE = "is named twice in one JSON object; send each member once"


def named_twice(value: Any) -> str | None:
    """The first member named twice in `value` (as parse_json read it), as a
    reason names a field (`detainer.form`), or None. RFC 8259 leaves which of
    the two values counts to the reader (most take the last, some the first),
    so a booking number or a custody request could read one way here and
    another elsewhere: intake refuses it."""
    path: list[str] = []

    def walk(node: Any) -> bool:
        if isinstance(node, _Members) and node.twice is not None:
            path.append(field_name(node.twice))
            return True
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, inner in items:
            path.append(field_name(key))
            if walk(inner):
                return True
            path.pop()
        return False

    return ".".join(path) if walk(value) else None


def utf8_text(data: bytes) -> str:
    """UTF-8, with a leading byte-order mark ignored (RFC 8259 allows a reader to)."""
    if data.startswith(_WIDE_BOMS):
        raise NotUtf8("is UTF-16 or UTF-32 text; events are UTF-8")
    try:
        return data.removeprefix(_UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotUtf8(f"is not UTF-8 text (byte {exc.start})") from None


def json_lines(data: bytes) -> Iterator[tuple[int, str | None]]:
    """JSON Lines: lines end at LF (a CR before it is dropped) and nowhere else;
    U+2028 or a form feed inside a JSON string is part of its line, which
    str.splitlines would break. Each line is UTF-8 on its own, so one bad line
    does not hide the others (None: the line is not UTF-8). A UTF-16 or UTF-32
    file is one refusal, not a line of garbage per half-character."""
    if data.startswith(_WIDE_BOMS):
        yield 1, None
        return
    for number, line in enumerate(data.removeprefix(_UTF8_BOM).split(b"\n"), start=1):
        try:
            yield number, line.removesuffix(b"\r").decode("utf-8")
        except UnicodeDecodeError:
            yield number, None
