"""Scheduled report e-mails against a real SMTP server (aiosmtpd on 127.0.0.1), through Dagster too."""

from __future__ import annotations

import io
import json
import socket
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import duckdb
import openpyxl
import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfReader

from leadron.mailer import MailError, SmtpSettings, build_message
from leadron.publish import publish
from leadron.report_delivery import deliver, deliveries
from leadron.report_schedules import ReportSchedule, latest_due
from leadron.reports import ReportDefinition
from orchestration.defs.reports.delivery import deliver_report, pending_deliveries, report_schedules
from tests.conftest import Inbox, use_home

DUE = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A hand-made warehouse with an email mart (two tenants), published like any build's."""
    settings = use_home(monkeypatch, tmp_path / "home")
    settings.ensure_dirs()
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("CREATE SCHEMA marts; CREATE SCHEMA staging")
        con.execute("CREATE TABLE staging.stg_leadron__events AS SELECT TIMESTAMP '2026-03-10 06:00:00' AS received_at")
        con.execute(
            "CREATE TABLE marts.mart_email_performance_daily AS SELECT * FROM (VALUES "
            "('acme', DATE '2026-03-02', 'wf-a', 1, 'rep1', 120, 110, 10, 55, 12, 1200), "
            "('acme', DATE '2026-03-05', 'wf-b', 1, 'rep2', 80, 78, 2, 30, 3, 800), "
            "('acme', DATE '2026-03-09', 'wf-a', 2, 'rep1', 40, 40, 0, 22, 5, 400), "
            "('globex', DATE '2026-03-05', 'wf-x', 1, 'rep9', 999, 990, 9, 500, 99, 9999)) "
            "AS t(tenant_id, send_date, workflow_id, step_number, user_id, sent, delivered, bounced, "
            "unique_opens, replied, opens_total)"
        )
        for column in ("hard_bounced", "soft_bounced", "clicks_total", "unique_clicks", "positive_replied"):
            con.execute(f"ALTER TABLE marts.mart_email_performance_daily ADD COLUMN {column} BIGINT DEFAULT 0")
        publish(con, settings.publish_dir, now=datetime(2026, 3, 10, 6, 30, tzinfo=UTC))
    return settings


def weekly(**overrides) -> tuple[ReportDefinition, ReportSchedule]:
    schedule = ReportSchedule(
        id="monday",
        cadence="weekly",
        weekday="tue",
        time="08:00",
        timezone="UTC",
        recipients=["manager@acme.example", "ops@acme.example"],
        formats=["csv", "xlsx", "pdf"],
        skip_when_empty=True,
    )
    fields = {
        "id": "weekly-email",
        "name": "Weekly email performance",
        "tenant_id": "acme",
        "metrics": ["sent", "delivered", "replied", "reply_rate"],
        "dimensions": ["workflow"],
        "date_range": {"last_days": 9},
        "chart": {"type": "bar", "y": ["sent"]},
        "schedules": [schedule.model_dump()],
    }
    definition = ReportDefinition(**{**fields, **overrides})
    return definition, schedule


