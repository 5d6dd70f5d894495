"""The demo generator's fixed vocabulary (tenants, agents, pages, forms, sequence delays) and its event buffer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

TENANT_NAMES = [
    ("acme-corp", "Acme Corp", "America/New_York"),
    ("globex", "Globex", "Europe/London"),
    ("initech", "Initech", "America/Chicago"),
    ("umbrella", "Umbrella", "Europe/Berlin"),
    ("stark-industries", "Stark Industries", "America/Los_Angeles"),
    ("wayne-enterprises", "Wayne Enterprises", "America/New_York"),
    ("hooli", "Hooli", "America/Los_Angeles"),
    ("soylent", "Soylent", "Asia/Singapore"),
    ("tyrell", "Tyrell", "Asia/Tokyo"),
    ("cyberdyne", "Cyberdyne", "Australia/Sydney"),
]
LEAD_SOURCES = np.array(["outbound", "inbound", "referral", "event", "paid"])
SOURCE_LIFT = np.array([0.0, 0.12, 0.18, 0.06, 0.03])  # inbound/referral leads engage more
HUMAN_AGENTS = np.array(
    [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
        "Safari/605.1.15",
    ]
)
SCANNER_AGENTS = np.array(
    [
        "Mozilla/5.0 (compatible; Barracuda Sentinel)",
        "Mimecast URL Protect/1.0",
        "Proofpoint URL Defense (urldefense.com)",
        "python-requests/2.32.3",
    ]
)
PAGES = ["/", "/pricing", "/product", "/case-studies", "/demo", "/blog/benchmark", "/integrations", "/security"]
FORMS = ["demo_request", "contact_sales", "newsletter", "webinar_signup"]
SUBJECTS = ["Quick question", "Following up", "Idea for {company}", "Worth a chat?", "Last note", "Case study"]
STEP_DELAYS = np.array([0, 2, 3, 4, 5, 7])  # days after the previous step


@dataclass(frozen=True)
class GeneratedDataset:
    out_dir: Path
    events: int
    files: list[Path]
    tenants: int
    leads: int
    messages: int
    seconds: float


def zipf_weights(n: int, s: float = 1.1) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def tenant_table(n_tenants: int) -> pd.DataFrame:
    rows = []
    for i in range(n_tenants):
        slug, name, tz = TENANT_NAMES[i % len(TENANT_NAMES)]
        if i >= len(TENANT_NAMES):
            slug, name = f"{slug}-{i // len(TENANT_NAMES) + 1}", f"{name} {i // len(TENANT_NAMES) + 1}"
        rows.append((slug, name, tz))
    return pd.DataFrame(rows, columns=["tenant_id", "name", "timezone"])


def scanner_agent(rng: np.random.Generator, n: int) -> np.ndarray:
    # Half of the scanners announce themselves in the user agent; the rest only show by their timing.
    agent = rng.integers(0, len(SCANNER_AGENTS), n)
    return np.where(rng.random(n) < 0.5, agent, -1).astype(np.int8)


def utc_offset_hours(tz: str, on: date) -> float:
    dt = datetime(on.year, on.month, on.day, 12, tzinfo=ZoneInfo(tz))
    return dt.utcoffset().total_seconds() / 3600.0


class EventBuffer:
    """Column arrays of events, appended in blocks and concatenated once."""

    def __init__(self) -> None:
        self.blocks: list[dict[str, np.ndarray]] = []

    def add(self, n_or_mask_len: int, **cols: np.ndarray) -> None:
        n = n_or_mask_len
        if n == 0:
            return
        block = {
            "etype": np.zeros(n, np.int8),
            "ts": np.zeros(n),
            "lead": np.full(n, -1, np.int64),
            "msg": np.full(n, -1, np.int64),
            "exe": np.full(n, -1, np.int64),
            "user": np.full(n, -1, np.int64),
            "wf": np.full(n, -1, np.int64),
            "step": np.full(n, -1, np.int64),
            "page": np.full(n, -1, np.int8),
            "form": np.full(n, -1, np.int8),
            "bounce": np.full(n, -1, np.int8),
            "ua": np.full(n, -1, np.int8),
            "scanner": np.zeros(n, np.bool_),
            "isbot": np.full(n, -1, np.int8),
            "sentiment": np.full(n, -1, np.int8),
            "reply_ids": np.full(n, 0, np.int8),
            "tenant": np.zeros(n, np.int64),
        }
        for key, value in cols.items():
            block[key] = np.broadcast_to(value, (n,)).copy() if np.ndim(value) == 0 else value
        self.blocks.append(block)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({k: np.concatenate([b[k] for b in self.blocks]) for k in self.blocks[0]})
