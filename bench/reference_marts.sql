-- Hand-written DuckDB reference for bench/marts_10m.py: the same marts as the dbt project, written
-- directly against the warehouse's raw tables (attached read-only as `wh`), with DuckDB idioms
-- (QUALIFY, FILTER, ASOF) and no framework, no tests. Statements are separated by ";\n".
-- The as-of time comes from the variable as_of (SET VARIABLE by the bench).

CREATE TABLE leads AS
SELECT tenant_id, lead_id, source AS lead_source, owner_user_id, status AS lead_status,
       CAST(converted_at AS TIMESTAMP) AS converted_at
FROM wh.raw.leads
QUALIFY snapshot_id = max(snapshot_id) OVER (PARTITION BY tenant_id);

CREATE TABLE dim_messages AS
SELECT tenant_id, message_id, lead_id, user_id, workflow_id, workflow_execution_id,
       CAST(step_number AS INTEGER) AS step_number, CAST(sent_at AS TIMESTAMP) AS sent_at
FROM wh.raw.messages
QUALIFY snapshot_id = max(snapshot_id) OVER (PARTITION BY tenant_id);

CREATE TABLE team_history AS
SELECT tenant_id, user_id, team_id,
       CASE WHEN row_number() OVER w = 1 THEN TIMESTAMP '1900-01-01' ELSE CAST(snapshot_at AS TIMESTAMP) END AS valid_from,
       CAST(lead(snapshot_at) OVER w AS TIMESTAMP) AS valid_to
FROM wh.raw.users
WINDOW w AS (PARTITION BY tenant_id, user_id ORDER BY snapshot_at);

-- Events: first arrival of each (tenant, event id), with the bot rule of METRICS.md.
CREATE TABLE events AS
WITH dedup AS (
    SELECT * FROM wh.raw.events
    QUALIFY row_number() OVER (PARTITION BY tenant_id, event_id
                               ORDER BY received_at, batch_id, source, source_line) = 1
),
first_sends AS (
    SELECT tenant_id, message_id, min(occurred_at) AS sent_at
    FROM dedup WHERE event_type = 'email_sent' AND message_id IS NOT NULL GROUP BY ALL
),
scanner AS (
    SELECT DISTINCT d.tenant_id, d.event_id
    FROM dedup AS d JOIN wh.reference.scanner_user_agents AS s ON contains(lower(d.user_agent), lower(s.pattern))
    WHERE d.event_type IN ('email_open', 'link_click')
)
SELECT d.tenant_id, d.event_id, d.event_type, d.lead_id, d.message_id, d.workflow_execution_id,
       CAST(d.occurred_at AS TIMESTAMP) AS occurred_at, CAST(d.event_date AS DATE) AS event_date, d.user_id,
       d.workflow_id, d.step_number, d.url, d.form_id,
       CASE WHEN d.event_type = 'email_bounce' THEN coalesce(d.bounce_type, 'hard') END AS bounce_type, d.sentiment,
       d.event_type IN ('email_open', 'link_click') AND (coalesce(d.is_bot, false) OR s.event_id IS NOT NULL
           OR coalesce(d.occurred_at >= f.sent_at AND d.occurred_at < f.sent_at + INTERVAL 2 SECOND, false)) AS is_bot
FROM dedup AS d
LEFT JOIN first_sends AS f USING (tenant_id, message_id)
LEFT JOIN scanner AS s USING (tenant_id, event_id);

CREATE TABLE sends AS
SELECT e.tenant_id, e.message_id, e.occurred_at AS sent_at,
       coalesce(m.lead_id, e.lead_id) AS lead_id, coalesce(m.user_id, e.user_id) AS user_id,
       coalesce(m.workflow_id, e.workflow_id) AS workflow_id,
       coalesce(m.workflow_execution_id, e.workflow_execution_id) AS workflow_execution_id,
       coalesce(m.step_number, e.step_number) AS step_number
FROM events AS e LEFT JOIN dim_messages AS m USING (tenant_id, message_id)
WHERE e.event_type = 'email_sent' AND e.message_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY e.tenant_id, e.message_id ORDER BY e.occurred_at, e.event_id) = 1;

