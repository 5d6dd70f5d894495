"""Schemathesis hooks for tests/test_api_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

- Reads ask for days that hold generated data, and lead ids are a real lead of the key's tenant, so
  responses carry rows worth protecting.
- `replayed_with_another_tenants_key`: every GET is replayed with the key of a tenant that has no data
  at all. It must never get a 5xx, never read an object the first key could (404 instead), and every
  list or number it gets must be empty or zero.
"""

from __future__ import annotations

import os

import requests
import schemathesis

# Numbers that describe the request or the page, not data.
NOT_DATA = {"page", "limit", "totalPages", "step", "windowSeconds", "weekOffset", "status", "breakdown"}
GLOBAL = ("/predictive/model",)  # the production model's card: one model for all tenants, no tenant's rows


@schemathesis.hook
def map_query(ctx, query):
    if isinstance(query, dict) and "from" not in query and "to" not in query:
        query = {**query, "from": os.environ["LEADRON_DATA_FROM"], "to": os.environ["LEADRON_DATA_TO"]}
    return query


@schemathesis.hook
def map_path_parameters(ctx, parameters):
    lead = parameters.get("leadId") if isinstance(parameters, dict) else None
    if isinstance(lead, str) and 1 <= len(lead) <= 128:
        parameters = {**parameters, "leadId": os.environ["LEADRON_REAL_LEAD"]}
    return parameters


def _leaks(value, key: str = "") -> list[str]:
    """Where a response of the empty tenant holds data: a non-empty list (other than a funnel's step
    list, whose entities must be 0) or a non-zero count."""
    if isinstance(value, dict):
        return [leak for k, v in value.items() if k not in NOT_DATA for leak in _leaks(v, k)]
    if isinstance(value, list):
        if key == "steps":
            return [leak for item in value for leak in _leaks(item, key)]
        return [f"{key}: {len(value)} rows"] if value else []
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    return [f"{key}={value}"] if value else []


@schemathesis.check
def replayed_with_another_tenants_key(ctx, response, case):
    request = response.request
    if request.method != "GET" or "/track/" in request.url or request.path_url.split("?")[0].endswith(GLOBAL):
        return None
    headers = {k: v for k, v in request.headers.items() if k.lower() != "x-api-key"}
    other = requests.get(request.url, headers={**headers, "X-API-Key": os.environ["LEADRON_OTHER_KEY"]}, timeout=30)
    if other.status_code >= 500:
        raise AssertionError(f"{other.status_code} for another tenant's key")
    # An object read by id (not the status endpoints, which answer for any id) is another tenant's 404.
    if (
        response.status_code == 200
        and case.path_parameters
        and not request.path_url.split("?")[0].endswith("/status")
        and other.status_code != 404
    ):
        raise AssertionError(f"another tenant's key read {request.url}: {other.status_code}")
    if other.status_code == 200 and other.headers.get("content-type", "").startswith("application/json"):
        body = other.json()
        leaks = _leaks(body.get("data")) + _leaks({"total": (body.get("pagination") or {}).get("total", 0)})
        if leaks:
            raise AssertionError(f"another tenant's key saw data at {request.url}: {leaks[:5]}")
    return None
