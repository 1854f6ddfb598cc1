-- 004_agent_grain.sql - the extension rollup without the direction split, and a monthly grain
-- beside the daily one, so that by-agent reads one row per extension and month instead of two
-- per extension and day (docs/schema.md; bench/RESULTS.md).
--
-- Applied by `cdrctl migrate` in one transaction, as the owner of 001's objects.

SET LOCAL search_path = public;

-- ---------------------------------------------------------------------------------------------
-- By-agent needs the inbound calls of an extension only to count the missed ones: that count
-- becomes a measure (in_missed), and both directions share a row. A month of a tenant with 500
-- extensions was 31,000 rows (measured: 30 ms to add up); it is 15,500 rows per day and 500
-- per month here. The extension's latest user stays; its store, which nothing read, goes.
-- Both tables are recomputed from voip_cdr below, as `cdrctl rollups rebuild` would.
-- ---------------------------------------------------------------------------------------------
DROP TABLE voip_cdr_rollup_ext_day;

CREATE TABLE voip_cdr_rollup_ext_day (
    tenant_id   uuid             NOT NULL,
    day         date             NOT NULL, -- UTC day of start_ts
    ext_number  text             NOT NULL,
    calls       bigint           NOT NULL DEFAULT 0,
    answered    bigint           NOT NULL DEFAULT 0,
    no_answer   bigint           NOT NULL DEFAULT 0,
    busy        bigint           NOT NULL DEFAULT 0,
    failed      bigint           NOT NULL DEFAULT 0,
    billsec_sum bigint           NOT NULL DEFAULT 0,
    ring_sum_s  double precision NOT NULL DEFAULT 0,
    mos_sum     double precision NOT NULL DEFAULT 0,
    mos_n       bigint           NOT NULL DEFAULT 0,
    jitter_sum  double precision NOT NULL DEFAULT 0,
    jitter_n    bigint           NOT NULL DEFAULT 0,
    loss_sum    double precision NOT NULL DEFAULT 0,
    loss_n      bigint           NOT NULL DEFAULT 0,
    poor_mos_n  bigint           NOT NULL DEFAULT 0,
    in_missed   bigint           NOT NULL DEFAULT 0, -- inbound calls not ANSWERED
    user_id     uuid,                                -- of the latest call with one
    PRIMARY KEY (tenant_id, day, ext_number)
);
COMMENT ON TABLE voip_cdr_rollup_ext_day IS
    'Per tenant, UTC day and extension (both directions): counts and sums for by-agent and qos.';

CREATE TABLE voip_cdr_rollup_ext_month (
    tenant_id   uuid             NOT NULL,
    month       date             NOT NULL, -- first day of the UTC month of start_ts
    ext_number  text             NOT NULL,
    calls       bigint           NOT NULL DEFAULT 0,
    answered    bigint           NOT NULL DEFAULT 0,
    no_answer   bigint           NOT NULL DEFAULT 0,
    busy        bigint           NOT NULL DEFAULT 0,
    failed      bigint           NOT NULL DEFAULT 0,
    billsec_sum bigint           NOT NULL DEFAULT 0,
    ring_sum_s  double precision NOT NULL DEFAULT 0,
    mos_sum     double precision NOT NULL DEFAULT 0,
    mos_n       bigint           NOT NULL DEFAULT 0,
    jitter_sum  double precision NOT NULL DEFAULT 0,
    jitter_n    bigint           NOT NULL DEFAULT 0,
    loss_sum    double precision NOT NULL DEFAULT 0,
    loss_n      bigint           NOT NULL DEFAULT 0,
    poor_mos_n  bigint           NOT NULL DEFAULT 0,
    in_missed   bigint           NOT NULL DEFAULT 0, -- inbound calls not ANSWERED
    user_id     uuid,                                -- of the latest call with one
    PRIMARY KEY (tenant_id, month, ext_number),
    CHECK (month = date_trunc('month', month)::date)
);
COMMENT ON TABLE voip_cdr_rollup_ext_month IS
    'Per tenant, UTC month and extension: the extension-day measures summed over the month.';