def test_the_email_holds_the_marts_numbers_and_parseable_attachments(home, smtp):
    inbox, settings_smtp = smtp
    definition, schedule = weekly()
    record = deliver(home, definition, schedule, DUE, smtp=settings_smtp)
    assert record["status"] == "sent" and record["rows"] == 2
    ((recipients, message),) = inbox.messages
    assert recipients == ["manager@acme.example", "ops@acme.example"]
    assert message["Subject"] == "Weekly email performance: 2026-03-01 to 2026-03-09"
    html = message.get_body(("html",)).get_content()
    # Expected from the mart, independently: acme, 2026-03-01 .. 2026-03-09, by workflow.
    with duckdb.connect(str(home.publish_dir / "marts.duckdb"), read_only=True) as con:
        expected = con.execute(
            "SELECT workflow_id, sum(sent), sum(delivered), sum(replied) FROM mart_email_performance_daily "
            "WHERE tenant_id = 'acme' AND send_date >= DATE '2026-03-01' AND send_date < DATE "
            "'2026-03-10' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert expected == [("wf-a", 160, 150, 17), ("wf-b", 80, 78, 3)]
    for workflow, sent, delivered, replied in expected:
        assert f">{workflow}<" in html and f">{sent:,}<" in html and f">{replied / delivered * 100:.1f}%<" in html
    assert "999" not in html  # another tenant's numbers never appear
    assert "Data fresh to 2026-03-10T06:00:00 UTC" in html and 'src="cid:chart"' in html
    parts = {p.get_filename(): p.get_content() for p in message.iter_attachments()}
    assert sorted(parts) == [
        "weekly-email-2026-03-10.csv",
        "weekly-email-2026-03-10.pdf",
        "weekly-email-2026-03-10.xlsx",
    ]
    csv_text = parts["weekly-email-2026-03-10.csv"]
    csv_text = csv_text.decode() if isinstance(csv_text, bytes) else csv_text
    lines = csv_text.splitlines()
    # Labels for people, then the catalogue names for machines, then the rows.
    assert lines[:2] == ["Sequence,Sent,Delivered,Replies,Reply rate", "workflow,sent,delivered,replied,reply_rate"]
    assert lines[2].startswith("wf-a,160,150,17,")
    sheet = openpyxl.load_workbook(io.BytesIO(parts["weekly-email-2026-03-10.xlsx"])).active
    header = next(sheet.iter_rows(min_row=1, max_row=1))
    assert [c.value for c in header] == ["Sequence", "Sent", "Delivered", "Replies", "Reply rate"]
    assert [c.comment.text for c in header] == [
        f"field: {n}" for n in ("workflow", "sent", "delivered", "replied", "reply_rate")
    ]
    data = next(sheet.iter_rows(min_row=2, max_row=2))
    assert [c.value for c in data][:4] == ["wf-a", 160, 150, 17] and data[4].number_format == "0.0%"
    pdf = parts["weekly-email-2026-03-10.pdf"]
    assert pdf.startswith(b"%PDF")
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "wf-a" in text and "160" in text and "Weekly email performance" in text
    assert any(p.get_content_type() == "image/png" for p in message.walk())  # the inline chart
    (stored,) = deliveries(home, "acme", "weekly-email")
    assert stored["status"] == "sent" and stored["recipients"] == "manager@acme.example, ops@acme.example"
    assert stored["data_freshness_watermark"] == "2026-03-10T06:00:00"


def test_header_injection_is_rejected_and_recorded(home, smtp):
    inbox, settings_smtp = smtp
    definition, schedule = weekly()
    evil = definition.model_copy(update={"name": "Weekly\r\nBcc: thief@evil.example"})
    with pytest.raises(MailError, match="^subject: contains a line break"):
        deliver(home, evil, schedule, DUE, smtp=settings_smtp)
    for bad in ("a@b.example\r\nBcc: thief@evil.example", "a@b.example%0d%0aBcc:x@y.z", "not an address"):
        with pytest.raises(ValueError, match="recipients"):
            ReportSchedule(id="s", cadence="daily", recipients=[bad])
    with pytest.raises(MailError, match="^subject"):
        build_message("a@b.example", ["c@d.example"], "hi=0D=0ABcc: x@y.z", "<p>x</p>", "x")
    assert inbox.messages == []
    assert [d["status"] for d in deliveries(home, "acme", "weekly-email")] == ["failed"]


def test_skip_when_empty(home, smtp):
    inbox, settings_smtp = smtp
    definition, schedule = weekly(date_range={"start": date(2025, 1, 1), "end": date(2025, 2, 1)})
    assert deliver(home, definition, schedule, DUE, smtp=settings_smtp)["status"] == "skipped"
    assert inbox.messages == []
    sends = schedule.model_copy(update={"skip_when_empty": False})
    assert deliver(home, definition, sends, DUE, smtp=settings_smtp)["status"] == "sent"
    assert "No data in this period." in inbox.messages[0][1].get_body(("html",)).get_content()


def test_a_refusing_server_is_retried_then_reported(home, smtp):
    inbox, settings_smtp = smtp
    definition, schedule = weekly()
    inbox.refuse = 2
    assert deliver(home, definition, schedule, DUE, smtp=settings_smtp, attempts=3, backoff_s=0.05)["status"] == "sent"
    assert inbox.attempts == 3 and len(inbox.messages) == 1
    inbox.refuse = 5
    with pytest.raises(Exception, match="451"):
        deliver(home, definition, schedule, DUE, smtp=settings_smtp, attempts=2, backoff_s=0.05)
    assert [d["status"] for d in deliveries(home, "acme", "weekly-email")] == ["sent", "failed"]


def test_a_schedule_in_another_timezone_fires_at_the_right_utc_instant():
    """08:00 in New York across the 2026 DST change (8 March): 13:00 UTC before, 12:00 UTC after."""
    definition = ReportDefinition(
        id="daily",
        name="Daily",
        tenant_id="acme",
        metrics=["sent"],
        date_range={"last_days": 1},
        schedules=[
            {
                "id": "ny",
                "cadence": "daily",
                "time": "08:00",
                "timezone": "America/New_York",
                "recipients": ["a@acme.example"],
            }
        ],
    )
    cursor = {"daily/ny": datetime(2026, 3, 7, 0, 0, tzinfo=UTC).isoformat()}
    now = datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    # Three due times passed since the cursor (downtime): only the latest is delivered.
    requests, new_cursor, failures = pending_deliveries([definition], cursor, now, published_at=now)
    assert [datetime.fromisoformat(r["due_at"]).astimezone(UTC) for r in requests] == [
        datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    ] and failures == []
    assert datetime.fromisoformat(new_cursor["daily/ny"]) == datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    schedule = ReportSchedule.model_validate(definition.schedules[0])
    assert latest_due(schedule, datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 3, 7, 14, 0, tzinfo=UTC)) == datetime(
        2026, 3, 7, 13, 0, tzinfo=UTC
    )  # before the change: 13:00 UTC
    assert latest_due(
        schedule, datetime(2026, 3, 7, 14, tzinfo=UTC), datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    ) == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # after: 12:00 UTC
    assert latest_due(schedule, datetime(2026, 3, 8, 12, tzinfo=UTC), datetime(2026, 3, 9, 11, 59, tzinfo=UTC)) is None
    # Published at 03:00 UTC on the 9th = 23:00 on the 8th in New York: the 9th's report waits for fresh data.
    stale, kept, _ = pending_deliveries([definition], cursor, now, published_at=datetime(2026, 3, 9, 3, 0, tzinfo=UTC))
    assert stale == [] and kept == cursor
    # Monthly and weekly cadences in their zone; cron strings too.
    monthly = ReportSchedule(
        id="m", cadence="monthly", day=1, time="07:30", timezone="Asia/Tokyo", recipients=["a@b.example"]
    )
    assert latest_due(monthly, datetime(2026, 3, 15, tzinfo=UTC), datetime(2026, 4, 15, tzinfo=UTC)).astimezone(
        UTC
    ) == datetime(2026, 3, 31, 22, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="give either cron or cadence"):
        ReportSchedule(id="x", recipients=["a@b.example"])


