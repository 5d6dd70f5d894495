"""The API as an attacker meets it: real servers on 127.0.0.1, real sockets, real signatures.

Each test here failed on the code before the hardening it names (forgeable tokens, unsigned webhooks,
abusive schedules, unbounded work per request, leaky logs and files)."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import sqlite3
import stat
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import pytest

from leadron import tracking
from leadron.settings import get_settings
from tests.api_server import Server, post_json
from tests.conftest import use_home
from tests.security_server import (  # noqa: F401 - fixtures by name
    EVENTS,
    REPORT,
    STATUS,
    acme_fixture,
    cli,
    events_of,
    secret_fixture,
    server_fixture,
    server_log,
)
from tests.webhook_signing import SendGridAccount, mailgun_signature


# ---- secrets and tokens ----------------------------------------------------------------------------
def _secret_of(home: str, barrier, queue) -> None:
    os.environ["LEADRON_HOME"] = home
    settings = get_settings()
    barrier.wait()  # every process asks at the same moment, as workers starting together do
    try:
        queue.put(settings.secret())
    except Exception as exc:  # noqa: BLE001 - what a racing worker hit is the finding
        queue.put(repr(exc))


def test_processes_racing_on_a_fresh_home_get_one_full_length_secret(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue, barrier = ctx.Queue(), ctx.Barrier(8)
    for attempt in range(1):
        home = str(tmp_path / f"home{attempt}")
        procs = [ctx.Process(target=_secret_of, args=(home, barrier, queue)) for _ in range(8)]
        for p in procs:
            p.start()
        seen = {queue.get(timeout=60) for _ in procs}
        for p in procs:
            p.join(30)
        assert len(seen) == 1, seen
        (value,) = seen
        assert isinstance(value, bytes) and len(value) == 64
        assert stat.S_IMODE((Path(home) / "api" / "secret").stat().st_mode) == 0o600


def test_an_empty_secret_left_by_a_crash_is_replaced_and_a_short_one_refused(tmp_path):
    home = tmp_path / "home"
    (home / "api").mkdir(parents=True)
    (home / "api" / "secret").write_bytes(b"")  # a first start killed between create and write
    srv = Server(home, {}).start()
    try:
        key = (home / "api" / "secret").read_bytes()
        assert len(key) == 64
        forged = tracking.open_token(b"", "acme-corp", "L1", "forged-1")  # signed with the empty key
        assert srv.client().get(f"/v1/analytics/track/open/{forged}").status_code == 404
        genuine = tracking.open_token(key, "acme-corp", "L1", "genuine-1")
        assert srv.client().get(f"/v1/analytics/track/open/{genuine}").status_code == 200
    finally:
        srv.stop()
    short = Server(tmp_path / "home2", {"LEADRON_API_SECRET": "too-short"})
    (tmp_path / "home2").mkdir()
    with pytest.raises(RuntimeError, match="exited"):
        short.start(timeout=30)
    assert "LEADRON_API_SECRET is 9 bytes; it must be at least 32" in server_log(short)
    assert "Traceback" not in server_log(short)


def test_two_workers_on_a_fresh_home_sign_with_one_secret(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    srv = Server(home, {}, workers=2).start()
    try:
        key = (home / "api" / "secret").read_bytes()
        assert len(key) == 64
        codes = []
        for i in range(30):  # a new connection each time: the kernel spreads them over both workers
            token = tracking.open_token(key, "acme-corp", "L1", f"two-workers-{i}")
            with httpx.Client(base_url=srv.url, timeout=10) as client:
                codes.append(client.get(f"/v1/analytics/track/open/{token}").status_code)
        assert codes == [200] * 30
        assert "FileExistsError" not in server_log(srv)
    finally:
        srv.stop()


def test_tracking_tokens_expire_and_a_repeated_hit_lands_once(server, secret, acme):
    fresh = tracking.open_token(secret, "acme-corp", "L1", "repeat-1")
    for _ in range(3):
        response = server.client().get(f"/v1/analytics/track/open/{fresh}", headers={"User-Agent": "Mail/1"})
        assert response.status_code == 200
    assert events_of(acme, "repeat-1") == {"email_open": 1}
    # Another client (here: another user agent from the same address) is another open.
    server.client().get(f"/v1/analytics/track/open/{fresh}", headers={"User-Agent": "Mail/2"})
    assert events_of(acme, "repeat-1") == {"email_open": 2}
    expired = tracking.open_token(secret, "acme-corp", "L1", "expired-1", ttl_days=-1)
    assert server.client().get(f"/v1/analytics/track/open/{expired}").status_code == 404
    # A token of the old form (no expiry) is refused like a forged one.
    timeless = tracking.sign(secret, tracking.OPEN, {"t": "acme-corp", "l": "L1", "m": "expired-1", "x": None})
    assert server.client().get(f"/v1/analytics/track/open/{timeless}").status_code == 404
    old_click = tracking.click_token(secret, "acme-corp", "L1", "expired-1", "https://acme.example/", ttl_days=-1)
    response = server.client().get(f"/v1/analytics/track/click/{old_click}", follow_redirects=False)
    assert response.status_code == 404 and "location" not in response.headers
    script = tracking.click_token(secret, "acme-corp", "L1", "expired-1", "javascript:alert(1)")
    assert server.client().get(f"/v1/analytics/track/click/{script}", follow_redirects=False).status_code == 404
    assert events_of(acme, "expired-1") == {}


def test_logs_hold_no_tokens_or_keys_and_no_forged_lines(server, secret, acme):
    token = tracking.open_token(secret, "acme-corp", "L1", "log-1")
    server.client().get(f"/v1/analytics/track/open/{token}")
    webhook = tracking.webhook_token(secret, "acme-corp", "sendgrid")
    post_json(server.client(), f"/v1/analytics/webhooks/sendgrid/{webhook}", [])
    bad_key = "ldr_live_sk_AAAAAAAA" + "B" * 32
    server.client(bad_key).get("/v1/analytics/dashboard/kpis")
    # %0a decodes to a line break in the path: it must not start a line of its own in the log.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /health%0aFORGED%20200%20admin%20login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass
    time.sleep(0.3)
    log = server_log(server)
    assert token not in log and webhook not in log and bad_key not in log
    assert "/v1/analytics/track/open/…" in log and "/v1/analytics/webhooks/sendgrid/…" in log
    assert not any(line.startswith("FORGED") for line in log.splitlines())
    assert "/health\\nFORGED 200 admin login" in log


# ---- provider webhooks ------------------------------------------------------------------------------
def register(srv: Server, tenant: str, provider: str, key: str) -> str:
    result = cli(
        srv.home,
        "keys",
        "webhook-url",
        "--tenant",
        tenant,
        "--provider",
        provider,
        "--base-url",
        srv.url,
        "--verification-key",
        "-",
        stdin=key + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert key not in result.stdout + result.stderr  # never printed back
    return result.stdout.strip().removeprefix(srv.url)


def opens(message_id: str, n: int = 1) -> list[dict]:
    return [
        {
            "event": "open",
            "sg_event_id": f"{message_id}-{i}-{uuid.uuid4().hex}",
            "timestamp": int(time.time()),
            "messageId": message_id,
            "email": "lead@example.com",
        }
        for i in range(n)
    ]


def test_sendgrid_webhooks_must_carry_the_tenants_signature(server, acme):
    account = SendGridAccount()
    url = register(server, "acme-corp", "sendgrid", account.verification_key)
    client = server.client()
    good = account.post(client, url, opens("sg-sec-1"))
    assert good.status_code == 200 and good.json()["data"]["accepted"] == 1
    body = json.dumps(opens("sg-sec-2")).encode()
    headers = account.sign(body)
    tampered = client.post(url, content=body.replace(b"sg-sec-2", b"sg-sec-3"), headers=headers)
    stale = account.post(client, url, opens("sg-sec-2"), timestamp=int(time.time()) - 600)
    missing = client.post(url, content=body, headers={"Content-Type": "application/json"})
    other_account = SendGridAccount().post(client, url, opens("sg-sec-2"))
    for response, field in (
        (tampered, "X-Twilio-Email-Event-Webhook-Signature"),
        (stale, "X-Twilio-Email-Event-Webhook-Timestamp"),
        (missing, "X-Twilio-Email-Event-Webhook-Signature"),
        (other_account, "X-Twilio-Email-Event-Webhook-Signature"),
    ):
        assert response.status_code == 401, response.text
        error = response.json()
        assert error["success"] is False and error["error"]["details"][0]["field"] == field
    # A tenant that registered no key: every webhook is refused, signed or not.
    with pytest.MonkeyPatch.context() as mp:
        secret = use_home(mp, server.home).secret()
    unregistered = f"/v1/analytics/webhooks/sendgrid/{tracking.webhook_token(secret, 'initech', 'sendgrid')}"
    assert account.post(client, unregistered, opens("sg-sec-4")).status_code == 401
    assert events_of(acme, "sg-sec-1") == {"email_open": 1}
    assert events_of(acme, "sg-sec-2") == {} and events_of(acme, "sg-sec-3") == {}


def test_mailgun_webhooks_are_verified_fresh_and_used_once(server, acme):
    key = "key-" + uuid.uuid4().hex
    url = register(server, "acme-corp", "mailgun", key)
    client = server.client()

    def payload(message_id: str, signature: dict) -> dict:
        return {
            "signature": signature,
            "event-data": {
                "event": "opened",
                "id": uuid.uuid4().hex,
                "timestamp": time.time(),
                "user-variables": {"messageId": message_id},
            },
        }

    signature = mailgun_signature(key)
    assert post_json(client, url, payload("mg-sec-1", signature)).json()["data"]["accepted"] == 1
    replayed = post_json(client, url, payload("mg-sec-2", signature))  # the same token again
    assert replayed.status_code == 401 and replayed.json()["error"]["details"][0]["field"] == "signature.token"
    stale = post_json(client, url, payload("mg-sec-2", mailgun_signature(key, time.time() - 600)))
    assert stale.status_code == 401 and stale.json()["error"]["details"][0]["field"] == "signature.timestamp"
    wrong = post_json(client, url, payload("mg-sec-2", mailgun_signature("another-key")))
    assert wrong.status_code == 401
    assert post_json(client, url, {"event-data": {}}).status_code == 401
    assert events_of(acme, "mg-sec-1") == {"email_open": 1} and events_of(acme, "mg-sec-2") == {}


def test_webhook_url_cli_needs_a_valid_key_the_first_time(server):
    refused = cli(server.home, "keys", "webhook-url", "--tenant", "umbrella", "--provider", "sendgrid")
    assert refused.returncode == 2 and "--verification-key is needed" in refused.stderr
    bad = cli(
        server.home,
        "keys",
        "webhook-url",
        "--tenant",
        "umbrella",
        "--provider",
        "sendgrid",
        "--verification-key",
        "bm90IGEga2V5",
    )
    assert bad.returncode == 2 and "not a public key" in bad.stderr and "Traceback" not in bad.stderr


# ---- schedules and reports ----------------------------------------------------------------------------
def test_schedules_that_never_fire_fire_too_often_or_mail_too_many_are_refused(server):
    client = server.client(server.create_key("hooli"))
    report = post_json(client, "/v1/analytics/reports", REPORT).json()["data"]["id"]
    url = f"/v1/analytics/reports/{report}/schedules"
    ok = {"cron": "0 8 * * 1", "recipients": ["a@hooli.example"]}
    cases = [
        ({"cron": "0 0 31 2 *"}, "never fires"),
        ({"cron": "* * * * *"}, "more often than once an hour"),
        ({"cron": "*/30 * * * *"}, "more often than once an hour"),
        ({"recipients": [f"r{i}@hooli.example" for i in range(21)]}, "at most 20"),
    ]
    for change, issue in cases:
        response = post_json(client, url, ok | change)
        assert response.status_code == 422, response.text
        assert issue in json.dumps(response.json()["error"]["details"]), response.text
    assert post_json(client, url, ok | {"cron": "0 * * * *"}).status_code == 201  # hourly is the limit
    for _ in range(49):
        assert post_json(client, url, ok).status_code == 201
    over = post_json(client, url, ok)
    assert over.status_code == 422 and over.json()["error"]["details"][0]["field"] == "schedules"
    for name in ("Weekly\r\nBcc: all@example.com", "Weekly%0d%0aBcc: x@example.com", "Weekly\u2028x"):
        response = post_json(client, "/v1/analytics/reports", REPORT | {"name": name})
        assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == "name", name


def test_one_bad_schedule_never_stops_the_others_and_downtime_sends_once(tmp_path, monkeypatch):
    from leadron import metadata, report_store
    from leadron.publish import publish
    from leadron.report_schedules import ReportSchedule
    from leadron.reports import ReportDefinition
    from orchestration.defs.reports.delivery import report_schedules

    settings = use_home(monkeypatch, tmp_path / "home")
    for tenant in ("acme", "globex"):
        definition = ReportDefinition.model_validate({**REPORT, "id": f"r-{tenant}", "tenant_id": tenant})
        report_store.create_report(settings, definition)
        report_store.create_schedule(
            settings,
            tenant,
            definition.id,
            ReportSchedule(id=f"daily-{tenant}", cadence="daily", time="00:00", recipients=["a@b.example"]),
        )
    # A schedule stored before the rule existed (or by hand): its cron never fires.
    with metadata.engine(settings).begin() as con:
        con.execute(
            metadata.SCHEDULES.update()
            .where(metadata.SCHEDULES.c.tenant_id == "acme")
            .values(schedule=json.dumps({"id": "daily-acme", "cron": "0 0 31 2 *", "recipients": ["a@b.example"]}))
        )
    publish_marts_for_freshness(settings, publish)
    three_days_ago = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    cursor = json.dumps(
        {"r-acme/daily-acme": three_days_ago, "r-globex/daily-globex": three_days_ago, "r-gone/x": three_days_ago}
    )
    instance = dg.DagsterInstance.ephemeral()
    result = report_schedules.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
    # globex's schedule missed three midnights: one delivery, of the latest.
    assert [r.run_key.rsplit("/", 1)[0] for r in result.run_requests] == ["r-globex/daily-globex"]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert (
        datetime.fromisoformat(result.run_requests[0].run_config["ops"]["deliver_scheduled_report"]["config"]["due_at"])
        == today
    )
    state = json.loads(result.cursor)
    assert set(state["due"]) == {"r-acme/daily-acme", "r-globex/daily-globex"}  # the deleted schedule left the cursor
    assert "never fires" in state["failed"]["r-acme/daily-acme"]
    from leadron.report_delivery import deliveries

    assert [d["status"] for d in deliveries(settings, "acme", "r-acme")] == ["failed"]
    again = report_schedules.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=result.cursor))
    assert again.run_requests == []
    assert len(deliveries(settings, "acme", "r-acme")) == 1  # recorded once, not on every tick


def publish_marts_for_freshness(settings, publish) -> None:
    """A published copy made now (the schedules' data is fresh): a marts schema with one placeholder table."""
    import duckdb

    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "CREATE SCHEMA staging; CREATE SCHEMA marts; CREATE TABLE marts.placeholder (tenant_id VARCHAR, x INTEGER)"
        )
        con.execute("CREATE TABLE staging.stg_leadron__events AS SELECT now()::TIMESTAMP AS received_at")
        publish(con, settings.publish_dir)


