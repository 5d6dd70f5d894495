"""`leadron demo`'s report e-mails: two report definitions for the largest tenant, delivered through the
deliver_report job to a local SMTP server (aiosmtpd) started for the demo; the received messages are
written to $LEADRON_HOME/demo-mail/ so a newcomer can open the e-mail a manager would get."""

from __future__ import annotations

import email
import socket
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import dagster as dg
import yaml

from leadron.settings import Settings, exported


def free_port() -> int:
    """A port free on 127.0.0.1 now, for the demo's local servers (and the tests')."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def demo_definitions(tenant_id: str) -> dict[str, dict]:
    recipients = [f"sales-manager@{tenant_id}.example"]
    return {
        "daily-email-kpis": {
            "id": "daily-email-kpis",
            "name": "Daily email KPIs",
            "tenant_id": tenant_id,
            "metrics": ["sent", "delivered", "open_rate", "click_rate", "reply_rate", "bounce_rate"],
            "dimensions": ["date_day"],
            "date_range": {"last_days": 7},
            "timezone": "Europe/Berlin",
            "chart": {"type": "line", "y": ["open_rate", "reply_rate"]},
            "schedules": [
                {
                    "id": "every-morning",
                    "cadence": "daily",
                    "time": "08:00",
                    "timezone": "Europe/Berlin",
                    "recipients": recipients,
                    "formats": ["csv", "pdf"],
                    "skip_when_empty": True,
                }
            ],
        },
        "weekly-sequences": {
            "id": "weekly-sequences",
            "name": "Weekly performance by sequence",
            "tenant_id": tenant_id,
            "metrics": ["sent", "delivered", "unique_opens", "replied", "reply_rate"],
            "dimensions": ["workflow"],
            "sort": [{"field": "sent", "descending": True}],
            "date_range": {"last_days": 7},
            "chart": {"type": "bar", "y": ["sent", "replied"]},
            "schedules": [
                {
                    "id": "monday-morning",
                    "cadence": "weekly",
                    "weekday": "mon",
                    "time": "08:00",
                    "timezone": "Europe/Berlin",
                    "recipients": recipients,
                    "formats": ["xlsx", "pdf"],
                }
            ],
        },
    }


class _Keep:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope.content)
        return "250 OK"


def send_demo_reports(settings: Settings, tenant_id: str, instance: dg.DagsterInstance) -> list[Path]:
    from aiosmtpd.controller import Controller

    from orchestration.defs.reports.delivery import deliver_report

    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    definitions = demo_definitions(tenant_id)
    for report_id, definition in definitions.items():
        path = settings.reports_dir / f"{report_id}.yml"
        if not path.exists():
            path.write_text(yaml.safe_dump(definition, sort_keys=False))
    port = free_port()
    keep = _Keep()
    server = Controller(keep, hostname="127.0.0.1", port=port)
    server.start()
    due = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()
    try:
        with exported(
            {
                "LEADRON_SMTP_HOST": "127.0.0.1",
                "LEADRON_SMTP_PORT": str(port),
                "LEADRON_SMTP_STARTTLS": "false",
                "LEADRON_SMTP_USER": "",
                "LEADRON_SMTP_PASSWORD": "",
            }
        ):
            for report_id, definition in definitions.items():
                schedule_id = definition["schedules"][0]["id"]
                config = {"report_id": report_id, "schedule_id": schedule_id, "due_at": due}
                result = deliver_report.execute_in_process(
                    run_config={"ops": {"deliver_scheduled_report": {"config": config}}},
                    instance=instance,
                    raise_on_error=False,
                )
                if not result.success:
                    raise RuntimeError(f"demo report {report_id} was not delivered (run {result.run_id})")
    finally:
        server.stop()
    folder = settings.home / "demo-mail"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for data in keep.messages:
        message = email.message_from_bytes(data, policy=policy.default)
        name = "".join(c if c.isalnum() else "-" for c in str(message["Subject"]).split(":")[0].lower()).strip("-")
        path = folder / f"{name}.eml"
        path.write_bytes(data)
        paths.append(path)
    return paths
