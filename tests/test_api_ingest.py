"""The ingestion API against a real server on 127.0.0.1: the seed contract, errors, idempotency, isolation."""

from __future__ import annotations

import http.client
import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.api_server import Server, post_json

SEED_BODY = {
    "eventType": "email_open",
    "leadId": "6789abcdef012345",
    "messageId": "msg_001",
    "workflowExecutionId": "exec_001",
}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
EVENTS = "/v1/analytics/events"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("api") / "home"
    home.mkdir()
    srv = Server(home, {"LEADRON_SEAL_INTERVAL": "0.5"}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def acme(server):
    return server.client(server.create_key("acme-corp"))


@pytest.fixture(scope="module")
def globex(server):
    return server.client(server.create_key("globex"))


def test_seed_request_gets_the_seed_response_to_the_field(acme):
    before = datetime.now(UTC).replace(tzinfo=None)
    response = post_json(acme, EVENTS, SEED_BODY)
    assert response.status_code == 201
    body = response.json()
    assert list(body) == ["success", "status", "message", "data", "meta"]
    assert body["success"] is True and body["status"] == 201 and body["message"] == "Event ingested"
    data = body["data"]
    assert list(data) == ["id", "tenantId", "type", "leadId", "messageId", "workflowExecutionId", "timestamp"]
    assert data["tenantId"] == "acme-corp" and data["type"] == "email_open"
    assert (data["leadId"], data["messageId"], data["workflowExecutionId"]) == (
        "6789abcdef012345",
        "msg_001",
        "exec_001",
    )
    assert data["id"].startswith("evt_")
    assert ISO_MS.match(data["timestamp"]) and ISO_MS.match(body["meta"]["timestamp"])
    stamped = datetime.strptime(data["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert before - timedelta(seconds=1) <= stamped <= datetime.now(UTC).replace(tzinfo=None)  # time of receipt
    assert body["meta"]["version"] == "v1"
    assert body["meta"]["requestId"] == response.headers["X-Request-Id"]
    assert int(response.headers["X-RateLimit-Remaining"]) >= 0


def test_given_timestamp_is_kept_and_normalised_to_utc(acme):
    body = post_json(acme, EVENTS, SEED_BODY | {"timestamp": "2026-02-09T05:30:00.5-05:00"}).json()
    assert body["data"]["timestamp"] == "2026-02-09T10:30:00.500Z"


def test_request_id_is_echoed_or_generated(acme):
    given = post_json(acme, EVENTS, SEED_BODY, **{"X-Request-Id": "trace-123"})
    assert given.headers["X-Request-Id"] == "trace-123" and given.json()["meta"]["requestId"] == "trace-123"
    made = post_json(acme, EVENTS, {"eventType": "bogus"})
    assert (
        made.headers["X-Request-Id"].startswith("req_")
        and made.json()["meta"]["requestId"] == made.headers["X-Request-Id"]
    )


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"leadId": "x"}, 422, "eventType"),
        ({"eventType": "email_opened"}, 422, "eventType"),
        (SEED_BODY | {"timestamp": "2026-02-30T00:00:00Z"}, 422, "timestamp"),
        (SEED_BODY | {"stepNumber": "two"}, 422, "stepNumber"),
        (SEED_BODY | {"isBot": 1}, 422, "isBot"),
        (SEED_BODY | {"surprise": True}, 422, "surprise"),
        (SEED_BODY | {"leadId": "L" * 500}, 422, "leadId"),
        (SEED_BODY | {"timestamp": (datetime.now(UTC) + timedelta(days=2)).isoformat()}, 422, "timestamp"),
        ([SEED_BODY], 422, "body"),
    ],
)
def test_bad_bodies_get_the_error_envelope_with_field_and_reason(acme, body, status, field):
    response = post_json(acme, EVENTS, body)
    assert response.status_code == status
    payload = response.json()
    assert payload["success"] is False and payload["status"] == status
    assert payload["error"]["code"] == "VALIDATION_ERROR"
    details = payload["error"]["details"]
    assert any(d["field"] == field and d["issue"] for d in details) or (field == "body" and details), details


