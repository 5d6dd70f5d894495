"""Report schedules: when each is due (cron or a simple cadence, in its time zone), as pure functions.

A schedule in a report definition (`schedules:`):

    - id: monday-morning
      cadence: weekly          # daily | weekly | monthly, or `cron: "0 8 * * 1"` instead
      weekday: mon             # weekly
      day: 1                   # monthly
      time: "08:00"
      timezone: Europe/Berlin
      recipients: [manager@acme.example]
      formats: [csv, xlsx, pdf]   # attachments; the HTML report is the body
      skip_when_empty: true

A due time is sent once the data is fresh: a publication made after the due day began (in the
schedule's zone), so that an 08:00 report waits for that night's build rather than using yesterday's.

Limits (a schedule must not become a mail cannon): it fires at most once an hour (MIN_INTERVAL), has at
most MAX_RECIPIENTS recipients, and a tenant has at most MAX_SCHEDULES_PER_TENANT schedules. A cron
expression is checked by computing its next fire times, so one that never fires (`0 0 31 2 *`) is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from leadron.mailer import recipient
from leadron.zones import TimeZoneName

WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron numbering: 0 = Sunday
MIN_INTERVAL = timedelta(hours=1)
MAX_RECIPIENTS = 20
MAX_SCHEDULES_PER_TENANT = 50
FIRES_CHECKED = 200  # consecutive fire times whose gaps are checked (a cron's shortest gap shows in its first day)


def check_cron(expression: str, start: datetime | None = None) -> None:
    """ValueError unless the expression fires, and never twice within MIN_INTERVAL."""
    if not croniter.is_valid(expression):
        raise ValueError(f"cron: {expression!r} is not a cron expression")
    iterator = croniter(expression, start or datetime.now(UTC))
    try:
        previous = iterator.get_next(datetime)
        for _ in range(FIRES_CHECKED):
            due = iterator.get_next(datetime)
            if due - previous < MIN_INTERVAL:
                raise ValueError(f"cron: {expression!r} fires more often than once an hour")
            previous = due
    except CroniterBadDateError:
        raise ValueError(f"cron: {expression!r} never fires (no such date)") from None


class ReportSchedule(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    cron: str | None = None
    cadence: Literal["daily", "weekly", "monthly"] | None = None
    weekday: Literal["sun", "mon", "tue", "wed", "thu", "fri", "sat"] | None = None
    day: int | None = Field(default=None, ge=1, le=28)
    time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "08:00"
    timezone: TimeZoneName = "UTC"
    recipients: list[str] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    formats: list[Literal["csv", "xlsx", "pdf", "html"]] = Field(default_factory=lambda: ["csv"])
    skip_when_empty: bool = False

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, values: list[str]) -> list[str]:
        return [recipient(v) for v in values]

    @model_validator(mode="after")
    def _timing(self) -> ReportSchedule:
        if (self.cron is None) == (self.cadence is None):
            raise ValueError("give either cron or cadence")
        if self.cron is not None:
            check_cron(self.cron)
        if self.cadence == "weekly" and self.weekday is None:
            raise ValueError("weekday: needed for a weekly cadence")
        if self.cadence == "monthly" and self.day is None:
            raise ValueError("day: needed for a monthly cadence")
        return self

    def cron_expression(self) -> str:
        if self.cron:
            return self.cron
        hour, minute = (int(p) for p in self.time.split(":"))
        if self.cadence == "daily":
            return f"{minute} {hour} * * *"
        if self.cadence == "weekly":
            return f"{minute} {hour} * * {WEEKDAYS.index(self.weekday)}"
        return f"{minute} {hour} {self.day} * *"


def latest_due(schedule: ReportSchedule, after: datetime, until: datetime) -> datetime | None:
    """The latest due instant in (after, until], aware in the schedule's zone (DST-correct), or None.
    Only the latest: after downtime a schedule sends once, not once per missed due time."""
    zone = ZoneInfo(schedule.timezone)
    due = croniter(schedule.cron_expression(), (until + timedelta(microseconds=1)).astimezone(zone)).get_prev(datetime)
    return due if due > after else None


def data_is_fresh(due: datetime, published_at: datetime | None) -> bool:
    """Fresh: published after the due day began in the schedule's zone."""
    if published_at is None:
        return False
    day_start = datetime.combine(due.date(), time(0), tzinfo=due.tzinfo)
    return published_at >= day_start
