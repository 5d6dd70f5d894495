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
import subprocess
import sys
import threading
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
from tests.webhook_signing import SendGridAccount, mailgun_signature

EVENTS = "/v1/analytics/events"
STATUS = "/v1/analytics/events/status"
REPORT = {
    "name": "Weekly email",
    "metrics": ["sent", "open_rate"],
    "dimensions": ["date_day"],
    "dateRange": {"lastDays": 7},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("security") / "home"
    srv = Server(home, {"LEADRON_SEAL_INTERVAL": "0.5", "LEADRON_TRACKING_DEDUP_SECONDS": "3600"})
    home.mkdir()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def secret(server):
    with pytest.MonkeyPatch.context() as mp:
        return use_home(mp, server.home).secret()


@pytest.fixture(scope="module")
def acme(server):
    return server.client(server.create_key("acme-corp"))


def server_log(srv: Server) -> str:
    return (srv.home.parent / f"server-{srv.port}.log").read_text(errors="replace")


def events_of(client, message_id: str) -> dict:
    return client.get(STATUS, params={"messageId": message_id}).json()["data"]["events"]


def cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LEADRON_HOME": str(home)}
    for var in ("LEADRON_WAREHOUSE_PATH", "LEADRON_LANDING_DIR", "DAGSTER_HOME"):
        env.pop(var, None)
    return subprocess.run(
        [sys.executable, "-m", "leadron_cli.main", *args], env=env, input=stdin, capture_output=True, text=True
    )


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


# ---- bounded work per request ----------------------------------------------------------------------------
def test_failed_authentications_are_throttled_per_client(tmp_path):
    srv = Server(tmp_path / "home", {"LEADRON_AUTH_FAILURE_RATE": "1"})  # one failure a second, to test in time
    (tmp_path / "home").mkdir()
    srv.start()
    try:
        good = srv.create_key("acme-corp")
        with httpx.Client(base_url=srv.url, timeout=10) as client:

            def status(key: str) -> httpx.Response:
                return client.get(STATUS, params={"messageId": "m"}, headers={"X-API-Key": key})

            codes = [status(f"ldr_live_sk_{uuid.uuid4().hex[:8]}{'x' * 32}").status_code for _ in range(10)]
            assert codes == [401] + [429] * 9
            limited = status(good)  # not even a valid key is looked at from a client that keeps failing
            assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
            assert limited.headers["X-RateLimit-Limit"] == "1" and limited.headers["X-RateLimit-Remaining"] == "0"
            time.sleep(1.2)
            assert status(good).status_code == 200
    finally:
        srv.stop()


def test_routes_without_a_key_are_limited_per_client(tmp_path):
    srv = Server(tmp_path / "home", {"LEADRON_ANONYMOUS_RATE_LIMIT": "5"})
    (tmp_path / "home").mkdir()
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            codes = [client.get(f"/v1/analytics/track/open/x{i}").status_code for i in range(30)]
            webhook = client.post("/v1/analytics/webhooks/sendgrid/x", content=b"[]")
        assert codes[:8] == [404] * 8 and 429 in codes  # bucket of 10 (twice the rate), then refused
        assert webhook.status_code == 429 and "Retry-After" in webhook.headers
    finally:
        srv.stop()


def test_the_negative_key_cache_is_bounded(tmp_path):
    from leadron.keystore import CACHE_ENTRIES, KeyStore

    store = KeyStore(tmp_path / "keys.sqlite")
    for i in range(CACHE_ENTRIES + 2_000):
        assert store.authenticate(f"ldr_live_sk_{i:08d}{'y' * 32}") is None
    assert len(store._cache) == CACHE_ENTRIES


def test_request_cost_is_weighted_and_holds_across_workers(tmp_path):
    srv = Server(tmp_path / "home", {"LEADRON_RATE_LIMIT": "1", "LEADRON_RATE_BURST": "100"})
    (tmp_path / "home").mkdir()
    srv.start()
    try:
        client = srv.client(srv.create_key("acme-corp"))
        batch = {"events": [{"eventType": "email_sent", "messageId": f"cost-{i}"} for i in range(60)]}
        first = post_json(client, f"{EVENTS}/batch", batch)
        assert first.status_code == 201 and int(first.headers["X-RateLimit-Remaining"]) <= 40
        second = post_json(client, f"{EVENTS}/batch", batch)
        assert second.status_code == 429 and second.json()["error"]["code"] == "RATE_LIMITED"
    finally:
        srv.stop()
    home = tmp_path / "home2"
    home.mkdir()
    two = Server(home, {"LEADRON_RATE_LIMIT": "1", "LEADRON_RATE_BURST": "20"}, workers=2).start()
    try:
        key = two.create_key("acme-corp")
        accepted = 0
        started = time.monotonic()
        for i in range(60):  # new connections, spread by the kernel over both workers
            with httpx.Client(base_url=two.url, headers={"X-API-Key": key}, timeout=10) as client:
                accepted += (
                    post_json(client, EVENTS, {"eventType": "email_sent", "messageId": f"w-{i}"}).status_code == 201
                )
        elapsed = time.monotonic() - started
        # 20 in all (10 per worker) plus the refill of 1/s across both; before, each worker allowed 20 (about 40).
        assert elapsed < 10 and 15 <= accepted <= 21 + elapsed, (accepted, elapsed)
    finally:
        two.stop()


def test_an_oversize_body_gets_a_413_the_client_can_read(server, acme):
    body = b'{"eventType":"email_sent","properties":{"x":"' + b"a" * 6_000_000 + b'"}}'
    key = acme.headers["X-API-Key"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            f"POST {EVENTS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: {key}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert json.loads(payload)["error"]["details"][0]["field"] == "body"
    # Chunked, with no length announced: counted as read, and still answered.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            f"POST {EVENTS}/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: {key}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        )
        for _ in range(6):
            piece = b"a" * 1_000_000
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


# ---- reads on the published copy -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def published_home(generated_build, tmp_path_factory):
    import shutil

    settings, _ = generated_build
    root = tmp_path_factory.mktemp("security-read")
    shutil.copytree(settings.home, root / "template", symlinks=True)
    return root


def _read_server(published_home: Path, name: str, env: dict[str, str]) -> Server:
    import shutil

    home = published_home / name
    shutil.copytree(published_home / "template", home, symlinks=True)
    return Server(home, {"LEADRON_RATE_LIMIT": "100000", "LEADRON_RATE_BURST": "100000", **env}).start()


FUNNEL = {
    "steps": [
        {"eventType": "email_sent"},
        {"eventType": "email_open"},
        {"eventType": "link_click"},
        {"eventType": "email_reply"},
    ],
    "windowSeconds": 7 * 86400,
    "from": "2026-01-01",
    "to": "2026-03-31",
}


def test_a_read_over_its_timeout_is_a_503_with_retry_after(published_home):
    srv = _read_server(published_home, "timeout", {"LEADRON_READ_TIMEOUT": "0.001"})
    try:
        client = srv.client(srv.create_key("acme-corp"))
        started = time.monotonic()
        response = post_json(client, "/v1/analytics/dashboard/funnel", FUNNEL)
        assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1, response.text
        assert "longer than 0.001 s" in response.json()["message"] and time.monotonic() - started < 10
    finally:
        srv.stop()
    assert "Traceback" not in server_log(srv)


def test_heavy_reads_run_on_a_bounded_pool(published_home):
    # One heavy read at a time and none waiting: a second concurrent funnel is refused, not queued forever.
    srv = _read_server(published_home, "pool", {"LEADRON_HEAVY_READ_POOL": "1", "LEADRON_READ_QUEUE_PER_THREAD": "0"})
    try:
        key = srv.create_key("acme-corp")
        codes: list[int] = []
        start = threading.Barrier(30)

        def funnel() -> None:
            with httpx.Client(base_url=srv.url, headers={"X-API-Key": key}, timeout=60) as client:
                client.get("/health")  # connected before the barrier: the funnels then arrive together
                start.wait()
                codes.append(post_json(client, "/v1/analytics/dashboard/funnel", FUNNEL).status_code)

        threads = [threading.Thread(target=funnel) for _ in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(codes) == {200, 503} and codes.count(200) >= 1, codes
        with httpx.Client(base_url=srv.url, headers={"X-API-Key": key}, timeout=60) as client:
            assert client.get("/v1/analytics/dashboard/kpis").status_code == 200  # plain reads were never blocked
    finally:
        srv.stop()


def test_published_reads_run_under_the_memory_limit(generated_build, monkeypatch):
    from api_stub.published import PublishedReader

    settings, _ = generated_build
    monkeypatch.setenv("LEADRON_READ_MEMORY_LIMIT", "512MB")
    reader = PublishedReader(get_settings())
    try:
        (limit,), _ = reader.run(lambda cur: cur.execute("SELECT current_setting('memory_limit')").fetchone())
        assert limit in ("488.2 MiB", "512.0 MB"), limit
    finally:
        reader.close()


def test_the_export_queue_is_bounded_per_tenant_and_failures_read_generic(published_home):
    srv = _read_server(published_home, "exports", {"LEADRON_EXPORT_QUEUE_PER_TENANT": "1"})
    try:
        tenants = _tenants(srv.home)
        tenant = tenants[0]
        client = srv.client(srv.create_key(tenant))
        first = post_json(client, "/v1/analytics/exports", {"dataset": "raw_events", "format": "xlsx"})
        assert first.status_code == 202, first.text
        second = post_json(client, "/v1/analytics/exports", {"dataset": "fct_events", "format": "csv"})
        assert second.status_code == 429 and second.json()["error"]["code"] == "EXPORT_QUEUE_FULL"
        other = srv.client(srv.create_key(tenants[1]))
        assert post_json(other, "/v1/analytics/exports", {"dataset": "fct_events"}).status_code == 202
        export_id = first.json()["data"]["id"]
        deadline = time.monotonic() + 120
        while client.get(f"/v1/analytics/exports/{export_id}").json()["data"]["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert post_json(client, "/v1/analytics/exports", {"dataset": "fct_events"}).status_code == 202
        exported = next((srv.home / "exports" / tenant).glob(f"{export_id}.*"))
        assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    finally:
        srv.stop()
    # Upload to an object store that is not there: the tenant reads a generic line, the operator the details.
    broken = _read_server(
        published_home,
        "exports-broken",
        {
            "LEADRON_S3_BUCKET": "b",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_DEFAULT_REGION": "us-east-1",
            "LEADRON_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        },
    )
    try:
        client = broken.client(broken.create_key(tenants[0]))
        export_id = post_json(client, "/v1/analytics/exports", {"dataset": "mart_activity_daily"}).json()["data"]["id"]
        deadline = time.monotonic() + 120
        while (data := client.get(f"/v1/analytics/exports/{export_id}").json()["data"])["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert data["status"] == "failed" and data["error"] == "the export failed; the operator has the details"
        assert "127.0.0.1:9" in server_log(broken)
    finally:
        broken.stop()


def _tenants(home: Path) -> list[str]:
    import duckdb

    with duckdb.connect(str(home / "published" / "marts.duckdb"), read_only=True) as con:
        return [
            t
            for (t,) in con.execute(
                "SELECT tenant_id FROM marts.fct_events GROUP BY 1 ORDER BY count(*) DESC"
            ).fetchall()
        ]


def test_the_model_card_shows_no_figures_pooled_across_tenants(server, acme):
    models = server.home / "models"
    (models / "v1").mkdir(parents=True)
    card = {
        "model_version": "v1",
        "trained_at": "2026-11-30T03:00:00+00:00",
        "algorithm": "LightGBM",
        "label": "converted_90d",
        "features": ["days_since_last_reply"],
        "hyperparameters": {"num_leaves": 7},
        "training_window": {
            "first_snapshot": "2026-01-05",
            "last_labelled_snapshot": "2026-08-31",
            "held_back_from": "2026-07-01",
        },
        "rows": 81234,
        "positive_rate": 0.0712,
        "split": {"train_rows": 65000, "test_rows": 16234},
        "evaluation": {"model": {"roc_auc": 0.947, "brier": 0.051}, "baseline": {"roc_auc": 0.802}},
    }
    (models / "v1" / "model_card.json").write_text(json.dumps(card))
    (models / "production.json").write_text(
        json.dumps(
            {
                "version": "v1",
                "promoted_at": "2026-11-30T03:05:00+00:00",
                "reason": "ROC-AUC 0.947 beats the baseline's 0.802",
            }
        )
    )
    data = acme.get("/v1/analytics/predictive/model").json()["data"]
    assert data["modelVersion"] == "v1" and data["features"] == ["days_since_last_reply"]
    text = json.dumps(data)
    for pooled in ("0.947", "0.802", "81234", "0.0712", "65000", "16234", "rocAuc", "evaluation", "positiveRate"):
        assert pooled not in text, pooled


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
