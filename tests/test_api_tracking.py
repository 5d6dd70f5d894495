"""Open pixel, click redirect and provider webhooks against a real server, with real payload shapes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from leadron import tracking
from tests.api_server import Server, post_json
from tests.conftest import use_home
from tests.webhook_signing import SendGridAccount, mailgun_signature

STATUS = "/v1/analytics/events/status"
MAILGUN_KEY = "mg-test-signing-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("tracking") / "home"
    home.mkdir()
    srv = Server(home, {"LEADRON_SEAL_INTERVAL": "0.5"}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def sendgrid(server):
    account = SendGridAccount()
    register(server, "acme-corp", "sendgrid", account.verification_key)
    return account


@pytest.fixture(scope="module")
def mailgun(server):
    register(server, "acme-corp", "mailgun", MAILGUN_KEY)
    return MAILGUN_KEY


def register(server, tenant: str, provider: str, key: str) -> str:
    """`leadron keys webhook-url` with the provider's key on stdin: the URL it prints."""
    env = {**os.environ, "LEADRON_HOME": str(server.home)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "leadron_cli.main",
            "keys",
            "webhook-url",
            "--tenant",
            tenant,
            "--provider",
            provider,
            "--base-url",
            server.url,
            "--verification-key",
            "-",
        ],
        input=key + "\n",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def secret(server):
    with pytest.MonkeyPatch.context() as mp:
        return use_home(mp, server.home).secret()


@pytest.fixture(scope="module")
def acme(server):
    return server.client(server.create_key("acme-corp"))


def status(client, message_id):
    return client.get(STATUS, params={"messageId": message_id}).json()["data"]


