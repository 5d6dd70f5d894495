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
    for e in sorted(
        (e for e in events if e["eventType"] == "email_sent" and e.get("messageId")),
        key=lambda e: (e["ts"], e["eventId"]),
    ):
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
            target = latest(
                [
                    (k, s)
                    for k, s in sends.items()
                    if k[0] == t
                    and s["lead"] == r.get("leadId")
                    and s["exe"] == r["workflowExecutionId"]
                    and s["ts"] < r["ts"]
                ]
            )
        if target is None:
            target = latest(
                [
                    (k, s)
                    for k, s in sends.items()
                    if k[0] == t and s["lead"] == r.get("leadId") and r["ts"] - REPLY_LOOKBACK <= s["ts"] < r["ts"]
                ]
            )
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
    metrics = [
        "sent",
        "bounced",
        "hard_bounced",
        "soft_bounced",
        "delivered",
        "opens_total",
        "unique_opens",
        "clicks_total",
        "unique_clicks",
        "replied",
        "positive_replied",
    ]
    out = {}
    for grain, row in rows.items():
        out[grain] = {m: row[m] for m in metrics} | {
            "leads_contacted": len(leads[grain]["contacted"]),
            "leads_opened": len(leads[grain]["opened"]),
            "leads_clicked": len(leads[grain]["clicked"]),
            "leads_replied": len(leads[grain]["replied"]),
        }
    return out


# ---- the other marts of issue 4, computed the same way (plain Python over the input files) ----


def read_leads(folder: Path) -> dict[tuple[str, str], dict]:
    with (folder / "leads.csv").open() as fh:
        return {(r["tenant_id"], r["lead_id"]): r for r in csv.DictReader(fh)}


def classified(folders: list[Path], dims: Path) -> list[dict]:
    """Deduplicated events with a `bot` flag (METRICS.md rules)."""
    scanners = [r["pattern"].lower() for r in csv.DictReader(SCANNERS.open())]
    events = read_events(folders)
    first_send: dict[tuple, datetime] = {}
    for e in events:
        if e["eventType"] == "email_sent" and e.get("messageId"):
            key = (e["tenantId"], e["messageId"])
            first_send[key] = min(e["ts"], first_send.get(key, e["ts"]))
    for e in events:
        e["bot"] = is_bot(e, first_send, scanners)
    return events


def activity_daily(events: list[dict]) -> dict[tuple, tuple[int, int, int]]:
    out: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for e in events:
        row = out[(e["tenantId"], e["ts"].date(), e["eventType"])]
        row[0] += 1
        row[1 if not e["bot"] else 2] += 1
    return {k: tuple(v) for k, v in out.items()}


def page_visits_daily(events: list[dict]) -> dict[tuple, tuple[int, int]]:
    visits: dict[tuple, int] = defaultdict(int)
    leads: dict[tuple, set] = defaultdict(set)
    for e in events:
        if e["eventType"] == "page_visit":
            key = (e["tenantId"], e.get("url"), e["ts"].date())
            visits[key] += 1
            if e.get("leadId"):
                leads[key].add(e["leadId"])
    return {k: (n, len(leads[k])) for k, n in visits.items()}


def form_submissions_daily(events: list[dict], dims: Path) -> dict[tuple, tuple[int, int, int]]:
    leads = read_leads(dims)
    count: dict[tuple, int] = defaultdict(int)
    first: dict[tuple, dict[str, datetime]] = defaultdict(dict)
    for e in events:
        if e["eventType"] == "form_submission":
            key = (e["tenantId"], e.get("formId"), e["ts"].date())
            count[key] += 1
            if e.get("leadId"):
                seen = first[key]
                seen[e["leadId"]] = min(e["ts"], seen.get(e["leadId"], e["ts"]))
    out = {}
    for key, n in count.items():
        converted = sum(
            1
            for lead, at in first[key].items()
            if (c := leads.get((key[0], lead), {}).get("converted_at")) and _ts(c) >= at
        )
        out[key] = (n, len(first[key]), converted)
    return out


WEIGHTS = {"email_open": 1, "link_click": 3, "page_visit": 2, "form_submission": 8, "email_reply": 10}


