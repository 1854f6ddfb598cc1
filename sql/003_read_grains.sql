-- 003_read_grains.sql - what the read API needs to stay fast on a large tenant: a daily store
-- rollup beside the hourly one, rollup keys ordered for range reads, each number's latest
-- missed call in the callback state, and a smaller DID index (docs/schema.md; bench/RESULTS.md).
--
-- Applied by `cdrctl migrate` in one transaction, as the owner of 001's objects.

SET LOCAL search_path = public;

-- ---------------------------------------------------------------------------------------------
-- Daily store rollup. A month of a tenant with 50 stores is 3,000 rows here against up to
-- 72,000 in the hourly rollup; the analytics read whole UTC days from it, the whole hours at
-- the edges of a range from the hourly one, and the rest from voip_cdr. The same measures, kept
-- by the writer from the same inserted rows, and equal to the sum of the day's hours.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE voip_cdr_rollup_store_day (
    tenant_id   uuid             NOT NULL,
    day         date             NOT NULL, -- UTC day of start_ts
    store_id    uuid             NOT NULL, -- 00000000-0000-0000-0000-000000000000 = no store
    direction   text             NOT NULL CHECK (direction IN ('in', 'out')),
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
    PRIMARY KEY (tenant_id, day, store_id, direction)
);
COMMENT ON TABLE voip_cdr_rollup_store_day IS
    'Per tenant, UTC day, store and direction: the store-hour measures summed over the day.';

INSERT INTO voip_cdr_rollup_store_day (tenant_id, day, store_id, direction, calls, answered,
        no_answer, busy, failed, billsec_sum, ring_sum_s, mos_sum, mos_n, jitter_sum, jitter_n,
        loss_sum, loss_n, poor_mos_n)
SELECT tenant_id, (hour AT TIME ZONE 'UTC')::date, store_id, direction, sum(calls),
       sum(answered), sum(no_answer), sum(busy), sum(failed), sum(billsec_sum), sum(ring_sum_s),
       sum(mos_sum), sum(mos_n), sum(jitter_sum), sum(jitter_n), sum(loss_sum), sum(loss_n),
       sum(poor_mos_n)
  FROM voip_cdr_rollup_store_hour
 GROUP BY 1, 2, 3, 4;

-- ---------------------------------------------------------------------------------------------
-- Rollup keys with the time right after the tenant: every read names a tenant and a range of
-- hours or days, and most read all stores or extensions of it. With the store or extension
-- second, such a read walked the tenant's whole history. The writer's ON CONFLICT names the
-- same columns, which any order of a unique index serves.
-- ---------------------------------------------------------------------------------------------
ALTER TABLE voip_cdr_rollup_store_hour
    DROP CONSTRAINT voip_cdr_rollup_store_hour_pkey,
    ADD PRIMARY KEY (tenant_id, hour, store_id, direction);
ALTER TABLE voip_cdr_rollup_ext_day
    DROP CONSTRAINT voip_cdr_rollup_ext_day_pkey,
    ADD PRIMARY KEY (tenant_id, day, ext_number, direction);

-- ---------------------------------------------------------------------------------------------
-- Outbound calls have no DID, and every read by DID names one: the DID index keeps only the
-- calls that have one (measured: 40% smaller, 3% less WAL per insert; bench/RESULTS.md).
-- ---------------------------------------------------------------------------------------------
DROP INDEX voip_cdr_tenant_did_start_idx;
CREATE INDEX voip_cdr_tenant_did_start_idx ON voip_cdr (tenant_id, did_e164, start_ts DESC)
    WHERE did_e164 IS NOT NULL;

-- ---------------------------------------------------------------------------------------------
-- The callback state also keeps, per number, the start of its latest missed inbound call, so
-- that callbacks_due (numbers whose latest missed call in a range is still due) is read from
-- the numbers instead of from every missed call of the range. A number that has missed calls
-- and no answered one has a row with last_answered_ts NULL. Filled here from what is stored.
-- ---------------------------------------------------------------------------------------------
ALTER TABLE voip_callback_state
    ALTER COLUMN last_answered_ts DROP NOT NULL,
    ADD COLUMN last_missed_ts timestamptz,
    ADD CHECK (last_answered_ts IS NOT NULL OR last_missed_ts IS NOT NULL);
COMMENT ON TABLE voip_callback_state IS
    'Per tenant and number, the start of the latest ANSWERED call with it (inbound: from_uri; '
    'outbound: to_uri) and of the latest missed inbound call from it, kept with GREATEST so '
    'late arrivals are right. A missed call at t is due when no row exists or '
    'last_answered_ts is NULL or <= t.';

INSERT INTO voip_callback_state AS c (tenant_id, number, last_missed_ts)
SELECT tenant_id, from_uri, max(start_ts)
  FROM voip_cdr
 WHERE direction = 'in' AND disposition <> 'ANSWERED'
 GROUP BY 1, 2
ON CONFLICT (tenant_id, number) DO UPDATE SET last_missed_ts = excluded.last_missed_ts;

-- ---------------------------------------------------------------------------------------------
-- Row-level security and grants as for the other rollups (001).
-- ---------------------------------------------------------------------------------------------
ALTER TABLE voip_cdr_rollup_store_day ENABLE ROW LEVEL SECURITY;
ALTER TABLE voip_cdr_rollup_store_day FORCE ROW LEVEL SECURITY;
CREATE POLICY cdr_reader_tenant ON voip_cdr_rollup_store_day FOR SELECT TO cdr_reader
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY cdr_writer_all ON voip_cdr_rollup_store_day FOR ALL TO cdr_writer
    USING (true) WITH CHECK (true);
CREATE POLICY cdr_owner_all ON voip_cdr_rollup_store_day FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

REVOKE ALL ON voip_cdr_rollup_store_day FROM PUBLIC;
GRANT SELECT ON voip_cdr_rollup_store_day TO cdr_reader;
GRANT SELECT, INSERT, UPDATE ON voip_cdr_rollup_store_day TO cdr_writer;