-- Replies attributed by messageId, else the execution's latest earlier send, else the lead's latest
-- send in the 30 days before.
CREATE TABLE replies AS
WITH r AS (SELECT * FROM events WHERE event_type = 'email_reply'),
known AS (SELECT tenant_id, message_id FROM sends UNION SELECT tenant_id, message_id FROM dim_messages),
by_execution AS (
    SELECT r.tenant_id, r.event_id, arg_max(s.message_id, (s.sent_at, s.message_id)) AS message_id
    FROM r JOIN sends AS s ON r.tenant_id = s.tenant_id AND r.lead_id = s.lead_id AND s.sent_at < r.occurred_at
        AND r.workflow_execution_id = s.workflow_execution_id
    GROUP BY ALL
),
by_lead AS (
    SELECT r.tenant_id, r.event_id, arg_max(s.message_id, (s.sent_at, s.message_id)) AS message_id
    FROM r JOIN sends AS s ON r.tenant_id = s.tenant_id AND r.lead_id = s.lead_id AND s.sent_at < r.occurred_at
        AND s.sent_at >= r.occurred_at - INTERVAL 30 DAY
    GROUP BY ALL
)
SELECT r.tenant_id, r.event_id, r.occurred_at AS replied_at, r.sentiment,
       coalesce(k.message_id, x.message_id, l.message_id) AS message_id
FROM r
LEFT JOIN known AS k ON k.tenant_id = r.tenant_id AND k.message_id = r.message_id
LEFT JOIN by_execution AS x ON x.tenant_id = r.tenant_id AND x.event_id = r.event_id
LEFT JOIN by_lead AS l ON l.tenant_id = r.tenant_id AND l.event_id = r.event_id;

CREATE TABLE messages AS
WITH engagement AS (
    SELECT tenant_id, message_id,
           count(*) FILTER (event_type = 'email_bounce') AS bounces,
           count(*) FILTER (event_type = 'email_bounce' AND bounce_type = 'hard') AS hard_bounces,
           count(*) FILTER (event_type = 'email_open' AND NOT is_bot) AS human_opens,
           count(*) FILTER (event_type = 'link_click' AND NOT is_bot) AS human_clicks
    FROM events WHERE message_id IS NOT NULL AND event_type IN ('email_bounce', 'email_open', 'link_click')
    GROUP BY ALL
),
reply_counts AS (
    SELECT tenant_id, message_id, count(*) AS replies, count(*) FILTER (sentiment = 'positive') AS positive_replies,
           min(replied_at) AS first_replied_at
    FROM replies WHERE message_id IS NOT NULL GROUP BY ALL
)
SELECT s.*, CAST(s.sent_at AS DATE) AS send_date,
       coalesce(e.bounces, 0) > 0 AS is_bounced,
       coalesce(e.hard_bounces, 0) > 0 AS is_hard_bounce,
       coalesce(e.bounces, 0) > 0 AND coalesce(e.hard_bounces, 0) = 0 AS is_soft_bounce,
       coalesce(e.bounces, 0) = 0 AS is_delivered,
       coalesce(e.human_opens, 0) AS human_opens, coalesce(e.human_clicks, 0) AS human_clicks,
       coalesce(r.replies, 0) AS replies, coalesce(r.positive_replies, 0) AS positive_replies, r.first_replied_at
FROM sends AS s
LEFT JOIN engagement AS e USING (tenant_id, message_id)
LEFT JOIN reply_counts AS r USING (tenant_id, message_id);

CREATE TABLE ref_email_performance_daily AS
SELECT tenant_id, send_date, workflow_id, step_number, user_id,
       count(*) AS sent,
       count(*) FILTER (is_bounced) AS bounced,
       count(*) FILTER (is_hard_bounce) AS hard_bounced,
       count(*) FILTER (is_soft_bounce) AS soft_bounced,
       count(*) FILTER (is_delivered) AS delivered,
       coalesce(sum(human_opens) FILTER (is_delivered), 0) AS opens_total,
       count(*) FILTER (is_delivered AND human_opens > 0) AS unique_opens,
       coalesce(sum(human_clicks) FILTER (is_delivered), 0) AS clicks_total,
       count(*) FILTER (is_delivered AND human_clicks > 0) AS unique_clicks,
       count(*) FILTER (is_delivered AND replies > 0) AS replied,
       count(*) FILTER (is_delivered AND positive_replies > 0) AS positive_replied,
       count(DISTINCT lead_id) AS leads_contacted,
       count(DISTINCT lead_id) FILTER (is_delivered AND human_opens > 0) AS leads_opened,
       count(DISTINCT lead_id) FILTER (is_delivered AND human_clicks > 0) AS leads_clicked,
       count(DISTINCT lead_id) FILTER (is_delivered AND replies > 0) AS leads_replied
