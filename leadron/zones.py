"""One type for a time zone name, shared by report definitions and schedules."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator


def _known_zone(value: str) -> str:
    if value not in available_timezones() and value != "UTC":
        raise ValueError(f"unknown time zone {value!r}")
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
