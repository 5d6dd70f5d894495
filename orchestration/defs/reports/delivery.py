"""Scheduled reports in Dagster: a sensor that finds due schedules, the job that delivers one, and an
e-mail to the data team when any run fails. No cron daemon of our own: the Dagster daemon ticks the sensor."""

import html
import json
import os
from datetime import UTC, datetime

import dagster as dg

from leadron.mailer import SmtpSettings, build_message, send
from leadron.report_delivery import current_publication, deliver, find_schedule, record_failure
from leadron.report_schedules import ReportSchedule, data_is_fresh, latest_due
from leadron.report_store import all_definitions
from leadron.reports import ReportDefinition
from leadron.settings import get_settings

DELIVER_JOB = "deliver_report"


class DeliveryConfig(dg.Config):
    report_id: str
    schedule_id: str
    due_at: str  # ISO 8601 with offset


@dg.op(
    description="Run the report on the published marts, render it and e-mail it (retried with backoff); "
    "the delivery is recorded, and a failure fails the run."
)
def deliver_scheduled_report(context: dg.OpExecutionContext, config: DeliveryConfig) -> dg.Output:
    settings = get_settings()
    definition, schedule = find_schedule(settings, config.report_id, config.schedule_id)
    record = deliver(settings, definition, schedule, datetime.fromisoformat(config.due_at))
    context.log.info(f"{record['status']}: {definition.id}/{schedule.id} due {config.due_at} to {record['recipients']}")
    return dg.Output(None, metadata={k: str(v) for k, v in record.items() if v is not None})


@dg.job(name=DELIVER_JOB, executor_def=dg.in_process_executor, description="Deliver one scheduled report.")
def deliver_report():
    deliver_scheduled_report()


def pending_deliveries(
    definitions: list[ReportDefinition], cursor: dict[str, str], now: datetime, published_at: datetime | None
) -> tuple[list[dict], dict[str, str], list[dict]]:
    """(deliveries due whose data is fresh, the new cursor, schedules that failed to evaluate).

    Per schedule: only its latest due time since its cursor (after downtime, one e-mail, not one per missed
    due time); a schedule seen for the first time starts now (no back-filling). Each schedule is evaluated
    on its own, so one that cannot be (bad cron, bad zone) is reported and never stops the others. The new
    cursor holds only the schedules that exist, so deleted ones leave it."""
    requests, failures, new_cursor = [], [], {}
    for definition in definitions:
        for raw in definition.schedules:
            schedule_id = str(raw.get("id")) if isinstance(raw, dict) else "?"
            key = f"{definition.id}/{schedule_id}"
            new_cursor[key] = cursor.get(key, now.isoformat())
            try:
                schedule = ReportSchedule.model_validate(raw)
                due = latest_due(schedule, datetime.fromisoformat(new_cursor[key]), now)
            except Exception as error:  # noqa: BLE001 - one tenant's schedule must not stop every tenant's
                failures.append(
                    {
                        "tenant_id": definition.tenant_id,
                        "report_id": definition.id,
                        "schedule_id": schedule_id,
                        "error": f"{error.__class__.__name__}: {error}",
                    }
                )
                continue
            if due is not None and data_is_fresh(due, published_at):  # else: wait for the night's build
                requests.append({"report_id": definition.id, "schedule_id": schedule.id, "due_at": due.isoformat()})
                new_cursor[key] = due.isoformat()
    return requests, new_cursor, failures


@dg.sensor(
    job=deliver_report,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a delivery for every report schedule that is due and whose data is fresh.",
)
def report_schedules(context: dg.SensorEvaluationContext):
    settings = get_settings()
    publication = current_publication(settings)
    state = json.loads(context.cursor or "{}")
    if "due" not in state:  # the cursor's first format: due times only
        state = {"due": state, "failed": {}}
    requests, due, failures = pending_deliveries(
        all_definitions(settings), state["due"], datetime.now(UTC), publication.published_at if publication else None
    )
    failed = {}
    for failure in failures:  # recorded once per schedule and error, not on every tick
        key = f"{failure['report_id']}/{failure['schedule_id']}"
        failed[key] = failure["error"]
        if state["failed"].get(key) != failure["error"]:
            context.log.error(
                f"schedule {key} of tenant {failure['tenant_id']} cannot be evaluated: {failure['error']}"
            )
            record_failure(settings, **failure)
    context.update_cursor(json.dumps({"due": due, "failed": failed}, sort_keys=True))
    for r in requests:
        yield dg.RunRequest(
            run_key=f"{r['report_id']}/{r['schedule_id']}/{r['due_at']}",
            run_config={"ops": {"deliver_scheduled_report": {"config": r}}},
        )


@dg.run_failure_sensor(
    name="email_data_team_on_failure",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="E-mails LEADRON_ALERT_EMAIL when a run fails (nothing when unset).",
)
def email_data_team_on_failure(context: dg.RunFailureSensorContext):
    address = os.environ.get("LEADRON_ALERT_EMAIL", "").strip()
    if not address:
        return dg.SkipReason("LEADRON_ALERT_EMAIL is not set")
    run = context.dagster_run
    smtp = SmtpSettings.from_env()
    error = context.failure_event.message or "no message"
    text = f"Run {run.run_id} of job {run.job_name} failed.\n\n{error}\n"
    send(
        build_message(
            smtp.sender,
            [address],
            f"Leadron pipeline run failed: {run.job_name}",
            f"<pre>{html.escape(text)}</pre>",
            text,
        ),
        smtp,
    )
    return None


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(jobs=[deliver_report], sensors=[report_schedules, email_data_team_on_failure])