FROM messages GROUP BY ALL;

CREATE TABLE ref_kpis_daily AS
WITH perf AS (
    SELECT tenant_id, send_date AS kpi_date, count(*) AS emails_sent,
           count(*) FILTER (is_delivered) AS emails_delivered,
           count(*) FILTER (is_delivered AND human_opens > 0) AS unique_opens,
           count(*) FILTER (is_delivered AND human_clicks > 0) AS unique_clicks,
           count(*) FILTER (is_delivered AND replies > 0) AS replies,
           count(*) FILTER (is_bounced) AS bounces,
           count(DISTINCT lead_id) AS leads_contacted,
           count(DISTINCT lead_id) FILTER (is_delivered AND (human_opens > 0 OR human_clicks > 0 OR replies > 0))
               AS leads_engaged,
           count(DISTINCT lead_id) FILTER (is_delivered AND replies > 0) AS leads_replied
    FROM messages GROUP BY ALL
),
conv AS (
    SELECT tenant_id, CAST(converted_at AS DATE) AS kpi_date, count(*) AS leads_converted
    FROM leads WHERE converted_at IS NOT NULL GROUP BY ALL
)
SELECT tenant_id, kpi_date, coalesce(emails_sent, 0) AS emails_sent,
       coalesce(emails_delivered, 0) AS emails_delivered, coalesce(unique_opens, 0) AS unique_opens,
       coalesce(unique_clicks, 0) AS unique_clicks, coalesce(replies, 0) AS replies,
       coalesce(bounces, 0) AS bounces,
       coalesce(unique_opens, 0) / nullif(emails_delivered, 0) AS open_rate,
       coalesce(replies, 0) / nullif(emails_delivered, 0) AS reply_rate,
       coalesce(leads_contacted, 0) AS leads_contacted, coalesce(leads_engaged, 0) AS leads_engaged,
       coalesce(leads_replied, 0) AS leads_replied, coalesce(leads_converted, 0) AS leads_converted
FROM perf FULL JOIN conv USING (tenant_id, kpi_date);

CREATE TABLE ref_activity_daily AS
SELECT tenant_id, event_date, event_type, count(*) AS events, count(*) FILTER (NOT is_bot) AS human_events,
       count(*) FILTER (is_bot) AS bot_events, count(DISTINCT lead_id) AS unique_leads
FROM events GROUP BY ALL;

CREATE TABLE ref_lead_engagement AS
WITH per_lead AS (
    SELECT tenant_id, lead_id,
           count(*) FILTER (event_type = 'email_sent') AS sends,
           count(*) FILTER (event_type = 'email_open' AND NOT is_bot) AS opens,
           count(*) FILTER (event_type = 'link_click' AND NOT is_bot) AS clicks,
           count(*) FILTER (event_type = 'email_reply') AS replies,
           count(*) FILTER (event_type = 'email_bounce') AS bounces,
           count(*) FILTER (event_type = 'form_submission') AS form_submissions,
           count(*) FILTER (event_type = 'page_visit') AS page_visits,
           min(occurred_at) AS first_activity_at, max(occurred_at) AS last_activity_at,
           max(occurred_at) FILTER (weight > 0) AS last_human_engagement_at,
           coalesce(sum(weight * power(0.5, date_diff('millisecond', occurred_at, getvariable('as_of'))
                                        / (86400000.0 * 14))) FILTER (weight > 0), 0) AS engagement_score
    FROM (SELECT *, CASE WHEN is_bot OR occurred_at > getvariable('as_of') THEN 0
                         WHEN event_type = 'email_open' THEN 1 WHEN event_type = 'link_click' THEN 3
                         WHEN event_type = 'page_visit' THEN 2 WHEN event_type = 'form_submission' THEN 8
                         WHEN event_type = 'email_reply' THEN 10 ELSE 0 END AS weight
          FROM events WHERE lead_id IS NOT NULL)
    GROUP BY ALL
)
SELECT tenant_id, lead_id, l.lead_source, l.owner_user_id, l.lead_status, l.converted_at, p.* EXCLUDE (tenant_id, lead_id),
       CASE ntile(4) OVER (PARTITION BY tenant_id ORDER BY coalesce(p.engagement_score, 0), lead_id)
           WHEN 4 THEN 'hot' WHEN 3 THEN 'warm' ELSE 'cold' END AS engagement_tier
