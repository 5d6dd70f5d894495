"""The bot rule (METRICS.md, "Bots"), defined once for the SQL and the Python that applies it.

The rule's two parameters live where dbt reads them: the seconds after a send within which an open or click
is a scanner's (`bot_seconds_after_send` in dbt_project.yml's vars) and the scanner user agents
(dbt_project/seeds/scanner_user_agents.csv, a dbt seed). `stg_leadron__events` applies them in SQL; the
status endpoint reads them from here, so both always agree.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import yaml

from leadron.reads.shaping import iso_ms
from leadron.settings import PROJECT_ROOT

DBT_PROJECT_YML = PROJECT_ROOT / "dbt_project.yml"
SCANNERS_CSV = PROJECT_ROOT / "dbt_project" / "seeds" / "scanner_user_agents.csv"


@dataclass(frozen=True)
class BotRule:
    window: timedelta  # an open or click this soon after the message's first send is a scanner's
    scanners: tuple[str, ...]  # lower-case substrings of scanner user agents

    def is_human(self, event: dict[str, Any], sent_at: datetime | None) -> bool:
        if event["is_bot"]:  # the provider's own flag
            return False
        agent = (event["user_agent"] or "").lower()
        if any(p in agent for p in self.scanners):
            return False
        return not (sent_at is not None and sent_at <= event["occurred_at"] < sent_at + self.window)


@cache
def bot_rule() -> BotRule:
    seconds = yaml.safe_load(DBT_PROJECT_YML.read_text())["vars"]["bot_seconds_after_send"]
    with SCANNERS_CSV.open() as fh:
        scanners = tuple(r["pattern"].lower() for r in csv.DictReader(fh))
    return BotRule(timedelta(seconds=seconds), scanners)


def summarize_status(events: list[dict[str, Any]], rule: BotRule) -> dict[str, Any]:
    """Human opens and clicks, replies and bounces of the given events (a message's or an execution's)."""
    sent_at: dict[str, datetime] = {}
    for e in events:
        if e["event_type"] == "email_sent" and e["message_id"]:
            ts = e["occurred_at"]
            sent_at[e["message_id"]] = min(ts, sent_at.get(e["message_id"], ts))

    def first(kind: str, only_human: bool = False) -> str | None:
        times = [
            e["occurred_at"]
            for e in events
            if e["event_type"] == kind and (not only_human or rule.is_human(e, sent_at.get(e["message_id"])))
        ]
        return iso_ms(min(times)) if times else None

    opened, clicked = first("email_open", True), first("link_click", True)
    replied, bounced = first("email_reply"), first("email_bounce")
    return {
        "sent": bool(sent_at),
        "opened": opened is not None,
        "clicked": clicked is not None,
        "replied": replied is not None,
        "bounced": bounced is not None,
        "firstOpenedAt": opened,
        "firstClickedAt": clicked,
        "firstRepliedAt": replied,
        "bouncedAt": bounced,
        "events": dict(Counter(e["event_type"] for e in events)),
    }
