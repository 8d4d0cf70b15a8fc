"""The jurisdiction policy: every rule that varies by place or date.

Loaded from one TOML file. A policy that would break the law (a hold limit
above 48 hours) or is otherwise invalid is refused with the field named, so the
system never starts on a policy it cannot honour.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.durations import parse_duration

# 8 C.F.R. 287.7(d) and Form I-247A: "not to exceed 48 hours". No county may go
# higher, and no weekend/holiday extension is read into it (the shorter reading).
LEGAL_MAX_HOLD = timedelta(hours=48)


class Mode(StrEnum):
    WSO = "wso"                  # hold only after a certified WSO serves the warrant
    DETAINER = "detainer"        # hold on an I-247A with a warrant (NC law since HB 10)
    NOTIFY_ONLY = "notify_only"  # never hold; notify ICE and release on time


class AnchorKind(StrEnum):
    RELEASE_AUTHORIZED = "release_authorized"  # T0 = when the person would otherwise be released
    DETAINER_RECEIVED = "detainer_received"    # T0 = when the detainer was received (NC HB 10)


@dataclass(frozen=True)
class AnchorRule:
    effective_from: date  # a local date in the jurisdiction's timezone
    kind: AnchorKind


class PolicyError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"policy: {field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Policy:
    name: str
    mode: Mode
    timezone: ZoneInfo
    facilities: tuple[str, ...]
    hold_limit: timedelta
    anchors: tuple[AnchorRule, ...]
    service_grace: timedelta
    reminder_marks: tuple[timedelta, ...]  # before the deadline, largest first
    release_order_lead: timedelta
    page_supervisors_before: timedelta
    ice_advance_notice: timedelta
    pickup_poll_interval: timedelta
    # The longest the service window is held open, once it has closed, for officers'
    # reports submitted in the Prefect UI that custody has not yet read (Prefect
    # down or unreachable). Read within a second when all is well: see docs/rules.md.
    report_wait: timedelta = timedelta(seconds=30)
    source: str = "<built>"

    def anchor_kind_at(self, instant: datetime) -> AnchorKind:
        """The anchor rule in force at an instant (the law that applies when the
        person would otherwise be released). Before the first effective date the
        federal reading applies: the clock starts at release."""
        local_day = instant.astimezone(self.timezone).date()
        kind = AnchorKind.RELEASE_AUTHORIZED
        for rule in self.anchors:
            if rule.effective_from <= local_day:
                kind = rule.kind
        return kind

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.timezone)

    def has_facility(self, code: str) -> bool:
        return code in self.facilities

    @property
    def single_facility(self) -> str | None:
        return self.facilities[0] if len(self.facilities) == 1 else None


# --- loading -------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Jurisdiction(_Strict):
    name: str = Field(min_length=1)
    mode: Mode
    timezone: str
    facilities: list[str] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as 'America/New_York')")
        return value

    @field_validator("facilities")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not code or not code.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"facility code {code!r} must be letters, digits, '-' or '_'")
        if len(set(value)) != len(value):
            raise ValueError("facility codes must be unique")
        return value


class _Hold(_Strict):
    limit: str
    service_grace: str = "1h"
    reminder_marks: list[str] = ["12h", "4h", "1h"]
    release_order_lead: str = "2h"
    page_supervisors_before: str = "30m"
    ice_advance_notice: str = "48h"
    pickup_poll_interval: str = "15m"
    report_wait: str = "30s"


class _Anchor(_Strict):
    effective_from: date
    rule: AnchorKind


class _PolicyFile(_Strict):
    jurisdiction: _Jurisdiction
    hold: _Hold
    anchor: list[_Anchor] = []


def _duration(field: str, text: Any) -> timedelta:
    if not isinstance(text, str):
        raise PolicyError(field, f"{text!r} is not a duration string (write e.g. '48h')")
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise PolicyError(field, str(exc)) from None


def policy_from_mapping(data: dict[str, Any], source: str = "<mapping>") -> Policy:
    try:
        parsed = _PolicyFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "policy"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling)"
        raise PolicyError(field, message) from None

    hold = parsed.hold
    limit = _duration("hold.limit", hold.limit)
    if limit <= timedelta(0):
        raise PolicyError("hold.limit", "must be longer than zero")
    if limit > LEGAL_MAX_HOLD:
        raise PolicyError("hold.limit", f"{hold.limit} is above the legal maximum of 48h; it may only be set lower")

    def within_limit(name: str, text: str, *, allow_zero: bool = False) -> timedelta:
        value = _duration(f"hold.{name}", text)
        if value < timedelta(0) or (value == timedelta(0) and not allow_zero):
            raise PolicyError(f"hold.{name}", "must be longer than zero")
        if value >= limit:
            raise PolicyError(f"hold.{name}", f"{text} must be shorter than the hold limit ({hold.limit})")
        return value

    marks = tuple(sorted((within_limit("reminder_marks", m) for m in hold.reminder_marks), reverse=True))
    if len(set(marks)) != len(marks):
        raise PolicyError("hold.reminder_marks", "marks must be distinct")
    lead = within_limit("release_order_lead", hold.release_order_lead, allow_zero=True)
    page = within_limit("page_supervisors_before", hold.page_supervisors_before, allow_zero=True)
    if page > lead:
        # Paging supervisors before the release desk was even ordered would be noise.
        raise PolicyError("hold.page_supervisors_before", "must not be longer than hold.release_order_lead")
    grace = within_limit("service_grace", hold.service_grace, allow_zero=True)
    advance = _duration("hold.ice_advance_notice", hold.ice_advance_notice)
    poll = _duration("hold.pickup_poll_interval", hold.pickup_poll_interval)
    if poll <= timedelta(0):
        raise PolicyError("hold.pickup_poll_interval", "must be longer than zero")

    report_wait = within_limit("report_wait", hold.report_wait, allow_zero=True)
    if parsed.jurisdiction.mode is Mode.WSO and grace + report_wait > limit - lead:
        # A window decided after the release-order time of the hold it would start leaves the desk no time.
        raise PolicyError("hold.report_wait", "hold.service_grace plus hold.report_wait must not be longer than "
                                              "hold.limit minus hold.release_order_lead")

    days = [a.effective_from for a in parsed.anchor]
    if days != sorted(days) or len(set(days)) != len(days):
        raise PolicyError("anchor", "effective_from dates must be distinct and in ascending order")

    return Policy(
        name=parsed.jurisdiction.name,
        mode=parsed.jurisdiction.mode,
        timezone=ZoneInfo(parsed.jurisdiction.timezone),
        facilities=tuple(parsed.jurisdiction.facilities),
        hold_limit=limit,
        anchors=tuple(AnchorRule(a.effective_from, a.rule) for a in parsed.anchor),
        service_grace=grace,
        reminder_marks=marks,
        release_order_lead=lead,
        page_supervisors_before=page,
        ice_advance_notice=advance,
        pickup_poll_interval=poll,
        report_wait=report_wait,
        source=source,
    )


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError("file", f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError("file", f"{path} is not valid TOML: {exc}") from None
    return policy_from_mapping(data, source=str(path))
