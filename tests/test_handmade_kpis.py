"""The hand-made fixture: email-performance counts worked out by hand, asserted exactly.

Why each count is what it is (acme-corp, 2026-03-02, sequence w1, step 1, rep u1 — m1, m2, m3):
  sent 3; m3 hard-bounced -> bounced 1, delivered 2 (m1, m2).
  m1 human opens: e03 (10:30-05:00 = 15:30Z), e04 (its re-delivery in late/ is dropped), and the
     open without eventId sent twice (one event) = 3. e02 is 1.2 s after the send -> bot.
  m2 human opens: e11 (next day, still m2's send day) and the late e20 = 2. e09 isBot, e10 Mimecast -> bots.
  opens_total 5, unique_opens 2; clicks: e05 human, e06 1.9 s after the send -> bot: 1 / 1.
  replies: e07 -> m1 by messageId (positive); e22 (no ids) -> m2, L2's latest send within 30 days.
     replied 2, positive_replied 1. Leads: contacted L1 L2 L3, opened/replied L1 L2, clicked L1.
(acme-corp, 2026-03-02, w1, 1, u2 — m4; m6 has no send event so it is not sent):
  m4 soft-bounced: sent 1, bounced 1, soft 1, delivered 0; e16 (an open of a bounced message) not counted.
(acme-corp, 2026-03-04, w1, 2, u1 — m5): sent 1, delivered 1, open e18;
  e19 (no messageId, execution x1) -> m5, the latest send of x1 before it: replied 1, not positive.
(globex, 2026-03-02, gw1, 1, gu1 — g1): e27 0.5 s after the send -> bot; e28 human; e29 python-requests -> bot.
e23 (lead L9, never sent to) stays unattributed.
"""

from __future__ import annotations

from datetime import date

import pytest

from leadron.importer import import_folder
from tests.conftest import FIXTURES, build, query, query_dicts
from tests.reference_metrics import email_performance

pytestmark = pytest.mark.slow  # left out of `make test-quick`

HANDMADE = FIXTURES / "handmade"
COLUMNS = [
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
    "leads_contacted",
    "leads_opened",
    "leads_clicked",
    "leads_replied",
]

EXPECTED = {
    ("acme-corp", date(2026, 3, 2), "w1", 1, "u1"): [3, 1, 1, 0, 2, 5, 2, 1, 1, 2, 1, 3, 2, 1, 2],
    ("acme-corp", date(2026, 3, 2), "w1", 1, "u2"): [1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
    ("acme-corp", date(2026, 3, 4), "w1", 2, "u1"): [1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1],
    ("globex", date(2026, 3, 2), "gw1", 1, "gu1"): [1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0],
}


def mart_rows(settings) -> dict[tuple, list[int]]:
    rows = query_dicts(settings, "SELECT * FROM marts.mart_email_performance_daily")
    return {
        (r["tenant_id"], r["send_date"], r["workflow_id"], r["step_number"], r["user_id"]): [r[c] for c in COLUMNS]
        for r in rows
    }


@pytest.fixture(scope="module")
def handmade_build(tmp_path_factory):
    """Build from the fixture, then land the late file and rebuild only its event day."""
    from tests.conftest import use_home

    with pytest.MonkeyPatch.context() as mp:
        settings = use_home(mp, tmp_path_factory.mktemp("handmade") / "home")
        assert import_folder(HANDMADE, settings).ok
        build(settings)
        before = mart_rows(settings)
        assert import_folder(HANDMADE / "late", settings).ok
        build(settings, partition=date(2026, 3, 2))
        yield settings, before


def test_mart_equals_hand_computed_counts(handmade_build):
    settings, _ = handmade_build
    assert mart_rows(settings) == EXPECTED


def test_late_event_updates_its_send_day_and_redeliveries_do_not_double(handmade_build):
    _, before = handmade_build
    key = ("acme-corp", date(2026, 3, 2), "w1", 1, "u1")
    # Before the late file: m2 had one human open (e11), so opens_total was 4; e04 was already counted.
    assert before[key][COLUMNS.index("opens_total")] == 4
    assert before[key][COLUMNS.index("unique_opens")] == 2
    assert before[key][COLUMNS.index("sent")] == 3


def test_bot_reasons_and_reply_rules(handmade_build):
    settings, _ = handmade_build
    bots = dict(query(settings, "SELECT event_id, bot_reason FROM staging.stg_leadron__events WHERE is_bot"))
    assert bots == {
        "e02": "within_2s_of_send",
        "e06": "within_2s_of_send",
        "e09": "provider_flag",
        "e10": "scanner_user_agent",
        "e27": "within_2s_of_send",
        "e29": "scanner_user_agent",
    }
    rules = {
        r[0]: r[1:]
        for r in query(
            settings,
            "SELECT event_id, attributed_message_id, attribution_rule FROM intermediate.int_replies_attributed",
        )
    }
    assert rules == {
        "e07": ("m1", "message_id"),
        "e22": ("m2", "lead_recent_send"),
        "e19": ("m5", "workflow_execution"),
        "e23": (None, "unattributed"),
    }


def test_duplicates_dropped_in_raw_and_staging(handmade_build):
    settings, _ = handmade_build
    # 24 + 6 + 3 lines; the id-less open appears twice, e04 and e08 are re-delivered -> 30 distinct events.
    assert query(settings, "SELECT count(*), count(DISTINCT (tenant_id, event_id)) FROM raw.events") == [(30, 30)]
    assert query(settings, "SELECT count(*) FROM staging.stg_leadron__events") == [(30,)]


def test_plain_python_reference_agrees_with_hand_counts():
    """The reference used on generated data gives the hand-computed numbers too."""
    ref = email_performance([HANDMADE, HANDMADE / "late"], HANDMADE)
    assert {k: [v[c] for c in COLUMNS] for k, v in ref.items()} == EXPECTED