FROM leads AS l FULL JOIN per_lead AS p USING (tenant_id, lead_id);

CREATE TABLE ref_cohort_retention AS
WITH cohorts AS (
    SELECT tenant_id, lead_id, CAST(date_trunc('week', min(occurred_at)) AS DATE) AS cohort_week
    FROM events WHERE event_type = 'email_sent' AND lead_id IS NOT NULL GROUP BY ALL
),
active AS (
    SELECT DISTINCT tenant_id, lead_id, CAST(date_trunc('week', occurred_at) AS DATE) AS week
    FROM events WHERE NOT is_bot AND lead_id IS NOT NULL
        AND event_type IN ('email_open', 'link_click', 'email_reply', 'form_submission', 'page_visit')
),
grid AS (
    SELECT c.*, o.week_offset, CAST(c.cohort_week + to_days(CAST(7 * o.week_offset AS INTEGER)) AS DATE) AS week_start
    FROM cohorts AS c CROSS JOIN range(0, 13) AS o(week_offset)
    WHERE c.cohort_week + to_days(CAST(7 * (o.week_offset + 1) AS INTEGER)) <= CAST(getvariable('as_of') AS DATE)
)
SELECT g.tenant_id, g.cohort_week, g.week_offset, count(*) AS cohort_size, count(a.lead_id) AS active_leads,
       count(a.lead_id) / count(*) AS retention_rate,
       count(*) FILTER (l.converted_at < g.week_start + INTERVAL 7 DAY) AS converted_leads,
       count(*) FILTER (l.converted_at < g.week_start + INTERVAL 7 DAY) / count(*) AS conversion_rate
FROM grid AS g
LEFT JOIN active AS a ON a.tenant_id = g.tenant_id AND a.lead_id = g.lead_id AND a.week = g.week_start
LEFT JOIN leads AS l ON l.tenant_id = g.tenant_id AND l.lead_id = g.lead_id
GROUP BY ALL;

CREATE TABLE ref_team_performance AS
SELECT m.tenant_id, t.team_id, m.user_id, CAST(date_trunc('week', m.sent_at) AS DATE) AS week_start,
       count(*) AS sent, count(*) FILTER (m.is_bounced) AS bounced, count(*) FILTER (m.is_delivered) AS delivered,
       count(*) FILTER (m.is_delivered AND m.human_opens > 0) AS unique_opens,
       count(*) FILTER (m.is_delivered AND m.human_clicks > 0) AS unique_clicks,
       count(*) FILTER (m.is_delivered AND m.replies > 0) AS replied,
       count(DISTINCT m.lead_id) FILTER (l.converted_at >= m.sent_at) AS leads_converted,
       median(date_diff('second', m.sent_at, m.first_replied_at)) FILTER (m.is_delivered AND m.replies > 0)
           AS median_seconds_to_first_reply,
       count(*) / nullif(count(*) FILTER (m.is_delivered AND m.replies > 0), 0) AS touches_per_reply
FROM messages AS m
LEFT JOIN team_history AS t ON t.tenant_id = m.tenant_id AND t.user_id = m.user_id
    AND m.sent_at >= t.valid_from AND (t.valid_to IS NULL OR m.sent_at < t.valid_to)
LEFT JOIN leads AS l ON l.tenant_id = m.tenant_id AND l.lead_id = m.lead_id
GROUP BY ALL;

