"""METRICS.md's email performance computed in plain Python from an input folder.

Independent of the SQL: reads the same JSON Lines and CSV files the importer reads
and applies the definitions directly, so the marts can be checked against it.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

BOT_WINDOW = timedelta(seconds=2)
REPLY_LOOKBACK = timedelta(days=30)
SCANNERS = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds" / "scanner_user_agents.csv"


def _ts(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def read_events(folders: list[Path]) -> list[dict]:
    """Deduplicated events: first delivery wins (files in name order, then line order)."""
    seen: set[tuple[str, str]] = set()
    events = []
    for folder in folders:
        for path in sorted(folder.glob("events*.jsonl")):
            for line in path.read_text().splitlines():
                if not line.strip():
                    continue
                event = json.loads(line)
                key = (event["tenantId"], event.get("eventId") or json.dumps(event, sort_keys=True))
                if key in seen:
                    continue
                seen.add(key)
                event["ts"] = _ts(event["timestamp"])
                events.append(event)
    return events


def read_messages(folder: Path) -> dict[tuple[str, str], dict]:
    with (folder / "messages.csv").open() as fh:
        return {(r["tenant_id"], r["message_id"]): r for r in csv.DictReader(fh)}


def is_bot(event: dict, first_send: dict, scanners: list[str]) -> bool:
    if event["eventType"] not in ("email_open", "link_click"):
        return False
    if event.get("isBot"):
        return True
    agent = (event.get("userAgent") or "").lower()
    if any(p in agent for p in scanners):
        return True
    sent = first_send.get((event["tenantId"], event.get("messageId")))
    return sent is not None and sent <= event["ts"] < sent + BOT_WINDOW


def email_performance(folders: list[Path], dims: Path) -> dict[tuple, dict[str, int]]:
    scanners = [r["pattern"].lower() for r in csv.DictReader(SCANNERS.open())]
    events = read_events(folders)
    dim = read_messages(dims)

    send_event: dict[tuple, dict] = {}
    for e in sorted((e for e in events if e["eventType"] == "email_sent" and e.get("messageId")),
                    key=lambda e: (e["ts"], e["eventId"])):
        send_event.setdefault((e["tenantId"], e["messageId"]), e)
    first_send = {k: v["ts"] for k, v in send_event.items()}

    sends = {}
    for key, e in send_event.items():
        d = dim.get(key, {})
        sends[key] = {
            "ts": e["ts"],
            "lead": d.get("lead_id") or e.get("leadId"),
            "user": d.get("user_id") or e.get("userId"),
            "wf": d.get("workflow_id") or e.get("workflowId"),
            "step": int(d["step_number"]) if d.get("step_number") else e.get("stepNumber"),
            "exe": d.get("workflow_execution_id") or e.get("workflowExecutionId"),
        }
    known = set(sends) | set(dim)

    def latest(candidates):
        return max(candidates, key=lambda kv: (kv[1]["ts"], kv[0][1]))[0] if candidates else None

    replies: dict[tuple, list[dict]] = defaultdict(list)
    for r in (e for e in events if e["eventType"] == "email_reply"):
        t = r["tenantId"]
        target = None
        if r.get("messageId") and (t, r["messageId"]) in known:
            target = (t, r["messageId"])
        if target is None and r.get("workflowExecutionId"):
            target = latest([(k, s) for k, s in sends.items() if k[0] == t and s["lead"] == r.get("leadId")
                             and s["exe"] == r["workflowExecutionId"] and s["ts"] < r["ts"]])
        if target is None:
            target = latest([(k, s) for k, s in sends.items() if k[0] == t and s["lead"] == r.get("leadId")
                             and r["ts"] - REPLY_LOOKBACK <= s["ts"] < r["ts"]])
        if target is not None:
            replies[target].append(r)

    bounces: dict[tuple, list[dict]] = defaultdict(list)
    opens: dict[tuple, int] = defaultdict(int)
    clicks: dict[tuple, int] = defaultdict(int)
    for e in events:
        key = (e["tenantId"], e.get("messageId"))
        if e["eventType"] == "email_bounce":
            bounces[key].append(e)
        elif e["eventType"] == "email_open" and not is_bot(e, first_send, scanners):
            opens[key] += 1
        elif e["eventType"] == "link_click" and not is_bot(e, first_send, scanners):
            clicks[key] += 1

    rows: dict[tuple, dict] = {}
    leads: dict[tuple, dict[str, set]] = {}
    for key, s in sends.items():
        grain = (key[0], s["ts"].date(), s["wf"], s["step"], s["user"])
        row = rows.setdefault(grain, defaultdict(int))
        sets = leads.setdefault(grain, defaultdict(set))
        row["sent"] += 1
        sets["contacted"].add(s["lead"])
        if bounces[key]:
            row["bounced"] += 1
            hard = any((b.get("bounceType") or "hard") == "hard" for b in bounces[key])
            row["hard_bounced" if hard else "soft_bounced"] += 1
            continue
        row["delivered"] += 1
        row["opens_total"] += opens[key]
        row["clicks_total"] += clicks[key]
        if opens[key]:
            row["unique_opens"] += 1
            sets["opened"].add(s["lead"])
        if clicks[key]:
            row["unique_clicks"] += 1
            sets["clicked"].add(s["lead"])
        if replies[key]:
            row["replied"] += 1
            sets["replied"].add(s["lead"])
            if any(r.get("sentiment") == "positive" for r in replies[key]):
                row["positive_replied"] += 1
    metrics = ["sent", "bounced", "hard_bounced", "soft_bounced", "delivered", "opens_total", "unique_opens",
               "clicks_total", "unique_clicks", "replied", "positive_replied"]
    out = {}
    for grain, row in rows.items():
        out[grain] = {m: row[m] for m in metrics} | {
            "leads_contacted": len(leads[grain]["contacted"]), "leads_opened": len(leads[grain]["opened"]),
            "leads_clicked": len(leads[grain]["clicked"]), "leads_replied": len(leads[grain]["replied"]),
        }
    return out
