"""Deterministic, vectorised demo dataset in the documented input format.

The generator simulates a sales-engagement platform: Zipf-sized tenants, reps in
teams, leads enrolled in multi-step sequences, and what email really does —
bounces that end a message, scanner opens within 2 s of the send, provider-flagged
machine opens, repeated human opens, clicks after opens, replies (with sentiment)
mostly after clicks that stop the sequence, page visits and form submissions after
clicks, background web visits, ~0.5% exact duplicate events and some events that
arrive days late. Leads that engage more convert more often, with noise.

Everything is computed with numpy over whole arrays (one loop over sequence
steps); DuckDB formats ids and timestamps and writes JSON Lines and CSV.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from leadron.contract import EVENT_TYPES, EventType
from leadron.demo_files import write_dataset
from leadron.demo_vocabulary import (
    FORMS,
    HUMAN_AGENTS,
    LEAD_SOURCES,
    PAGES,
    SCANNER_AGENTS,
    SOURCE_LIFT,
    STEP_DELAYS,
    EventBuffer,
    GeneratedDataset,
    scanner_agent,
    tenant_table,
    utc_offset_hours,
    zipf_weights,
)

# Codes in the contract's order (leadron.contract.EVENT_TYPES): the generated events use its names.
SENT, OPEN, CLICK, REPLY, BOUNCE, FORM, VISIT = (
    EVENT_TYPES.index(t.value)
    for t in (
        EventType.email_sent,
        EventType.email_open,
        EventType.link_click,
        EventType.email_reply,
        EventType.email_bounce,
        EventType.form_submission,
        EventType.page_visit,
    )
)


def generate(
    out_dir: Path,
    events: int = 1_000_000,
    tenants: int = 5,
    seed: int = 7,
    end: date | None = None,
    days: int = 365,
    progress: Callable[[str], None] = lambda msg: None,
) -> GeneratedDataset:
    """Write a demo input folder with about `events` events; same arguments, same bytes."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    end = end or datetime.now(UTC).date()
    end_ts = datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp() + 86400 - 1  # end of the last day
    start_ts = end_ts - days * 86400
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    # ---- tenants, teams, reps, workflows --------------------------------------------------
    tenant_df = tenant_table(tenants)
    weights = zipf_weights(tenants)
    n_leads_total = max(tenants * 40, int(events / 10.1))  # ~10.1 events per lead, measured on this generator
    leads_per_tenant = np.maximum(40, np.round(weights * n_leads_total).astype(int))
    # UTC offset of each tenant on each day (daylight saving included), indexed by days since 1970-01-01.
    first_day = int(start_ts // 86400) - 1
    span = days + 200  # second sequences and step delays run past the window's start
    offset_by_day = np.array(
        [
            [utc_offset_hours(tz, date.fromordinal(date(1970, 1, 1).toordinal() + first_day + d)) for d in range(span)]
            for tz in tenant_df["timezone"]
        ]
    )

    team_rows, user_rows, wf_rows, step_rows = [], [], [], []
    tenant_users: list[np.ndarray] = []
    tenant_wfs: list[np.ndarray] = []
    wf_steps: list[int] = []
    user_counter = wf_counter = 0
    for t, tenant_id in enumerate(tenant_df["tenant_id"]):
        n_teams = int(np.clip(np.ceil(leads_per_tenant[t] / 4000), 2, 6))
        n_reps = int(np.clip(np.ceil(leads_per_tenant[t] / 600), 3, 60))
        for k in range(n_teams):
            team_rows.append(
                (tenant_id, f"team_{t}_{k}", ["Enterprise", "Mid-Market", "SMB", "EMEA", "APAC", "Growth"][k])
            )
        users = []
        for r in range(n_reps):
            uid = f"usr_{user_counter:05d}"
            user_rows.append(
                (
                    tenant_id,
                    uid,
                    f"Rep {user_counter}",
                    f"rep{user_counter}@{tenant_id}.example",
                    f"team_{t}_{r % n_teams}",
                )
            )
            users.append(user_counter)
            user_counter += 1
        tenant_users.append(np.array(users))
        wfs = []
        for w in range(int(np.clip(2 + leads_per_tenant[t] // 10000, 3, 8))):
            n_steps = int(rng.integers(3, 7))
            wf_rows.append((tenant_id, f"wf_{wf_counter:04d}", f"Sequence {w + 1} ({n_steps} steps)"))
            for s in range(n_steps):
                step_rows.append((tenant_id, f"wf_{wf_counter:04d}", s + 1, "email", int(STEP_DELAYS[s])))
            wfs.append(wf_counter)
            wf_steps.append(n_steps)
            wf_counter += 1
        tenant_wfs.append(np.array(wfs))
    wf_steps_arr = np.array(wf_steps)
    progress(f"tenants {tenants}, reps {user_counter}, sequences {wf_counter}, leads {int(leads_per_tenant.sum()):,}")

    # ---- leads ----------------------------------------------------------------------------
    lead_tenant = np.repeat(np.arange(tenants), leads_per_tenant)
    n_leads = lead_tenant.size
    lead_source = rng.choice(len(LEAD_SOURCES), n_leads, p=[0.55, 0.2, 0.1, 0.1, 0.05])
    propensity = np.clip(rng.beta(1.4, 6.0, n_leads) + SOURCE_LIFT[lead_source], 0, 0.97)
    lead_owner = np.empty(n_leads, np.int64)
    lead_wf = np.empty(n_leads, np.int64)
    for t in range(tenants):
        idx = np.flatnonzero(lead_tenant == t)
        lead_owner[idx] = rng.choice(tenant_users[t], idx.size)
        lead_wf[idx] = rng.choice(tenant_wfs[t], idx.size)
    seq_start_day = np.floor(rng.uniform(start_ts, end_ts, n_leads) / 86400) * 86400
    lead_created = seq_start_day - rng.uniform(0.5, 14, n_leads) * 86400

    # Executions: every lead runs one sequence; 15% run a second one 30–60 days later.
    second = rng.random(n_leads) < 0.15
    exe_lead = np.concatenate([np.arange(n_leads), np.flatnonzero(second)])
    exe_start = np.concatenate([seq_start_day, seq_start_day[second] + rng.integers(30, 61, second.sum()) * 86400])
    keep = exe_start <= end_ts
    exe_lead, exe_start = exe_lead[keep], exe_start[keep]
    exe_wf = lead_wf[exe_lead].copy()
    n_exe = exe_lead.size
    exe_tenant = lead_tenant[exe_lead]

    ev = EventBuffer()
    alive = np.ones(n_exe, np.bool_)
    day_offset = np.zeros(n_exe)
    msg_blocks = []
    msg_counter = 0
    lead_clicked = np.zeros(n_leads, np.bool_)
    lead_replied = np.zeros(n_leads, np.bool_)
    lead_positive = np.zeros(n_leads, np.bool_)
    lead_formed = np.zeros(n_leads, np.bool_)
    lead_last_engaged = np.full(n_leads, np.nan)

    # ---- one vectorised pass per sequence step --------------------------------------------
    for s in range(int(wf_steps_arr.max())):
        day_offset = day_offset + STEP_DELAYS[s]
        weekday = (exe_start // 86400 + day_offset + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        day_offset = day_offset + np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0))  # no weekend sends
        send_day = (exe_start // 86400 + day_offset).astype(np.int64)
        offset = offset_by_day[exe_tenant, np.clip(send_day - first_day, 0, span - 1)]
        local_hour = rng.uniform(9, 17.5, n_exe) - offset  # business hours, tenant time
        send_ts = send_day * 86400.0 + local_hour * 3600 + rng.uniform(0, 60, n_exe)
        sending = alive & (s < wf_steps_arr[exe_wf]) & (send_ts <= end_ts)
        idx = np.flatnonzero(sending)
        m = idx.size
        if m == 0:
            break
        msg_ids = np.arange(msg_counter, msg_counter + m)
        msg_counter += m
        lead = exe_lead[idx]
        p = propensity[lead]
        ts0 = send_ts[idx]
        tenant = exe_tenant[idx]
        user = lead_owner[lead]
        wf = exe_wf[idx]
        base = dict(msg=msg_ids, lead=lead, exe=idx, tenant=tenant)
        msg_blocks.append(
            pd.DataFrame(
                {
                    "msg": msg_ids,
                    "lead": lead,
                    "exe": idx,
                    "tenant": tenant,
                    "user": user,
                    "wf": wf,
                    "step": s + 1,
                    "sent_ts": ts0,
                }
            )
        )
        lost_send = rng.random(m) < 0.002  # tracking lost the send event; the messages file still has it
        keep_send = ~lost_send
        ev.add(
            int(keep_send.sum()),
            etype=np.int8(SENT),
            ts=ts0[keep_send],
            user=user[keep_send],
            wf=wf[keep_send],
            step=np.full(keep_send.sum(), s + 1),
            **{k: v[keep_send] for k, v in base.items()},
        )

        bounced = rng.random(m) < (0.045 if s == 0 else 0.02)
        hard = bounced & (rng.random(m) < 0.65)
        b = np.flatnonzero(bounced)
        ev.add(
            b.size,
            etype=np.int8(BOUNCE),
            ts=ts0[b] + rng.uniform(5, 600, b.size),
            bounce=np.where(hard[b], 0, 1).astype(np.int8),
            **{k: v[b] for k, v in base.items()},
        )
        alive[idx[hard]] = False
        delivered = ~bounced

        # Machine opens: security scanners within 2 s of the send, provider-flagged opens (isBot) later.
        scan = np.flatnonzero(delivered & (rng.random(m) < 0.09))
        ev.add(
            scan.size,
            etype=np.int8(OPEN),
            ts=ts0[scan] + rng.uniform(0.2, 1.9, scan.size),
            ua=scanner_agent(rng, scan.size),
            scanner=np.True_,
            **{k: v[scan] for k, v in base.items()},
        )
        flagged = np.flatnonzero(delivered & (rng.random(m) < 0.06))
        ev.add(
            flagged.size,
            etype=np.int8(OPEN),
            ts=ts0[flagged] + rng.uniform(30, 900, flagged.size),
            isbot=np.int8(1),
            **{k: v[flagged] for k, v in base.items()},
        )
        scan_click = np.flatnonzero(delivered & (rng.random(m) < 0.025))
        ev.add(
            scan_click.size,
            etype=np.int8(CLICK),
            ts=ts0[scan_click] + rng.uniform(0.3, 1.95, scan_click.size),
            ua=scanner_agent(rng, scan_click.size),
            scanner=np.True_,
            page=rng.integers(0, len(PAGES), scan_click.size).astype(np.int8),
            **{k: v[scan_click] for k, v in base.items()},
        )

        # Human opens: some repeated.
        opened = delivered & (rng.random(m) < np.clip(0.18 + 0.9 * p, 0, 0.92))
        first_open = ts0 + rng.lognormal(np.log(3 * 3600), 1.2, m)
        o = np.flatnonzero(opened)
        n_opens = 1 + rng.geometric(0.6, o.size) - 1
        rep_o = np.repeat(o, n_opens)
        extra = np.concatenate([np.zeros(1), np.ones(rep_o.size - 1)]) if rep_o.size else np.zeros(0)
        first_mask = np.r_[True, rep_o[1:] != rep_o[:-1]] if rep_o.size else np.zeros(0, bool)
        open_ts = first_open[rep_o] + np.where(first_mask, 0, rng.exponential(20 * 3600, rep_o.size)) * extra
        ev.add(
            rep_o.size,
            etype=np.int8(OPEN),
            ts=open_ts,
            ua=rng.integers(0, len(HUMAN_AGENTS), rep_o.size).astype(np.int8),
            isbot=np.where(rng.random(rep_o.size) < 0.5, 0, -1).astype(np.int8),
            **{k: v[rep_o] for k, v in base.items()},
        )

        # Human clicks after the first open.
        clicked = opened & (rng.random(m) < np.clip(0.08 + 0.7 * p, 0, 0.85))
        c = np.flatnonzero(clicked)
        click_ts = first_open + rng.lognormal(np.log(240), 1.0, m)
        ev.add(
            c.size,
            etype=np.int8(CLICK),
            ts=click_ts[c],
            ua=rng.integers(0, len(HUMAN_AGENTS), c.size).astype(np.int8),
            page=rng.integers(0, len(PAGES), c.size).astype(np.int8),
            **{k: v[c] for k, v in base.items()},
        )
        lead_clicked[lead[c]] = True

        # Web activity after a click: visits, sometimes a form.
        visit = np.flatnonzero(clicked & (rng.random(m) < 0.6))
        n_visits = rng.integers(1, 4, visit.size)
        rv = np.repeat(visit, n_visits)
        ev.add(
            rv.size,
            etype=np.int8(VISIT),
            ts=click_ts[rv] + rng.uniform(5, 1800, rv.size),
            page=rng.integers(0, len(PAGES), rv.size).astype(np.int8),
            lead=lead[rv],
            tenant=tenant[rv],
            ua=rng.integers(0, len(HUMAN_AGENTS), rv.size).astype(np.int8),
        )
        form = visit[rng.random(visit.size) < np.clip(0.1 + 0.5 * p[visit], 0, 0.8)]
        ev.add(
            form.size,
            etype=np.int8(FORM),
            ts=click_ts[form] + rng.uniform(1900, 3600, form.size),
            form=rng.integers(0, len(FORMS), form.size).astype(np.int8),
            page=np.int8(4),
            lead=lead[form],
            tenant=tenant[form],
        )
        lead_formed[lead[form]] = True

        # Replies, mostly after clicks; a reply stops the sequence.
        p_reply = np.clip(0.015 + 0.22 * p + 0.25 * clicked, 0, 0.9)
        replied = delivered & (rng.random(m) < p_reply)
        r = np.flatnonzero(replied)
        reply_ts = np.where(clicked, click_ts, ts0) + rng.lognormal(np.log(5 * 3600), 1.1, m)
        positive_share = np.clip(0.25 + 0.6 * p[r], 0, 0.9)
        roll = rng.random(r.size)
        sentiment = np.where(roll < positive_share, 0, np.where(roll < positive_share + 0.2, 1, 2)).astype(np.int8)
        # Which ids the inbound mail processor could recover: message (80%), execution only (12%), lead only.
        ids_roll = rng.random(r.size)
        reply_ids = np.where(ids_roll < 0.8, 0, np.where(ids_roll < 0.92, 1, 2)).astype(np.int8)
        ev.add(
            r.size,
            etype=np.int8(REPLY),
            ts=reply_ts[r],
            sentiment=sentiment,
            reply_ids=reply_ids,
            **{k: v[r] for k, v in base.items()},
        )
        alive[idx[r]] = False
        lead_replied[lead[r]] = True
        lead_positive[lead[r[sentiment == 0]]] = True
        for arr, mask in ((click_ts, c), (reply_ts, r)):
            np.fmax.at(lead_last_engaged, lead[mask], arr[mask])

    # Background page visits (some anonymous).
    bg = np.flatnonzero(rng.random(n_leads) < 0.35)
    rb = np.repeat(bg, rng.poisson(2, bg.size) + 1)
    bg_ts = rng.uniform(np.maximum(lead_created[rb], start_ts), end_ts)
    anon = rng.random(rb.size) < 0.05
    ev.add(
        rb.size,
        etype=np.int8(VISIT),
        ts=bg_ts,
        page=rng.integers(0, len(PAGES), rb.size).astype(np.int8),
        lead=np.where(anon, -1, rb),
        tenant=lead_tenant[rb],
        ua=rng.integers(0, len(HUMAN_AGENTS), rb.size).astype(np.int8),
    )

    # ---- conversion: more engagement, more conversions, with noise ------------------------
    logit = (
        -3.6
        + 2.2 * lead_positive
        + 1.0 * lead_replied
        + 0.9 * lead_clicked
        + 1.4 * lead_formed
        + 2.0 * propensity
        + rng.normal(0, 0.8, n_leads)
    )
    converts = rng.random(n_leads) < 1 / (1 + np.exp(-logit))
    anchor = np.where(np.isnan(lead_last_engaged), seq_start_day + 10 * 86400, lead_last_engaged)
    converted_at = anchor + rng.uniform(1, 45, n_leads) * 86400
    converts &= converted_at <= end_ts
    status = np.where(
        converts,
        "converted",
        np.where(lead_replied & ~lead_positive & (rng.random(n_leads) < 0.4), "disqualified", "open"),
    )

    frame = ev.frame()
    frame = frame[frame["ts"] <= end_ts].reset_index(drop=True)
    n_events = len(frame)
    frame["eid"] = rng.permutation(n_events)  # ids unrelated to order, like real ones
    # Arrival: most events the same day, 3% days late; 0.5% delivered twice (same eventId).
    late = rng.random(n_events) < 0.03
    frame["arrival_ts"] = frame["ts"] + np.where(late, rng.uniform(1, 5, n_events) * 86400, 0)
    dup = frame.sample(frac=0.005, random_state=seed).copy()
    dup["arrival_ts"] = dup["arrival_ts"] + rng.uniform(0, 2, len(dup)) * 86400
    frame = pd.concat([frame, dup], ignore_index=True)
    frame["arrival_ts"] = np.minimum(frame["arrival_ts"], end_ts)
    progress(f"simulated {n_events:,} events (+{len(dup):,} duplicate deliveries), {msg_counter:,} messages")

    messages = pd.concat(msg_blocks, ignore_index=True)
    leads = pd.DataFrame(
        {
            "lead": np.arange(n_leads),
            "tenant": lead_tenant,
            "source": LEAD_SOURCES[lead_source],
            "owner": lead_owner,
            "created_ts": lead_created,
            "status": status,
            "converted_ts": np.where(converts, converted_at, np.nan),
        }
    )
    lookups = {
        "tenants": tenant_df.assign(t=np.arange(tenants)),
        "human_ua": pd.DataFrame({"i": np.arange(len(HUMAN_AGENTS)), "ua": HUMAN_AGENTS}),
        "scanner_ua": pd.DataFrame({"i": np.arange(len(SCANNER_AGENTS)), "ua": SCANNER_AGENTS}),
        "pages": pd.DataFrame({"i": np.arange(len(PAGES)), "path": PAGES}),
    }
    files = write_dataset(out_dir, frame, messages, leads, lookups, team_rows, user_rows, wf_rows, step_rows, progress)
    return GeneratedDataset(
        out_dir, n_events + len(dup), files, tenants, n_leads, msg_counter, time.perf_counter() - started
    )