CREATE TABLE ref_sequence_steps AS
WITH m AS (SELECT * FROM messages WHERE workflow_id IS NOT NULL AND step_number IS NOT NULL),
x AS (
    SELECT tenant_id, workflow_id, workflow_execution_id, min(step_number) FILTER (replies > 0) AS first_reply_step,
           bool_or(step_number = 1) AS started
    FROM m GROUP BY ALL
),
steps AS (
    SELECT m.tenant_id, m.workflow_id, m.step_number, count(*) AS sends,
           count(DISTINCT m.workflow_execution_id) AS executions,
           count(DISTINCT m.workflow_execution_id) FILTER (x.first_reply_step IS NULL OR x.first_reply_step >= m.step_number)
               AS not_yet_replied,
           count(DISTINCT m.workflow_execution_id) FILTER (x.first_reply_step = m.step_number) AS replied_at_step
    FROM m JOIN x USING (tenant_id, workflow_id, workflow_execution_id) GROUP BY ALL
)
SELECT s.*, s.replied_at_step / nullif(s.not_yet_replied, 0) AS step_reply_rate,
       count(*) FILTER (x.started) AS started,
       count(*) FILTER (x.started AND x.first_reply_step <= s.step_number) AS replied_by_step
FROM steps AS s JOIN x USING (tenant_id, workflow_id) GROUP BY ALL;

CREATE TABLE ref_form_submissions_daily AS
WITH f AS (SELECT * FROM events WHERE event_type = 'form_submission'),
firsts AS (
    SELECT f.tenant_id, f.form_id, f.event_date, f.lead_id, min(f.occurred_at) AS first_at
    FROM f WHERE f.lead_id IS NOT NULL GROUP BY ALL
),
converted AS (
    SELECT firsts.tenant_id, form_id, event_date, count(*) AS converted
    FROM firsts JOIN leads AS l USING (tenant_id, lead_id) WHERE l.converted_at >= firsts.first_at GROUP BY ALL
)
SELECT tenant_id, form_id, event_date AS submission_date, count(*) AS submissions,
       count(DISTINCT lead_id) AS unique_leads, any_value(coalesce(c.converted, 0)) AS leads_converted_afterwards
FROM f LEFT JOIN converted AS c USING (tenant_id, form_id, event_date) GROUP BY ALL;

CREATE TABLE ref_page_visits_daily AS
SELECT tenant_id, url AS page_url, event_date AS visit_date, count(*) AS visits, count(DISTINCT lead_id) AS unique_leads
FROM events WHERE event_type = 'page_visit' GROUP BY ALL;

-- Default email funnel (sent -> open -> click -> reply, 7 days, per lead, human events), by cohort week
-- of step 1 and workflow: ASOF joins from each attempt's step-1 event, the furthest attempt per lead.
CREATE TABLE ref_funnel_email AS
WITH ev AS (
    SELECT tenant_id, lead_id, event_type, occurred_at, message_id FROM events
    WHERE lead_id IS NOT NULL AND NOT is_bot AND event_type IN ('email_sent', 'email_open', 'link_click', 'email_reply')
),
o AS (SELECT * FROM ev WHERE event_type = 'email_open'),
c AS (SELECT * FROM ev WHERE event_type = 'link_click'),
r AS (SELECT * FROM ev WHERE event_type = 'email_reply'),
a AS (
    SELECT s.tenant_id, s.lead_id, s.occurred_at AS t1, s.message_id AS m1,
           CASE WHEN o.occurred_at <= s.occurred_at + INTERVAL 7 DAY THEN o.occurred_at END AS t2
    FROM (SELECT * FROM ev WHERE event_type = 'email_sent') AS s
    ASOF LEFT JOIN o ON s.tenant_id = o.tenant_id AND s.lead_id = o.lead_id AND o.occurred_at >= s.occurred_at
),
b AS (
    SELECT a.*, CASE WHEN c.occurred_at <= a.t1 + INTERVAL 7 DAY THEN c.occurred_at END AS t3
    FROM a ASOF LEFT JOIN c ON a.tenant_id = c.tenant_id AND a.lead_id = c.lead_id AND c.occurred_at >= a.t2
),
d AS (
    SELECT b.*, CASE WHEN r.occurred_at <= b.t1 + INTERVAL 7 DAY THEN r.occurred_at END AS t4
    FROM b ASOF LEFT JOIN r ON b.tenant_id = r.tenant_id AND b.lead_id = r.lead_id AND r.occurred_at >= b.t3
),
best AS (
    SELECT *, 1 + (t2 IS NOT NULL)::INT + (t3 IS NOT NULL)::INT + (t4 IS NOT NULL)::INT AS depth FROM d
    QUALIFY row_number() OVER (PARTITION BY tenant_id, lead_id ORDER BY depth DESC, t1) = 1
)
SELECT b.tenant_id, CAST(date_trunc('week', b.t1) AS DATE) AS cohort_week, m.workflow_id,
       count(*) AS step1, count(*) FILTER (depth >= 2) AS step2, count(*) FILTER (depth >= 3) AS step3,
       count(*) FILTER (depth >= 4) AS step4,
       median(date_diff('millisecond', t1, t2) / 1000.0) FILTER (depth >= 2) AS step2_median_seconds,
       median(date_diff('millisecond', t2, t3) / 1000.0) FILTER (depth >= 3) AS step3_median_seconds,
       median(date_diff('millisecond', t3, t4) / 1000.0) FILTER (depth >= 4) AS step4_median_seconds
