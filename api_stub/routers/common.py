"""What the routers share: the path prefix and the error responses they document."""

from __future__ import annotations

from api_stub.schemas import ErrorEnvelope

PREFIX = "/v1/analytics"


def errors(*codes: int) -> dict[int, dict]:
    return {code: {"model": ErrorEnvelope} for code in codes}


INGEST_ERRORS = errors(400, 401, 403, 409, 413, 415, 422, 429)
READ_ERRORS = errors(400, 401, 403, 404, 422, 429, 503)
WRITE_ERRORS = errors(400, 401, 403, 404, 409, 422, 429, 503)


RULES_KEY = "x-leadron-422-rules"  # rules a JSON schema cannot state; app.openapi() writes them into the 422
RANGE_RULES = ("`to` is not before `from`", "at most 731 days from `from` to `to`")
EVENT_RULES = ("every event's timestamp is on or after the deployment's first partition day (LEADRON_PARTITION_START)",)

REPORT_RULES = (
    "`dateRange` gives `start` and `end`, or `lastDays`",
    "metrics and dimensions are in the catalogue, of one family (email, activity or cohort), with at most one "
    "date grain and only dimensions that family's mart holds (by team: weekly grains only)",
    "`name` is one line (it becomes the e-mail's subject)",
)
SCHEDULE_RULES = (
    "either `cron` or `cadence`; `weekday` for a weekly and `day` for a monthly cadence",
    "a `cron` expression that fires, at most once an hour",
    "`recipients` are e-mail addresses",
    "at most 50 schedules per tenant",
)


def unstated(*rules: str) -> dict:
    """openapi_extra of an operation whose 422 also answers rules between fields or set by the deployment."""
    return {RULES_KEY: list(rules)}
