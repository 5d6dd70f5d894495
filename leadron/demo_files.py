"""Writes a generated demo dataset (leadron.demo_data) in the documented input format."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd

from leadron.contract import EVENT_TYPES


def write_dataset(
    out_dir, frame, messages, leads, lookups, team_rows, user_rows, wf_rows, step_rows, progress
) -> list[Path]:
    """The simulated arrays as the documented input files: events-<day>.jsonl(.gz) by arrival day and the
    dimension CSVs, formatted and written by DuckDB (one thread: a seed gives the same bytes)."""
    con = duckdb.connect()
    con.execute("SET threads TO 1")  # one thread keeps line order, so a seed gives the same bytes
    con.execute("SET enable_progress_bar = false")
    for name, df in lookups.items():
        con.register(name, df)
    con.register("ev", frame)
    con.register("msgs", messages)
    con.register("leads_df", leads)
    iso = "'%Y-%m-%dT%H:%M:%S.%gZ'"
    sql_event_types = "[" + ", ".join(f"'{t}'" for t in EVENT_TYPES) + "]"
    for stale in out_dir.glob("events-*.jsonl*"):
        stale.unlink()
    staging = out_dir / ".events_by_day"
    shutil.rmtree(staging, ignore_errors=True)
    # One JSON object per event, only the fields that event type carries (so the files read like the API's).
    con.execute(f"""
        COPY (
          SELECT
            strftime(to_timestamp(ev.arrival_ts)::TIMESTAMP, '%Y-%m-%d') AS arrival_day,
            chr(123) || array_to_string(list_filter([
              '"tenantId":"' || t.tenant_id || '"',
              '"eventId":"evt_' || lpad(to_hex(ev.eid), 9, '0') || '"',
              '"eventType":"' || {sql_event_types}[ev.etype + 1] || '"',
              '"timestamp":"' || strftime(to_timestamp(ev.ts)::TIMESTAMP, {iso}) || '"',
              CASE WHEN ev.lead >= 0 THEN '"leadId":"ld_' || lpad(to_hex(ev.lead), 7, '0') || '"' END,
              CASE WHEN ev.msg >= 0 AND NOT (ev.etype = 3 AND ev.reply_ids > 0)
                  THEN '"messageId":"msg_' || lpad(to_hex(ev.msg), 8, '0') || '"' END,
              CASE WHEN ev.exe >= 0 AND NOT (ev.etype = 3 AND ev.reply_ids = 2)
                  THEN '"workflowExecutionId":"wx_' || lpad(to_hex(ev.exe), 7, '0') || '"' END,
              CASE WHEN ev.user >= 0 THEN '"userId":"usr_' || lpad(ev.user::VARCHAR, 5, '0') || '"' END,
              CASE WHEN ev.wf >= 0 THEN '"workflowId":"wf_' || lpad(ev.wf::VARCHAR, 4, '0') || '"' END,
              CASE WHEN ev.step >= 0 THEN '"stepNumber":' || ev.step END,
              CASE WHEN ev.page >= 0 AND ev.etype IN (2, 5, 6)
                  THEN '"url":"https://www.' || t.tenant_id || '.example' || p.path || '"' END,
              CASE WHEN ev.form >= 0
                  THEN '"formId":"'
                       || ['demo_request','contact_sales','newsletter','webinar_signup'][ev.form + 1] || '"' END,
              CASE WHEN ev.bounce >= 0 THEN '"bounceType":"' || ['hard','soft'][ev.bounce + 1] || '"' END,
              CASE WHEN ev.ua >= 0 THEN '"userAgent":' || to_json(CASE WHEN ev.scanner THEN s.ua ELSE h.ua END) END,
              CASE WHEN ev.isbot >= 0 THEN '"isBot":' || CASE WHEN ev.isbot = 1 THEN 'true' ELSE 'false' END END,
              CASE WHEN ev.sentiment >= 0
                  THEN '"sentiment":"' || ['positive','neutral','negative'][ev.sentiment + 1] || '"' END
            ], lambda x: x IS NOT NULL), ',') || chr(125) AS line
          FROM ev
          JOIN tenants t ON t.t = ev.tenant
          LEFT JOIN pages p ON p.i = ev.page
          LEFT JOIN human_ua h ON h.i = ev.ua
          LEFT JOIN scanner_ua s ON s.i = ev.ua
          ORDER BY ev.arrival_ts, ev.eid
        ) TO '{staging}' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01', PARTITION_BY (arrival_day))
    """)
    files = []
    for day_dir in sorted(staging.glob("arrival_day=*")):
        target = out_dir / f"events-{day_dir.name.split('=')[1]}.jsonl"
        with target.open("wb") as fh:
            for part in sorted(day_dir.glob("*.csv")):
                fh.write(part.read_bytes())
        files.append(target)
    shutil.rmtree(staging, ignore_errors=True)
    progress(f"wrote {len(files)} events-*.jsonl files")

    def csv(name: str, sql: str) -> None:
        con.execute(f"COPY ({sql}) TO '{out_dir / name}' (FORMAT csv, HEADER true)")
        files.append(out_dir / name)

    con.register("teams_df", pd.DataFrame(team_rows, columns=["tenant_id", "team_id", "name"]))
    con.register("users_df", pd.DataFrame(user_rows, columns=["tenant_id", "user_id", "name", "email", "team_id"]))
    con.register("wf_df", pd.DataFrame(wf_rows, columns=["tenant_id", "workflow_id", "name"]))
    con.register(
        "steps_df",
        pd.DataFrame(step_rows, columns=["tenant_id", "workflow_id", "step_number", "channel", "delay_days"]),
    )
    csv("tenants.csv", "SELECT tenant_id, name, timezone FROM tenants ORDER BY t")
    csv("teams.csv", "SELECT * FROM teams_df")
    csv("users.csv", "SELECT * FROM users_df")
    csv("workflows.csv", "SELECT * FROM wf_df")
    csv("workflow_steps.csv", "SELECT * FROM steps_df")
    csv(
        "leads.csv",
        f"""
        SELECT t.tenant_id, 'ld_' || lpad(to_hex(l.lead), 7, '0') AS lead_id,
               'lead' || l.lead || '@' || 'company' || (l.lead % 997) || '.example' AS email,
               'Company ' || (l.lead % 997) AS company, l.source,
               'usr_' || lpad(l.owner::VARCHAR, 5, '0') AS owner_user_id,
               strftime(to_timestamp(l.created_ts)::TIMESTAMP, {iso}) AS created_at, l.status,
               CASE WHEN l.converted_ts IS NOT NULL
                   THEN strftime(to_timestamp(l.converted_ts)::TIMESTAMP, {iso}) END AS converted_at
        FROM leads_df l JOIN tenants t ON t.t = l.tenant ORDER BY l.lead""",
    )
    csv(
        "messages.csv",
        f"""
        SELECT t.tenant_id, 'msg_' || lpad(to_hex(m.msg), 8, '0') AS message_id,
               'ld_' || lpad(to_hex(m.lead), 7, '0') AS lead_id, 'usr_' || lpad(m.user::VARCHAR, 5, '0') AS user_id,
               'wf_' || lpad(m.wf::VARCHAR, 4, '0') AS workflow_id,
               'wx_' || lpad(to_hex(m.exe), 7, '0') AS workflow_execution_id,
               m.step AS step_number, strftime(to_timestamp(m.sent_ts)::TIMESTAMP, {iso}) AS sent_at,
               ['Quick question','Following up','Worth a chat?',
                'Last note','Case study','One more idea'][m.step] AS subject
        FROM msgs m JOIN tenants t ON t.t = m.tenant ORDER BY m.msg""",
    )
    progress("wrote dimension files: tenants, teams, users, leads, workflows, workflow_steps, messages")
    return files