FROM best AS b LEFT JOIN messages AS m ON m.tenant_id = b.tenant_id AND m.message_id = b.m1
GROUP BY ALL;

CREATE TABLE ref_funnel_web AS
WITH v AS (SELECT tenant_id, lead_id, occurred_at FROM events
           WHERE lead_id IS NOT NULL AND NOT is_bot AND event_type = 'page_visit'),
f AS (SELECT tenant_id, lead_id, occurred_at FROM events
      WHERE lead_id IS NOT NULL AND NOT is_bot AND event_type = 'form_submission'),
a AS (
    SELECT v.tenant_id, v.lead_id, v.occurred_at AS t1,
           CASE WHEN f.occurred_at <= v.occurred_at + INTERVAL 7 DAY THEN f.occurred_at END AS t2
    FROM v ASOF LEFT JOIN f ON v.tenant_id = f.tenant_id AND v.lead_id = f.lead_id AND f.occurred_at >= v.occurred_at
),
best AS (
    SELECT * FROM a QUALIFY row_number() OVER (PARTITION BY tenant_id, lead_id ORDER BY (t2 IS NOT NULL) DESC, t1) = 1
)
SELECT b.tenant_id, CAST(date_trunc('week', b.t1) AS DATE) AS cohort_week, l.lead_source,
       count(*) AS step1, count(t2) AS step2, median(date_diff('millisecond', t1, t2) / 1000.0) AS step2_median_seconds
FROM best AS b LEFT JOIN leads AS l USING (tenant_id, lead_id)
GROUP BY ALL
;

-- The event grain the read API publishes: each event with its message's workflow, step and rep, the rep's
-- team at the event's time and the lead's source, stored by tenant and lead.
CREATE TABLE ref_fct_events AS
SELECT e.tenant_id, e.event_id, e.event_type, e.occurred_at, e.event_date, e.lead_id, e.message_id,
       e.workflow_execution_id, coalesce(m.workflow_id, d.workflow_id) AS workflow_id,
       coalesce(m.step_number, d.step_number) AS step_number, coalesce(m.user_id, d.user_id) AS user_id, t.team_id,
       l.lead_source, e.url, e.form_id, e.bounce_type, e.sentiment, e.is_bot
FROM events AS e
LEFT JOIN messages AS m ON e.tenant_id = m.tenant_id AND e.message_id = m.message_id  -- known from a send
LEFT JOIN dim_messages AS d ON e.tenant_id = d.tenant_id AND e.message_id = d.message_id  -- or the dimension only
LEFT JOIN team_history AS t ON e.tenant_id = t.tenant_id AND coalesce(m.user_id, d.user_id) = t.user_id
     AND e.occurred_at >= t.valid_from
     AND (t.valid_to IS NULL OR e.occurred_at < t.valid_to)
LEFT JOIN leads AS l ON e.tenant_id = l.tenant_id AND e.lead_id = l.lead_id
ORDER BY e.tenant_id, e.lead_id, e.occurred_at, e.event_id
