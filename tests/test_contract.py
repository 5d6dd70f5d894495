"""The event contract shared by the API and file import."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from leadron.contract import EventIn, FileEvent, describe_errors, event_id_for, landing_row

SEED_BODY = {
    "eventType": "email_open",
    "leadId": "6789abcdef012345",
    "messageId": "msg_001",
    "workflowExecutionId": "exec_001",
}


def errors_of(body: dict, model=EventIn) -> list[dict]:
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(json.dumps(body))
    return describe_errors(info.value)


def test_seed_body_is_valid_and_defaults_timestamp_to_receipt():
    event = EventIn.model_validate_json(json.dumps(SEED_BODY))
    received = datetime(2026, 2, 9, 10, 30)
    row = landing_row(event, "acme-corp", received)
    assert row["occurred_at"] == received and row["event_date"] == received.date()
    assert row["tenant_id"] == "acme-corp" and row["event_type"] == "email_open"
    assert row["event_id"].startswith("evt_")


def test_timestamp_with_offset_is_normalised_to_utc():
    event = EventIn.model_validate_json(json.dumps(SEED_BODY | {"timestamp": "2026-02-09T05:30:00.250-05:00"}))
    assert event.timestamp == datetime(2026, 2, 9, 10, 30, 0, 250000)


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"leadId": "x"}, "eventType", "Field required"),
        ({"eventType": "email_opened"}, "eventType", "Input should be"),
        (SEED_BODY | {"timestamp": "yesterday"}, "timestamp", "valid datetime"),
        (SEED_BODY | {"stepNumber": "3"}, "stepNumber", "valid integer"),
        (SEED_BODY | {"colour": "red"}, "colour", "unknown field"),
        (SEED_BODY | {"leadId": "x" * 129}, "leadId", "at most 128"),
        (SEED_BODY | {"bounceType": "medium"}, "bounceType", "Input should be"),
        (SEED_BODY | {"url": "javascript:alert(1)"}, "url", "match pattern"),
        (SEED_BODY | {"properties": {"blob": "x" * 9000}}, "properties", "larger than"),
        (SEED_BODY | {"isBot": "yes"}, "isBot", "valid boolean"),
    ],
)
def test_bad_fields_are_named_with_a_reason(body, field, fragment):
    details = errors_of(body)
    assert any(d["field"] == field and fragment in d["issue"] for d in details), details


def test_timestamp_more_than_a_day_ahead_is_rejected():
    ahead = (datetime.now(UTC) + timedelta(hours=25)).isoformat()
    details = errors_of(SEED_BODY | {"timestamp": ahead})
    assert details == [{"field": "timestamp", "issue": "Value error, timestamp is more than 24 hours in the future"}]


def test_file_events_need_a_tenant():
    assert errors_of(SEED_BODY, FileEvent) == [{"field": "tenantId", "issue": "Field required"}]


def test_missing_event_id_is_a_stable_content_hash():
    a = FileEvent.model_validate_json(json.dumps(SEED_BODY | {"tenantId": "acme", "timestamp": "2026-01-01T00:00:00Z"}))
    b = FileEvent.model_validate_json(json.dumps(SEED_BODY | {"tenantId": "acme", "timestamp": "2026-01-01T00:00:00Z"}))
    c = FileEvent.model_validate_json(json.dumps(SEED_BODY | {"tenantId": "acme", "timestamp": "2026-01-01T00:00:01Z"}))
    assert event_id_for("acme", a) == event_id_for("acme", b) != event_id_for("acme", c)
    assert event_id_for("other", a) != event_id_for("acme", a)
    given = FileEvent.model_validate_json(json.dumps(SEED_BODY | {"tenantId": "acme", "eventId": "client-1"}))
    assert event_id_for("acme", given) == "client-1"


# Timestamps as clients send them: UTC, offsets, naive, fractions; some more than a day ahead.
_timestamps = st.builds(
    lambda moment, minutes, style: (moment + timedelta(minutes=minutes)).isoformat(timespec=style),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=-5, minutes=-30)), timezone(timedelta(hours=14)), None])),
    st.integers(-3000, 3000),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), _timestamps), min_size=1, max_size=8))
def test_a_batch_gets_the_timestamp_rule_of_a_single_event(timestamps):
    # The batch applies the rule once over all its events (apply_timestamp_rule), a single event per event
    # (UtcTimestamp): the same events, or a refusal exactly when some event alone is refused.
    from api_stub.schemas import ApiEventIn, ValidBatchIn

    bodies = [SEED_BODY | ({"timestamp": t} if t else {}) for t in timestamps]
    single = []
    for body in bodies:
        try:
            single.append(ApiEventIn.model_validate_json(json.dumps(body)))
        except ValidationError:
            single.append(None)
    try:
        batch = ValidBatchIn.validate_json(json.dumps({"events": bodies}).encode())
    except ValueError:
        assert None in single
    else:
        assert [e.model_dump() for e in batch] == [e.model_dump() for e in single]
