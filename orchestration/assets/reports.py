"""Scheduled reports in Dagster: a sensor that finds due schedules, the job that delivers one, and an
e-mail to the data team when any run fails. No cron daemon of our own: the Dagster daemon ticks the sensor."""

import html
import json
import os
from datetime import UTC, datetime

import dagster as dg

from orchestration.mailer import SmtpSettings, build_message, send
from orchestration.report_delivery import current_publication, deliver, find_schedule
from orchestration.report_schedules import ReportSchedule, data_is_fresh, due_times
from orchestration.report_store import all_definitions
from orchestration.reports import ReportDefinition
from orchestration.settings import get_settings

DELIVER_JOB = "deliver_report"


class DeliveryConfig(dg.Config):
    report_id: str
    schedule_id: str
    due_at: str  # ISO 8601 with offset


@dg.op(description="Run the report on the published marts, render it and e-mail it (retried with backoff); "
                   "the delivery is recorded, and a failure fails the run.")
def deliver_scheduled_report(context: dg.OpExecutionContext, config: DeliveryConfig) -> dg.Output:
    settings = get_settings()
    definition, schedule = find_schedule(settings, config.report_id, config.schedule_id)
    record = deliver(settings, definition, schedule, datetime.fromisoformat(config.due_at))
    context.log.info(f"{record['status']}: {definition.id}/{schedule.id} due {config.due_at} to {record['recipients']}")
    return dg.Output(None, metadata={k: str(v) for k, v in record.items() if v is not None})


@dg.job(name=DELIVER_JOB, executor_def=dg.in_process_executor, description="Deliver one scheduled report.")
def deliver_report():
    deliver_scheduled_report()


def pending_deliveries(definitions: list[ReportDefinition], cursor: dict[str, str], now: datetime,
                       published_at: datetime | None) -> tuple[list[dict], dict[str, str]]:
    """Due deliveries since each schedule's cursor whose data is fresh, in order; and the new cursor.
    A schedule seen for the first time starts now (no back-filling of past due times)."""
    requests, cursor = [], dict(cursor)
    for definition in definitions:
        for raw in definition.schedules:
            schedule = ReportSchedule.model_validate(raw)
            key = f"{definition.id}/{schedule.id}"
            after = datetime.fromisoformat(cursor.get(key, now.isoformat()))
            for due in due_times(schedule, after, now):
                if not data_is_fresh(due, published_at):
                    break  # wait for the night's build; try again on the next tick
                requests.append({"report_id": definition.id, "schedule_id": schedule.id, "due_at": due.isoformat()})
                cursor[key] = due.isoformat()
            cursor.setdefault(key, now.isoformat())
    return requests, cursor


@dg.sensor(job=deliver_report, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Starts a delivery for every report schedule that is due and whose data is fresh.")
def report_schedules(context: dg.SensorEvaluationContext):
    settings = get_settings()
    publication = current_publication(settings)
    requests, cursor = pending_deliveries(all_definitions(settings),
                                          json.loads(context.cursor or "{}"), datetime.now(UTC),
                                          publication.published_at if publication else None)
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    for r in requests:
        yield dg.RunRequest(run_key=f"{r['report_id']}/{r['schedule_id']}/{r['due_at']}",
                            run_config={"ops": {"deliver_scheduled_report": {"config": r}}})


@dg.run_failure_sensor(name="email_data_team_on_failure", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="E-mails LEADRON_ALERT_EMAIL when a run fails (nothing when unset).")
def email_data_team_on_failure(context: dg.RunFailureSensorContext):
    address = os.environ.get("LEADRON_ALERT_EMAIL", "").strip()
    if not address:
        return dg.SkipReason("LEADRON_ALERT_EMAIL is not set")
    run = context.dagster_run
    smtp = SmtpSettings.from_env()
    error = context.failure_event.message or "no message"
    text = f"Run {run.run_id} of job {run.job_name} failed.\n\n{error}\n"
    send(build_message(smtp.sender, [address], f"Leadron pipeline run failed: {run.job_name}", f"<pre>{html.escape(text)}</pre>",
                       text), smtp)
    return None