def test_open_pixel_lands_an_open_and_returns_a_gif(server, secret, acme):
    token = tracking.open_token(secret, "acme-corp", "L1", "px-1", "x1")
    response = server.client().get(f"/v1/analytics/track/open/{token}", headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    assert response.content.startswith(b"GIF89a") and "no-store" in response.headers["cache-control"]
    data = status(acme, "px-1")
    assert data["opened"] is True and data["events"] == {"email_open": 1}


def test_click_redirect_goes_only_to_the_signed_url(server, secret, acme):
    token = tracking.click_token(secret, "acme-corp", "L1", "px-2", "https://acme.example/pricing?a=1")
    response = server.client().get(f"/v1/analytics/track/click/{token}", follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"] == "https://acme.example/pricing?a=1"
    assert status(acme, "px-2")["clicked"] is True
    # Tampering with the payload (another URL) breaks the signature: no redirect, nothing landed.
    body, mac = token.split(".")
    forged_payload = tracking._b64(b'{"l":"L1","m":"px-2","t":"acme-corp","u":"https://evil.example/","x":null}')
    forged = server.client().get(f"/v1/analytics/track/click/{forged_payload}.{mac}", follow_redirects=False)
    assert forged.status_code == 404 and "location" not in forged.headers
    # A pixel token is not a click token.
    pixel = tracking.open_token(secret, "acme-corp", "L1", "px-2")
    assert server.client().get(f"/v1/analytics/track/click/{pixel}", follow_redirects=False).status_code == 404
    assert server.client().get("/v1/analytics/track/open/garbage").status_code == 404
    assert status(acme, "px-2")["events"] == {"link_click": 1}


def sendgrid_payload(now: int) -> list[dict]:
    """The shape of SendGrid's Event Webhook (docs example), with the platform's custom_args."""
    common = {
        "email": "lead@example.com",
        "timestamp": now,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "category": "cat facts",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "messageId": "sg-m1",
        "leadId": "L7",
        "workflowExecutionId": "x7",
    }
    return [
        common | {"event": "processed", "sg_event_id": "rbtnWrG1DVDGGGFHFyun0A=="},
        common | {"event": "delivered", "sg_event_id": "rWVYmVk90MjZJ9iohOBa3w==", "response": "250 OK"},
        common
        | {
            "event": "open",
            "sg_event_id": "FOTFFO0ecsBE-zxFXfs6WA==",
            "sg_machine_open": False,
            "useragent": "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP)",
            "ip": "255.255.255.255",
        },
        common
        | {
            "event": "open",
            "sg_event_id": "MachineOpen000000000A==",
            "sg_machine_open": True,
            "useragent": "Mozilla/5.0",
            "ip": "17.58.0.1",
        },
        common
        | {
            "event": "click",
            "sg_event_id": "kCAi1KttyQdEKHhdC-nuEA==",
            "useragent": "Mozilla/4.0",
            "ip": "255.255.255.255",
            "url": "http://www.sendgrid.com/",
        },
        common
        | {
            "event": "bounce",
            "sg_event_id": "bounce-hard-000000000A==",
            "reason": "500 unknown recipient",
            "status": "5.0.0",
            "type": "bounce",
            "messageId": "sg-m2",
        },
        common
        | {
            "event": "bounce",
            "sg_event_id": "bounce-soft-000000000A==",
            "reason": "blocked",
            "status": "4.0.0",
            "type": "blocked",
            "messageId": "sg-m3",
        },
        {k: v for k, v in common.items() if k != "messageId"} | {"event": "open", "sg_event_id": "no-custom-args"},
    ]


def test_sendgrid_webhook_maps_events(server, secret, acme, sendgrid):
    url = f"/v1/analytics/webhooks/sendgrid/{tracking.webhook_token(secret, 'acme-corp', 'sendgrid')}"
    now = int(time.time()) - 60
    response = sendgrid.post(server.client(), url, sendgrid_payload(now))
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["accepted"] == 5 and data["rejected"] == []
    assert [s["index"] for s in data["skipped"]] == [0, 1, 7]
    m1 = status(acme, "sg-m1")
    assert m1["events"] == {"email_open": 2, "link_click": 1} and m1["opened"] and m1["clicked"]
    when = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
    assert m1["firstOpenedAt"] == when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert status(acme, "sg-m2")["bounced"] and status(acme, "sg-m3")["bounced"]
    # SendGrid retries: the same sg_event_ids land nothing new.
    again = sendgrid.post(server.client(), url, sendgrid_payload(now)).json()["data"]
    assert again["accepted"] == 0 and again["duplicates"] == 5
    # A token for another provider or a tampered one is refused.
    wrong = f"/v1/analytics/webhooks/sendgrid/{tracking.webhook_token(secret, 'acme-corp', 'mailgun')}"
    assert sendgrid.post(server.client(), wrong, sendgrid_payload(now)).status_code == 401


def test_sendgrid_machine_open_and_bounce_types_reach_staging_fields(server, secret):
    from leadron.webhooks import sendgrid_events

    mapped = [b for b, _ in sendgrid_events(sendgrid_payload(1_700_000_000)) if b]
    assert [(b["eventType"], b.get("isBot"), b.get("bounceType")) for b in mapped] == [
        ("email_open", False, None),
        ("email_open", True, None),
        ("link_click", None, None),
        ("email_bounce", None, "hard"),
        ("email_bounce", None, "soft"),
    ]
    expected_id = "sg_" + hashlib.sha256(b"FOTFFO0ecsBE-zxFXfs6WA==").hexdigest()[:32]
    assert mapped[0]["eventId"] == expected_id and mapped[0]["timestamp"] == "2023-11-14T22:13:20.000Z"


def mailgun_payload(event: str, ts: float, **extra) -> dict:
    """The shape of Mailgun's webhook (docs example) with a valid signature."""
    return {
        "signature": mailgun_signature(MAILGUN_KEY, ts),
        "event-data": {
            "tags": ["my_tag_1"],
            "timestamp": ts,
            "id": f"CPgfbmQMTCKtHW6uIWtuVe-{event}",
            "campaigns": [],
            "user-variables": {"messageId": "mg-m1", "leadId": "L8"},
            "log-level": "info",
            "recipient": "alice@example.com",
            "event": event,
            "message": {
                "headers": {
                    "to": "Alice <alice@example.com>",
                    "message-id": "20130503182626.18666.16540@x.mailgun.org",
                    "from": "Bob <bob@x.mailgun.org>",
                    "subject": "Test",
                },
                "attachments": [],
                "size": 111,
            },
            "envelope": {"transport": "smtp", "sender": "bob@x.mailgun.org", "targets": "alice@example.com"},
            "ip": "50.56.129.169",
            "client-info": {
                "client-os": "Linux",
                "device-type": "desktop",
                "client-name": "Chrome",
                "client-type": "browser",
                "user-agent": "Mozilla/5.0 (X11; Linux x86_64)",
            },
            "geolocation": {"country": "US", "region": "CA", "city": "San Francisco"},
            **extra,
        },
    }


def test_mailgun_webhook_verifies_signature_and_maps_events(server, secret, acme, mailgun):
    url = f"/v1/analytics/webhooks/mailgun/{tracking.webhook_token(secret, 'acme-corp', 'mailgun')}"
    ts = time.time() - 30
    opened = post_json(server.client(), url, mailgun_payload("opened", ts))
    assert opened.status_code == 200 and opened.json()["data"]["accepted"] == 1
    clicked = post_json(server.client(), url, mailgun_payload("clicked", ts + 5, url="https://acme.example/demo"))
    assert clicked.json()["data"]["accepted"] == 1
    failed = post_json(server.client(), url, mailgun_payload("failed", ts + 6, severity="temporary", reason="generic"))
    assert failed.json()["data"]["accepted"] == 1
    delivered = post_json(server.client(), url, mailgun_payload("delivered", ts + 1)).json()["data"]
    assert delivered["accepted"] == 0 and "no Leadron event type" in delivered["skipped"][0]["reason"]
    data = status(acme, "mg-m1")
    assert data["opened"] and data["clicked"] and data["bounced"]
    forged = mailgun_payload("opened", ts)
    forged["signature"]["signature"] = "0" * 64
    assert post_json(server.client(), url, forged).status_code == 401


def test_webhook_url_cli_prints_a_working_url(server):
    account = SendGridAccount()
    out = register(server, "globex", "sendgrid", account.verification_key)
    assert out.startswith(f"{server.url}/v1/analytics/webhooks/sendgrid/")
    import httpx

    with httpx.Client(timeout=10) as client:
        response = account.post(client, out, [])
        assert response.status_code == 200 and response.json()["data"]["accepted"] == 0
        # The key is the tenant's own: another account's signature does not verify.
        assert SendGridAccount().post(client, out, []).status_code == 401