def lead_engagement(events: list[dict], dims: Path, as_of: datetime) -> dict[tuple, tuple[float, str]]:
    """(score, tier) per lead: sum of w * 0.5 ** (age_days / 14) over human events up to as_of; tiers by quartile."""
    scores: dict[tuple, float] = {key: 0.0 for key in read_leads(dims)}
    for e in events:
        if not e.get("leadId"):
            continue
        key = (e["tenantId"], e["leadId"])
        scores.setdefault(key, 0.0)
        weight = WEIGHTS.get(e["eventType"], 0)
        if weight and not e["bot"] and e["ts"] <= as_of:
            age_ms = int((as_of - e["ts"]).total_seconds() * 1000 + 0.5)
            scores[key] += weight * 0.5 ** (age_ms / (86_400_000 * 14))
    out = {}
    by_tenant: dict[str, list] = defaultdict(list)
    for (tenant, lead), score in scores.items():
        by_tenant[tenant].append((score, lead))
    for tenant, items in by_tenant.items():
        items.sort()
        n = len(items)
        for i, (score, lead) in enumerate(items):
            # SQL ntile(4): the first n % 4 buckets hold one more row.
            size, extra = divmod(n, 4)
            bucket, edge = 1, 0
            for b in range(1, 5):
                edge += size + (1 if b <= extra else 0)
                if i < edge:
                    bucket = b
                    break
            out[(tenant, lead)] = (score, {4: "hot", 3: "warm"}.get(bucket, "cold"))
    return out


ENGAGEMENT = {"email_open", "link_click", "email_reply", "form_submission", "page_visit"}


def cohort_retention(events: list[dict], dims: Path, as_of: datetime) -> dict[tuple, tuple[int, int, int]]:
    """(cohort_size, active_leads, converted_leads) per (tenant, cohort Monday, week offset 0..12), elapsed weeks
    only."""
    from datetime import timedelta as td

    leads = read_leads(dims)
    first_send: dict[tuple, datetime] = {}
    active: dict[tuple, set] = defaultdict(set)
    for e in events:
        if not e.get("leadId"):
            continue
        key = (e["tenantId"], e["leadId"])
        if e["eventType"] == "email_sent":
            first_send[key] = min(e["ts"], first_send.get(key, e["ts"]))
        if e["eventType"] in ENGAGEMENT and not e["bot"]:
            day = e["ts"].date()
            active[key].add(day - td(days=day.weekday()))
    out: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (tenant, lead), sent in first_send.items():
        cohort = sent.date() - td(days=sent.date().weekday())
        converted = leads.get((tenant, lead), {}).get("converted_at")
        for k in range(13):
            start, end = cohort + td(days=7 * k), cohort + td(days=7 * (k + 1))
            if end > as_of.date():
                break
            row = out[(tenant, cohort, k)]
            row[0] += 1
            row[1] += start in active[(tenant, lead)]
            row[2] += bool(converted) and _ts(converted) < datetime.combine(end, datetime.min.time())
    return {k: tuple(v) for k, v in out.items()}


def funnel(
    events: list[dict],
    steps: list[str],
    window_s: int,
    human_only: bool = True,
    entry: tuple[datetime, datetime] | None = None,
) -> dict[tuple, dict]:
    """The best attempt per (tenant, lead): {"times": [t1, ...], "message": step-1 messageId}, by plain greedy search;
    with `entry` = [start, end), only attempts whose step-1 event is in it."""
    from datetime import timedelta as td

    window = td(seconds=window_s)
    by_lead: dict[tuple, list[dict]] = defaultdict(list)
    for e in events:
        if e.get("leadId") and not (human_only and e["bot"]):
            by_lead[(e["tenantId"], e["leadId"])].append(e)
    out = {}
    for key, evs in by_lead.items():
        evs.sort(key=lambda e: e["ts"])
        best = None
        for start in (
            e for e in evs if e["eventType"] == steps[0] and (entry is None or entry[0] <= e["ts"] < entry[1])
        ):
            times = [start["ts"]]
            for k in range(1, len(steps)):
                strict = steps[k] == steps[k - 1]
                nxt = next(
                    (
                        e["ts"]
                        for e in evs
                        if e["eventType"] == steps[k]
                        and (e["ts"] > times[-1] if strict else e["ts"] >= times[-1])
                        and e["ts"] <= start["ts"] + window
                    ),
                    None,
                )
                if nxt is None:
                    break
                times.append(nxt)
            if (
                best is None
                or len(times) > len(best["times"])
                or (len(times) == len(best["times"]) and times[0] < best["times"][0])
            ):
                best = {"times": times, "message": start.get("messageId")}
        if best is not None:
            out[key] = best
    return out