# ---- hygiene --------------------------------------------------------------------------------------
def test_home_and_secrets_are_private(server, acme):
    post_json(acme, EVENTS, {"eventType": "email_sent", "messageId": "perm-1"})
    post_json(acme, "/v1/analytics/reports", REPORT)
    home = server.home
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for path in (
        home / "api" / "keys.sqlite",
        home / "api" / "secret",
        home / "landing" / "api" / "events.sqlite",
        home / "metadata.sqlite",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_failed_deliveries_read_generic_to_the_tenant(server):
    from leadron.report_delivery import record_failure

    client = server.client(server.create_key("massive"))
    report = post_json(client, "/v1/analytics/reports", REPORT).json()["data"]["id"]
    schedule = post_json(
        client, f"/v1/analytics/reports/{report}/schedules", {"cron": "0 8 * * 1", "recipients": ["a@massive.example"]}
    ).json()["data"]["id"]
    with pytest.MonkeyPatch.context() as mp:
        record_failure(
            use_home(mp, server.home),
            "massive",
            report,
            schedule,
            "SMTPServerDisconnected: smtp.internal.massive:25 closed the connection",
        )
    rows = client.get(f"/v1/analytics/reports/{report}/schedules/{schedule}/deliveries").json()["data"]
    assert [(r["status"], r["error"]) for r in rows] == [
        ("failed", "the delivery failed; the operator has the details")
    ]


def test_the_status_lookup_takes_any_number_of_batches(tmp_path, monkeypatch):
    from api_stub.ingest_log.records import Submission, encode_event
    from api_stub.ingest_log.writer import EventStore
    from api_stub.schemas import ApiEventIn

    settings = use_home(monkeypatch, tmp_path / "home")
    store = EventStore(settings)
    store.start()
    try:
        # SQLite's classic bound-variable limit (999, still the default of many builds): more batches than that.
        store._reader.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        now = datetime.now(UTC).replace(tzinfo=None)
        futures = [
            store.submit(
                Submission(
                    [
                        encode_event(
                            ApiEventIn.model_validate_json(
                                json.dumps({"eventType": "email_open", "eventId": f"e{i}", "messageId": "busy"})
                            ),
                            "acme-corp",
                            now,
                            "api",
                            0,
                        )
                    ]
                )
            )
            for i in range(1_500)
        ]
        for future in futures:
            future.result(timeout=60)
        assert len(store.events_for("acme-corp", "message_id", "busy")) == 1_500
    finally:
        store.close()
