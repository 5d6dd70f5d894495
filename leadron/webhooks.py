"""Mail-provider event webhooks mapped onto Leadron events.

The platform sends each email with its ids attached — SendGrid `custom_args`
(echoed as top-level fields of every event) and Mailgun `X-Mailgun-Variables`
(echoed as `event-data.user-variables`): `messageId`, `leadId`,
`workflowExecutionId`. Events without a `messageId` cannot be attributed and are
skipped with a reason. Provider event ids become our `eventId`, so a provider's
retry of the same event lands once.

SendGrid (Event Webhook, a JSON array):
  open -> email_open (isBot from sg_machine_open), click -> link_click (url),
  bounce -> email_bounce (type "bounce" -> hard, "blocked" -> soft);
  processed, delivered, deferred, dropped, spamreport, unsubscribe, group_* -> skipped.
Mailgun (one JSON object with `signature` and `event-data`):
  opened -> email_open (isBot from client-info.bot when present), clicked -> link_click (url),
  failed -> email_bounce (severity permanent -> hard, temporary -> soft);
  accepted, delivered, rejected, complained, unsubscribed, stored -> skipped.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

IDS = ("messageId", "leadId", "workflowExecutionId")


def _ts(seconds: Any) -> str | None:
    try:
        return datetime.fromtimestamp(float(seconds), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def provider_event_id(prefix: str, raw: Any) -> dict[str, str]:
    """A provider's event id as our eventId (hashed: e.g. SendGrid's are base64 with '=' and '/')."""
    if not raw:
        return {}
    return {"eventId": f"{prefix}_{hashlib.sha256(str(raw).encode()).hexdigest()[:32]}"}


def _ids(source: dict[str, Any]) -> dict[str, str]:
    return {k: source[k] for k in IDS if isinstance(source.get(k), str) and source[k]}


def _finish(
    body: dict[str, Any], ids: dict[str, str], timestamp: Any, user_agent: Any, ip: Any, no_message: str
) -> tuple[dict[str, Any] | None, str]:
    """The provider-neutral tail of a mapped event: our ids (a messageId is required), time, agent, address."""
    if "messageId" not in ids:
        return None, no_message
    body |= ids
    if (ts := _ts(timestamp)) is not None:
        body["timestamp"] = ts
    if user_agent:
        body["userAgent"] = str(user_agent)[:1024]
    if ip:
        body["ip"] = ip
    return {k: v for k, v in body.items() if v is not None}, ""


def sendgrid_events(payload: Any) -> list[tuple[dict[str, Any] | None, str]]:
    """Each SendGrid event as (our event body, "") or (None, why it was skipped)."""
    if not isinstance(payload, list):
        return [(None, "SendGrid posts a JSON array of events")]
    out: list[tuple[dict[str, Any] | None, str]] = []
    for item in payload:
        if not isinstance(item, dict):
            out.append((None, "event is not an object"))
            continue
        kind = item.get("event")
        body: dict[str, Any] = provider_event_id("sg", item.get("sg_event_id"))
        if kind == "open":
            body |= {"eventType": "email_open", "isBot": bool(item.get("sg_machine_open", False))}
        elif kind == "click":
            body |= {"eventType": "link_click", "url": item.get("url")}
        elif kind == "bounce":
            body |= {"eventType": "email_bounce", "bounceType": "soft" if item.get("type") == "blocked" else "hard"}
        else:
            out.append((None, f"SendGrid event {kind!r} has no Leadron event type"))
            continue
        out.append(
            _finish(
                body,
                _ids(item),
                item.get("timestamp"),
                item.get("useragent"),
                item.get("ip"),
                "no messageId custom arg on the event",
            )
        )
    return out


def mailgun_event(payload: Any) -> tuple[dict[str, Any] | None, str]:
    if not isinstance(payload, dict) or not isinstance(payload.get("event-data"), dict):
        return None, "Mailgun posts an object with event-data"
    data = payload["event-data"]
    kind = data.get("event")
    body: dict[str, Any] = provider_event_id("mg", data.get("id"))
    client = data.get("client-info") if isinstance(data.get("client-info"), dict) else {}
    if kind == "opened":
        body |= {"eventType": "email_open", "isBot": bool(client.get("bot"))}
    elif kind == "clicked":
        body |= {"eventType": "link_click", "url": data.get("url")}
    elif kind == "failed":
        body |= {"eventType": "email_bounce", "bounceType": "soft" if data.get("severity") == "temporary" else "hard"}
    else:
        return None, f"Mailgun event {kind!r} has no Leadron event type"
    variables = data.get("user-variables") if isinstance(data.get("user-variables"), dict) else {}
    return _finish(
        body,
        _ids(variables),
        data.get("timestamp"),
        client.get("user-agent"),
        data.get("ip"),
        "no messageId in user-variables",
    )
