"""`leadron demo`'s look at the read API: a real server on 127.0.0.1 over the published marts, a read-only
key for the largest tenant, three dashboard calls, and one event ingested and counted in today's KPIs."""

from __future__ import annotations

import threading
import time
import uuid

import httpx

from leadron.settings import Settings
from leadron_cli.demo_mail import free_port


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def show_api(settings: Settings, tenant: str) -> list[str]:
    """Lines for the demo's summary; the server runs in a thread of this process and stops at the end."""
    import uvicorn

    from api_stub.app import create_app
    from leadron.keystore import KeyStore

    read_key, _ = KeyStore(settings.api_keys_path).create(tenant, ("analytics:read",))
    write_key, _ = KeyStore(settings.api_keys_path).create(tenant, ("events:write",))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}/v1/analytics"
    try:
        with httpx.Client(headers={"X-API-Key": read_key}, timeout=30) as client:
            for _ in range(200):  # until the server listens
                try:
                    client.get(f"http://127.0.0.1:{port}/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            kpis = client.get(f"{base}/dashboard/kpis", params={"groupBy": "week"}).json()
            totals, fresh = kpis["data"]["totals"], kpis["meta"]["dataFreshness"]
            funnel = client.get(f"{base}/dashboard/funnel").json()["data"]["steps"]
            before = kpis["data"]["today"]["events"].get("page_visit", 0)
            client.post(
                f"{base}/events",
                json={
                    "eventId": f"demo-{uuid.uuid4().hex}",
                    "eventType": "page_visit",
                    "url": "https://demo.example/pricing",
                },
                headers={"X-API-Key": write_key},
            ).raise_for_status()
            after = (
                client.get(f"{base}/dashboard/kpis", params={"from": kpis["data"]["to"], "to": kpis["data"]["to"]})
                .json()["data"]["today"]["events"]
                .get("page_visit", 0)
            )
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    steps = " -> ".join(f"{s['eventType']} {s['entities']:,}" for s in funnel)
    return [
        f"Read API (a server on 127.0.0.1 for this demo; published version {fresh['version']})",
        f"  GET /v1/analytics/dashboard/kpis (last 30 days): {totals['sent']:,} sent, open rate "
        f"{_percent(totals['openRate'])}, reply rate {_percent(totals['replyRate'])}",
        f"  GET /v1/analytics/dashboard/funnel (last 90 days, leads): {steps}",
        f"  POST /v1/analytics/events, then today's KPIs: page visits {before:,} -> {after:,}",
        "  Try it: .venv/bin/leadron serve, then (a read-only demo key for this tenant)",
        f"    curl -H 'X-API-Key: {read_key}' http://127.0.0.1:8000/v1/analytics/dashboard/kpis",
    ]