def test_the_sensor_and_the_job_deliver_through_dagster(home, smtp, monkeypatch):
    inbox, settings_smtp = smtp
    definition, schedule = weekly(date_range={"start": "2026-03-01", "end": "2026-03-09"})
    home.reports_dir.mkdir(parents=True, exist_ok=True)
    (home.reports_dir / "weekly-email.yml").write_text(json.dumps(definition.model_dump(mode="json")))  # JSON is YAML
    for key, value in {
        "LEADRON_SMTP_HOST": "127.0.0.1",
        "LEADRON_SMTP_PORT": str(settings_smtp.port),
        "LEADRON_SMTP_STARTTLS": "false",
        "LEADRON_SMTP_SENDER": "reports@leadron.test",
    }.items():
        monkeypatch.setenv(key, value)
    with duckdb.connect(str(home.warehouse_path)) as con:
        publish(con, home.publish_dir)  # published now: the latest due time's data is fresh
    instance = dg.DagsterInstance.ephemeral()
    # The cursor says the schedule was last handled three weeks ago; the sensor's clock is now: of the three
    # Tuesdays 08:00 since, only the latest is requested.
    now = datetime.now(UTC)
    latest = latest_due(schedule, now - timedelta(days=8), now)
    cursor = json.dumps({"weekly-email/monday": (latest - timedelta(days=21, minutes=1)).isoformat()})
    result = report_schedules.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
    assert [r.run_key for r in result.run_requests] == [f"weekly-email/monday/{latest.isoformat()}"]
    run = deliver_report.execute_in_process(run_config=result.run_requests[0].run_config, instance=instance)
    assert run.success
    assert len(inbox.messages) == 1 and inbox.messages[0][0] == ["manager@acme.example", "ops@acme.example"]


def _self_signed(folder):
    """A certificate for 127.0.0.1, signed by itself (it is its own CA for the client)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_starttls_and_login(home, tmp_path):
    """aiosmtpd requiring STARTTLS and login: the mailer upgrades, verifies the certificate, logs in, sends."""
    import ssl

    from aiosmtpd.smtp import AuthResult

    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((mechanism, auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.login == b"reports" and auth_data.password == b"s3cret")

    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        smtp = SmtpSettings(
            host="127.0.0.1",
            port=port,
            starttls=True,
            user="reports",
            password="s3cret",
            sender="reports@leadron.test",
            ca_file=str(cert),
        )
        definition, schedule = weekly()
        assert deliver(home, definition, schedule, DUE, smtp=smtp)["status"] == "sent"
        assert len(inbox.messages) == 1 and logins[0][1:] == (b"reports", b"s3cret")
        untrusted = SmtpSettings(**{**smtp.__dict__, "ca_file": None})
        with pytest.raises(ssl.SSLError):
            deliver(home, definition, schedule, DUE, smtp=untrusted, attempts=1)
    finally:
        controller.stop()
    assert len(inbox.messages) == 1


def test_a_failed_run_emails_the_data_team(smtp, monkeypatch):
    from orchestration.defs.reports.delivery import email_data_team_on_failure

    inbox, settings_smtp = smtp
    for key, value in {
        "LEADRON_SMTP_HOST": "127.0.0.1",
        "LEADRON_SMTP_PORT": str(settings_smtp.port),
        "LEADRON_SMTP_STARTTLS": "false",
        "LEADRON_ALERT_EMAIL": "data-team@leadron.test",
    }.items():
        monkeypatch.setenv(key, value)

    @dg.op
    def breaks():
        raise RuntimeError("the warehouse is on fire")

    @dg.job
    def nightly():
        breaks()

    instance = dg.DagsterInstance.ephemeral()
    result = nightly.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    (entry,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    failure = entry.dagster_event
    context = dg.build_run_status_sensor_context(
        sensor_name="email_data_team_on_failure",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=failure,
    ).for_run_failure()
    email_data_team_on_failure(context)
    ((recipients, message),) = inbox.messages
    assert recipients == ["data-team@leadron.test"]
    assert message["Subject"] == "Leadron pipeline run failed: nightly"
    assert result.run_id in message.get_body(("plain",)).get_content()