INSERT INTO voip_cdr_rollup_ext_day (tenant_id, day, ext_number, calls, answered, no_answer,
        busy, failed, billsec_sum, ring_sum_s, mos_sum, mos_n, jitter_sum, jitter_n, loss_sum,
        loss_n, poor_mos_n, in_missed, user_id)
SELECT tenant_id, (start_ts AT TIME ZONE 'UTC')::date, ext_number, count(*),
       count(*) FILTER (WHERE disposition = 'ANSWERED'),
       count(*) FILTER (WHERE disposition = 'NO_ANSWER'),
       count(*) FILTER (WHERE disposition = 'BUSY'),
       count(*) FILTER (WHERE disposition = 'FAILED'),
       coalesce(sum(billsec) FILTER (WHERE disposition = 'ANSWERED'), 0),
       coalesce(sum(extract(epoch FROM answer_ts - start_ts)::float8)
                FILTER (WHERE disposition = 'ANSWERED'), 0),
       coalesce(sum(mos::float8), 0), count(mos),
       coalesce(sum(jitter_ms::float8), 0), count(jitter_ms),
       coalesce(sum(loss_pct::float8), 0), count(loss_pct),
       count(*) FILTER (WHERE mos < 3.6::real),
       count(*) FILTER (WHERE direction = 'in' AND disposition <> 'ANSWERED'),
       (array_agg(user_id ORDER BY start_ts DESC, call_id DESC)
            FILTER (WHERE user_id IS NOT NULL))[1]
  FROM voip_cdr
 WHERE ext_number IS NOT NULL
 GROUP BY 1, 2, 3;

-- The month's user is that of its latest day with one: the latest call with a user.
INSERT INTO voip_cdr_rollup_ext_month (tenant_id, month, ext_number, calls, answered, no_answer,
        busy, failed, billsec_sum, ring_sum_s, mos_sum, mos_n, jitter_sum, jitter_n, loss_sum,
        loss_n, poor_mos_n, in_missed, user_id)
SELECT tenant_id, date_trunc('month', day)::date, ext_number, sum(calls), sum(answered),
       sum(no_answer), sum(busy), sum(failed), sum(billsec_sum), sum(ring_sum_s), sum(mos_sum),
       sum(mos_n), sum(jitter_sum), sum(jitter_n), sum(loss_sum), sum(loss_n), sum(poor_mos_n),
       sum(in_missed),
       (array_agg(user_id ORDER BY day DESC) FILTER (WHERE user_id IS NOT NULL))[1]
  FROM voip_cdr_rollup_ext_day
 GROUP BY 1, 2, 3;

-- ---------------------------------------------------------------------------------------------
-- Row-level security and grants as for the other rollups (001, 003).
-- ---------------------------------------------------------------------------------------------
ALTER TABLE voip_cdr_rollup_ext_day ENABLE ROW LEVEL SECURITY;
ALTER TABLE voip_cdr_rollup_ext_day FORCE ROW LEVEL SECURITY;
CREATE POLICY cdr_reader_tenant ON voip_cdr_rollup_ext_day FOR SELECT TO cdr_reader
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY cdr_writer_all ON voip_cdr_rollup_ext_day FOR ALL TO cdr_writer
    USING (true) WITH CHECK (true);
CREATE POLICY cdr_owner_all ON voip_cdr_rollup_ext_day FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE voip_cdr_rollup_ext_month ENABLE ROW LEVEL SECURITY;
ALTER TABLE voip_cdr_rollup_ext_month FORCE ROW LEVEL SECURITY;
CREATE POLICY cdr_reader_tenant ON voip_cdr_rollup_ext_month FOR SELECT TO cdr_reader
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY cdr_writer_all ON voip_cdr_rollup_ext_month FOR ALL TO cdr_writer
    USING (true) WITH CHECK (true);
CREATE POLICY cdr_owner_all ON voip_cdr_rollup_ext_month FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

REVOKE ALL ON voip_cdr_rollup_ext_day, voip_cdr_rollup_ext_month FROM PUBLIC;
GRANT SELECT ON voip_cdr_rollup_ext_day, voip_cdr_rollup_ext_month TO cdr_reader;
GRANT SELECT, INSERT, UPDATE ON voip_cdr_rollup_ext_day, voip_cdr_rollup_ext_month TO cdr_writer;