def test_malformed_json_is_400_and_wrong_content_type_415(acme):
    response = acme.post(EVENTS, content=b'{"eventType": "email_open"', headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "MALFORMED_JSON"
    response = acme.post(EVENTS, content=json.dumps(SEED_BODY), headers={"Content-Type": "text/plain"})
    assert response.status_code == 415 and response.json()["error"]["details"][0]["field"] == "Content-Type"


def test_body_over_the_limit_is_413_by_header_and_by_bytes_read(server, acme):
    big = json.dumps(SEED_BODY | {"properties": {"x": "y" * (1024 * 1024)}})
    response = acme.post(EVENTS, content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    # Chunked upload without Content-Length: the bytes actually read are counted.
    key = acme.headers["X-API-Key"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", EVENTS)
    for name, value in (("X-API-Key", key), ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")):
        conn.putheader(name, value)
    conn.endheaders()
    chunk = b"x" * 65536
    try:
        for _ in range(20):
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before reading everything
    reply = conn.getresponse()
    assert reply.status == 413
    assert json.loads(reply.read())["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_unknown_malformed_and_revoked_keys_get_the_same_401(server):
    key = server.create_key("acme-corp")
    import os
    import subprocess
    import sys

    key_id = key[len("ldr_live_sk_") :][:8]
    env = {**os.environ, "LEADRON_HOME": str(server.home)}
    subprocess.run(
        [sys.executable, "-m", "leadron_cli.main", "keys", "revoke", key_id], env=env, check=True, capture_output=True
    )
    time.sleep(5.2)  # the server caches a key's verdict for up to 5 s
    bodies = []
    for presented in (None, "nonsense", "ldr_live_sk_" + "A" * 40, key):
        client = server.client(presented)
        response = post_json(client, EVENTS, SEED_BODY)
        assert response.status_code == 401
        body = response.json()
        bodies.append((body["message"], body["error"]))
    assert len(set(json.dumps(b, sort_keys=True) for b in bodies)) == 1


def test_keys_are_stored_hashed(server):
    key = server.create_key("acme-corp")
    raw = (server.home / "api" / "keys.sqlite").read_bytes()
    assert key.encode() not in raw and key[len("ldr_live_sk_") :].encode() not in raw


def test_missing_scope_is_403(server):
    reader = server.client(server.create_key("acme-corp", scopes="analytics:read"))
    response = post_json(reader, EVENTS, SEED_BODY)
    assert response.status_code == 403 and "events:write" in response.json()["message"]


def test_tenant_comes_from_the_key_never_the_body(acme, globex):
    response = post_json(acme, EVENTS, SEED_BODY | {"tenantId": "globex"})
    assert response.status_code == 403 and response.json()["error"]["details"][0]["field"] == "tenantId"
    same = post_json(acme, EVENTS, SEED_BODY | {"tenantId": "acme-corp", "messageId": "iso-1"})
    assert same.status_code == 201 and same.json()["data"]["tenantId"] == "acme-corp"
    # globex cannot see acme's message; the same eventId is a separate event per tenant.
    status = globex.get(f"{EVENTS}/status", params={"messageId": "iso-1"}).json()["data"]
    assert status["events"] == {} and status["opened"] is False
    a = post_json(acme, EVENTS, SEED_BODY | {"eventId": "shared-id"})
    b = post_json(globex, EVENTS, SEED_BODY | {"eventId": "shared-id"})
    assert a.json()["data"]["tenantId"] == "acme-corp" and b.json()["data"]["tenantId"] == "globex"
    assert "Idempotent-Replayed" not in b.headers


def test_same_event_id_returns_the_original_and_a_different_body_conflicts(acme):
    first = post_json(acme, EVENTS, SEED_BODY | {"eventId": "idem-evt-1", "timestamp": "2026-03-01T00:00:00Z"})
    again = post_json(acme, EVENTS, SEED_BODY | {"eventId": "idem-evt-1", "timestamp": "2026-03-01T00:00:00Z"})
    assert first.status_code == again.status_code == 201
    assert again.json()["data"] == first.json()["data"] and again.headers["Idempotent-Replayed"] == "true"
    other = post_json(acme, EVENTS, SEED_BODY | {"eventId": "idem-evt-1", "eventType": "link_click"})
    assert other.status_code == 409 and other.json()["error"]["details"][0]["field"] == "eventId"


def test_idempotency_key_replays_and_conflicts(acme):
    body = SEED_BODY | {"messageId": "idem-msg"}  # no eventId, no timestamp: a retry would otherwise be new
    first = post_json(acme, EVENTS, body, **{"Idempotency-Key": "retry-42"})
    time.sleep(0.01)
    again = post_json(acme, EVENTS, body, **{"Idempotency-Key": "retry-42"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = post_json(acme, EVENTS, body | {"leadId": "someone-else"}, **{"Idempotency-Key": "retry-42"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    status = acme.get(f"{EVENTS}/status", params={"messageId": "idem-msg"}).json()["data"]
    assert status["events"] == {"email_open": 1}  # landed once


def test_batch_answers_per_event_and_lands_only_the_accepted(acme):
    body = {
        "events": [
            {"eventType": "email_sent", "eventId": "bt-1", "messageId": "batch-m1", "leadId": "L1"},
            {"eventType": "email_opened", "eventId": "bt-2", "messageId": "batch-m1"},
            {"eventType": "link_click", "eventId": "bt-3", "messageId": "batch-m1", "url": "https://a.example/x"},
            {"eventType": "email_sent", "eventId": "bt-1", "messageId": "batch-m1", "leadId": "L1"},
        ]
    }
    response = post_json(acme, f"{EVENTS}/batch", body)
    assert response.status_code == 207
    data = response.json()["data"]
    assert (data["accepted"], data["duplicates"], data["rejected"]) == (2, 1, 1)
    assert [r["status"] for r in data["results"]] == ["accepted", "rejected", "accepted", "duplicate"]
    assert data["results"][1]["errors"][0]["field"] == "eventType"
    status = acme.get(f"{EVENTS}/status", params={"messageId": "batch-m1"}).json()["data"]
    assert status["events"] == {"email_sent": 1, "link_click": 1}
    all_good = post_json(acme, f"{EVENTS}/batch", {"events": [{"eventType": "page_visit", "eventId": "bt-9"}]})
    assert all_good.status_code == 201 and all_good.json()["data"]["accepted"] == 1


def test_batch_limits(acme):
    too_many = {"events": [{"eventType": "page_visit"}] * 1001}
    response = post_json(acme, f"{EVENTS}/batch", too_many)
    assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == "events"
    none_valid = post_json(acme, f"{EVENTS}/batch", {"events": [{"eventType": "nope"}, {"x": 1}]})
    assert none_valid.status_code == 422
    fields = {d["field"] for d in none_valid.json()["error"]["details"]}
    assert {"events.0.eventType", "events.1.eventType", "events.1.x"} <= fields
    foreign = post_json(acme, f"{EVENTS}/batch", {"events": [{"eventType": "page_visit", "tenantId": "globex"}]})
    assert foreign.status_code == 403


def test_status_answers_within_a_second_and_ignores_bots(acme):
    sent = datetime.now(UTC).replace(microsecond=0, tzinfo=None) - timedelta(minutes=5)
    iso = lambda t: t.isoformat() + "Z"  # noqa: E731
    post_json(acme, EVENTS, {"eventType": "email_sent", "messageId": "st-1", "timestamp": iso(sent)})
    post_json(
        acme, EVENTS, {"eventType": "email_open", "messageId": "st-1", "timestamp": iso(sent + timedelta(seconds=1))}
    )
    post_json(
        acme, EVENTS, {"eventType": "link_click", "messageId": "st-1", "isBot": True, "url": "https://a.example/"}
    )
    started = time.monotonic()
    data = acme.get(f"{EVENTS}/status", params={"messageId": "st-1"}).json()["data"]
    assert time.monotonic() - started < 1.0
    assert data["sent"] and not data["opened"] and not data["clicked"]  # both bots
    post_json(
        acme,
        EVENTS,
        {
            "eventType": "email_open",
            "messageId": "st-1",
            "timestamp": iso(sent + timedelta(minutes=3)),
            "userAgent": "Mozilla/5.0 (Macintosh)",
        },
    )
    post_json(acme, EVENTS, {"eventType": "email_reply", "messageId": "st-1", "sentiment": "positive"})
    data = acme.get(f"{EVENTS}/status", params={"messageId": "st-1"}).json()["data"]
    assert (
        data["opened"] and data["replied"] and data["firstOpenedAt"] == iso(sent + timedelta(minutes=3))[:-1] + ".000Z"
    )
    bad = acme.get(f"{EVENTS}/status")
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "messageId"
    execution = acme.get("/v1/analytics/workflow-executions/exec_001/status").json()["data"]
    assert execution["workflowExecutionId"] == "exec_001" and execution["opened"] is True


def test_rate_limit_429_with_retry_after(tmp_path):
    srv = Server(tmp_path / "home", {"LEADRON_RATE_LIMIT": "1", "LEADRON_RATE_BURST": "3"})
    (tmp_path / "home").mkdir()
    srv.start()
    try:
        client = srv.client(srv.create_key("acme-corp"))
        codes = [post_json(client, EVENTS, SEED_BODY) for _ in range(5)]
        assert [r.status_code for r in codes[:3]] == [201, 201, 201]
        limited = codes[3]
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        assert limited.json()["error"]["code"] == "RATE_LIMITED"
    finally:
        srv.stop()


def test_openapi_document_is_served_and_lists_the_endpoints(server):
    import httpx

    spec = httpx.get(f"{server.url}/openapi.json").json()
    paths = spec["paths"]
    assert {"/v1/analytics/events", "/v1/analytics/events/batch", "/v1/analytics/events/status"} <= set(paths)
    body = paths["/v1/analytics/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ApiEventIn"}
    assert "eventType" in spec["components"]["schemas"]["ApiEventIn"]["required"]
    assert {"201", "400", "401", "403", "409", "413", "415", "422", "429"} <= set(
        paths["/v1/analytics/events"]["post"]["responses"]
    )
