"""What the read-API test modules share: a real server on a copy of the generated build (one per module),
and the envelope and rate helpers."""

from __future__ import annotations

import shutil
import time
from datetime import date
from types import SimpleNamespace

import pytest

from tests.api_server import Server
from tests.conftest import query

COUNTS = (
    "sent",
    "delivered",
    "bounced",
    "hard_bounced",
    "soft_bounced",
    "opens_total",
    "unique_opens",
    "clicks_total",
    "unique_clicks",
    "replied",
    "positive_replied",
)
RATES = {
    "openRate": ("unique_opens", "delivered"),
    "clickRate": ("unique_clicks", "delivered"),
    "clickToOpenRate": ("unique_clicks", "unique_opens"),
    "replyRate": ("replied", "delivered"),
    "positiveReplyRate": ("positive_replied", "replied"),
    "bounceRate": ("bounced", "sent"),
}
FIRST, LAST = date(2026, 2, 2), date(2026, 3, 15)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


@pytest.fixture(scope="module")
def api(generated_build, tmp_path_factory):
    settings, input_dir = generated_build
    root = tmp_path_factory.mktemp("api-read")
    home = root / "home"
    shutil.copytree(settings.home, home, symlinks=True)  # the server may write; the shared build stays as built
    server = Server(
        home,
        {
            "LEADRON_LOG_LEVEL": "WARNING",
            "LEADRON_RATE_LIMIT": "100000",
            "LEADRON_RATE_BURST": "100000",
            "LEADRON_SEAL_INTERVAL": "3600",
        },
    ).start()
    tenants = [
        t for (t,) in query(settings, "SELECT tenant_id FROM marts.fct_events GROUP BY 1 ORDER BY count(*) DESC")
    ]
    keys = {t: server.create_key(t) for t in tenants}
    try:
        yield SimpleNamespace(
            server=server,
            settings=settings,
            input=input_dir,
            home=home,
            a=tenants[0],
            b=tenants[1],
            keys=keys,
            client=server.client(keys[tenants[0]]),
            other=server.client(keys[tenants[1]]),
        )
    finally:
        server.stop()
    log = (root / f"server-{server.port}.log").read_text()
    assert "Traceback" not in log, log[-3000:]


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True and body["meta"]["version"] == "v1"
    return body


def rates(sums: dict, ratios=RATES) -> dict:
    return {k: (None if not sums[RATES[k][1]] else sums[RATES[k][0]] / sums[RATES[k][1]]) for k in ratios}


def assert_row(actual: dict, sums: dict, names=COUNTS, ratios=RATES) -> None:
    for name in names:
        assert actual[camel(name)] == sums[name], name
    for name, value in rates(sums, ratios).items():
        assert actual[name] == pytest.approx(value, rel=1e-12) if value is not None else actual[name] is None, name


REPORT = {
    "name": "Weekly sends",
    "metrics": ["sent", "reply_rate"],
    "dimensions": ["date_week"],
    "dateRange": {"start": "2026-02-02", "end": "2026-03-02"},
}


def busiest_leads(api, tenant, n=3):
    return [
        r[0]
        for r in query(
            api.settings,
            "SELECT lead_id FROM marts.fct_events WHERE tenant_id = ? AND lead_id "
            "IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ?",
            [tenant, n],
        )
    ]


def finished_export(client, export_id):
    for _ in range(200):
        data = ok(client.get(f"/v1/analytics/exports/{export_id}"))["data"]
        if data["status"] != "running":
            return data
        time.sleep(0.05)
    raise AssertionError("export did not finish")
