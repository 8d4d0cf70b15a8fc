"""The event contract of interface.md, validated with pydantic.

Validation is strict where a loose reading could create a hold: booleans must
be JSON booleans, instants must carry an offset, and unknown fields are refused
so that a misspelt field is never silently ignored.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from models.clock import as_utc
from models.domain import DetainerForm, ReleaseReason, WarrantForm

# interface.md: a time more than 5 minutes in the future is rejected (clock skew
# between the jail's systems and ours is tolerated up to this much).
FUTURE_TOLERANCE = timedelta(minutes=5)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Unicode's format characters (category Cf, as of Unicode 15): the bidirectional
# controls that make a printed record read differently from what is stored
# (U+202E turns "W-1024" around), zero-width characters that make two equal-looking
# badges or names differ, the soft hyphen, invisible operators and tags.
_FORMAT_RANGES = ((0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD), (0x70F, 0x70F), (0x890, 0x891),
                  (0x8E2, 0x8E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064),
                  (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
                  (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F))
_FORMATS = "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in _FORMAT_RANGES)
_FORMAT = re.compile(f"[{_FORMATS}]")


def _plain_text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    found = _FORMAT.search(value)
    if found:
        raise ValueError(f"must not contain invisible or direction-changing characters (U+{ord(found.group()):04X} "
                         f"at position {found.start() + 1})")
    return value


# _plain_text's rule as a pattern for the published schema, so that a generated
# "valid" text is one intake accepts (and an accepted one always matches): any
# whitespace (str.isspace, spelt out so that every regex engine reads it alike)
# around a core that starts and ends with neither whitespace nor a control
# character and holds no control character.
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_CONTROLS = r"\x00-\x1f\x7f" + _FORMATS
TEXT_PATTERN = rf"^[{_SPACE}]*[^{_SPACE}{_CONTROLS}](?:[^{_CONTROLS}]*[^{_SPACE}{_CONTROLS}])?[{_SPACE}]*$"

Text = Annotated[str, Field(max_length=200, json_schema_extra={"pattern": TEXT_PATTERN}), AfterValidator(_plain_text)]
LongText = Annotated[str, Field(max_length=2000, json_schema_extra={"pattern": TEXT_PATTERN}),
                     AfterValidator(_plain_text)]
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#-]{0,127}", re.ASCII)
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=f"^{IDENTIFIER.pattern}$")]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]


def _a_number(value: str) -> str:
    digits = re.sub(r"[\s-]", "", value.strip().upper()).removeprefix("A")
    # ASCII digits only: "A١٢٣٤٥٦٧٨٩" was accepted and kept as written, a
    # different key from A123456789 for the same person (rule 11: one case each).
    if not re.fullmatch(r"[0-9]{8,9}", digits):
        raise ValueError("an A-number is 8 or 9 digits (0-9), optionally written with a leading 'A'")
    return "A" + digits.zfill(9)


# _a_number's rule as a pattern for the published schema: spaces and dashes anywhere.
A_NUMBER_PATTERN = rf"^[\-{_SPACE}]*[Aa]?(?:[\-{_SPACE}]*[0-9]){{8,9}}[\-{_SPACE}]*$"
ANumber = Annotated[str, Field(max_length=20, json_schema_extra={"pattern": A_NUMBER_PATTERN}), AfterValidator(_a_number)]


# No fact of a case happened before 1970; a release expected after 9000 is a
# typing error. The bounds also keep every instant, and the policy's durations
# added to it, inside what a UTC timestamp can hold (year 1 at +14:00 cannot).
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)


def _in_range(value: datetime) -> datetime:
    try:
        utc = as_utc(value)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"is out of range: must be between {EARLIEST.year} and {LATEST.year}")
    return utc


# A date of birth before 1900 is a typing error (nobody held today was born
# then), and one after today is one too. "Today" is the latest calendar date
# anywhere on Earth (UTC+14), so no sender's own today is ever refused.
EARLIEST_BIRTH = date(1900, 1, 1)
BIRTH_TOLERANCE = timedelta(hours=14)


def _plausible_birth(value: date, info: ValidationInfo) -> date:
    if value < EARLIEST_BIRTH:
        raise ValueError(f"is before {EARLIEST_BIRTH.isoformat()}: a date of birth that early is a typing error")
    now = (info.context or {}).get("now")
    if now is not None and value > (now + BIRTH_TOLERANCE).date():
        raise ValueError("is in the future")
    return value


def _not_in_future(value: datetime, info: ValidationInfo) -> datetime:
    value = _in_range(value)
    now = (info.context or {}).get("now")
    if now is not None and value - now > FUTURE_TOLERANCE:
        raise ValueError("is more than 5 minutes in the future")
    return value


# RFC 3339 as written, not whatever a lenient parser makes of a value: a number
# would otherwise be read as seconds since 1970, and a date as its midnight.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?", re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _rfc3339(value: Any) -> Any:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time string with an offset (e.g. 2026-03-11T14:05:00-04:00 or ...Z)")
    return value


def _calendar_date(value: Any) -> Any:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


# The published schema (models/event_schema.py) writes a pattern for these
# bounds, as of the time it is served, where a field's schema carries this key.
BOUNDS = "x-custody-bounds"

DateTimeText = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
Instant = Annotated[DateTimeText, AfterValidator(_not_in_future), Field(json_schema_extra={BOUNDS: "past-instant"})]
InstantInRange = Annotated[DateTimeText, AfterValidator(_in_range), Field(json_schema_extra={BOUNDS: "instant"})]
CalendarDate = Annotated[date, BeforeValidator(_calendar_date)]
BirthDate = Annotated[CalendarDate, AfterValidator(_plausible_birth), Field(json_schema_extra={BOUNDS: "birth-date"})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Warrant(_Strict):
    form: WarrantForm
    number: Identifier


class Subject(_Strict):
    name: Text
    dob: BirthDate
    identity_verified: StrictBool


class DetainerDocument(_Strict):
    form: DetainerForm
    requests_custody: StrictBool
    a_number: ANumber
    ice_event_number: Identifier
    issuing_office: Text
    issued_at: Instant


class _Event(_Strict):
    event_id: Identifier
    occurred_at: Instant
    booking_number: Identifier
    facility: Code | None = None


class DetainerReceived(_Event):
    type: Literal["detainer.received"]
    detainer: DetainerDocument
    warrant: Warrant | None = None
    subject: Subject

    @model_validator(mode="before")
    @classmethod
    def _accept_nested(cls, data: Any) -> Any:
        # The contract lists warrant and subject beside the detainer; senders that
        # nest them inside it mean the same thing. Both at once is ambiguous.
        if isinstance(data, dict) and isinstance(data.get("detainer"), dict):
            inner = dict(data["detainer"])
            lifted = False
            for name in ("warrant", "subject"):
                if name in inner:
                    if name in data:
                        raise ValueError(f"{name} is given both inside detainer and beside it")
                    data = {**data, name: inner.pop(name)}
                    lifted = True
            if lifted:
                data = {**data, "detainer": inner}
        return data


class DetainerCopyServed(_Event):
    type: Literal["detainer.copy_served"]
    served_by: Text
    language: Text


class ReleaseScheduled(_Event):
    type: Literal["release.scheduled"]
    expected_release_at: InstantInRange


class ReleaseAuthorized(_Event):
    type: Literal["release.authorized"]
    reason: ReleaseReason


class WarrantServed(_Event):
    type: Literal["warrant.served"]
    officer_badge: Identifier
    warrant_number: Identifier
    location: Code


class CustodyTransferred(_Event):
    type: Literal["custody.transferred"]
    agency: Text
    officer_name: Text


class DetainerLifted(_Event):
    type: Literal["detainer.lifted"]
    lifted_by: Text
    note: LongText


# Notices to ICE whose receipt ICE can acknowledge (rule 9: a sent message is not proof of notice).
ICE_NOTICES = ("release-notice", "advance-notice", "hold-started", "release-order", "reminder", "picked-up",
               "transferred-out", "released", "already-released", "lifted", "t0-corrected")


class NoticeAcknowledged(_Event):
    type: Literal["notice.acknowledged"]
    notice: Literal[ICE_NOTICES]  # type: ignore[valid-type]
    acknowledged_by: Text


class InmateReleased(_Event):
    type: Literal["inmate.released"]
    released_by: Text


Event = Annotated[
    Union[DetainerReceived, DetainerCopyServed, ReleaseScheduled, ReleaseAuthorized,
          WarrantServed, CustodyTransferred, DetainerLifted, InmateReleased, NoticeAcknowledged],
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[str, ...] = (
    "detainer.received", "detainer.copy_served", "release.scheduled", "release.authorized",
    "warrant.served", "custody.transferred", "detainer.lifted", "inmate.released", "notice.acknowledged",
)
# Facts that happened at the same instant are applied in this order, whatever
# order they arrived in: what a later one rests on first (the detainer, then the
# release authorisation that starts the clock, then the service inside it), the
# person leaving last. So the outcome never depends on the order of lines.
SAME_INSTANT_ORDER: dict[str, int] = {kind: n for n, kind in enumerate((
    "detainer.received", "release.scheduled", "release.authorized", "warrant.served", "detainer.copy_served",
    "notice.acknowledged", "detainer.lifted", "custody.transferred", "inmate.released"))}
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)


class Refusal(StrEnum):
    """What kind of refusal an event met: the endpoint answers each with its own
    status, whatever the wording of the reason."""
    INVALID = "invalid"              # the event, or a field of it, is wrong
    NOT_PERMITTED = "not_permitted"  # the sender may not send events of this type
    CONFLICT = "conflict"            # the event id is already used by a different event


class EventRejected(ValueError):
    """A rejection that names the field: 'detainer.warrant.form: ...'."""

    def __init__(self, field: str, message: str, code: Refusal = Refusal.INVALID):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code


def parse_event(raw: Any, now: datetime) -> Any:
    """Validate one raw JSON value into a typed event, or raise EventRejected."""
    if not isinstance(raw, dict):
        raise EventRejected("event", "must be a JSON object")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise EventRejected("type", f"is required: one of {', '.join(EVENT_TYPES)}")
    if kind not in EVENT_TYPES:
        raise EventRejected("type", f"unknown event type {kind[:60]!r}: expected one of {', '.join(EVENT_TYPES)}")
    try:
        return _ADAPTER.validate_python(raw, context={"now": now})
    except ValidationError as exc:
        raise _rejection(exc, kind) from None


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*", re.ASCII)


def field_name(part: Any) -> str:
    """A field as a reason names it: plain names as they are; any other key a
    sender made up (empty, '0', 'a: b', a megabyte, a lone surrogate) quoted as
    a short ASCII JSON string, so the reason still reads 'FIELD: what is wrong'."""
    text = str(part)
    if _PLAIN_NAME.fullmatch(text) and len(text) <= 40:
        return text
    return json.dumps(text if len(text) <= 40 else text[:40] + "...")


def _rejection(exc: ValidationError, kind: str) -> EventRejected:
    first = exc.errors(include_url=False)[0]
    loc = list(first["loc"])
    if loc and loc[0] == kind:
        loc = loc[1:]
    field = ".".join(field_name(p) for p in loc) or "event"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "is not a field of this event type"
    elif first["type"] == "missing":
        message = "is required"
    elif first["type"] == "timezone_aware":
        message = "needs a UTC offset (e.g. 2026-03-11T14:05:00-04:00 or ...Z)"
    return EventRejected(field, message)
