-- 001_schema.sql - roles, the partitioned CDR table, rollups, callback state, stores, rejects,
-- row-level security and the monthly partition functions.
--
-- Applied by `cdrctl migrate` in one transaction, as the role that will own every object here
-- (it needs CREATEROLE for the two roles below and CREATE on schema public). That owner runs
-- migrations and maintenance; cdr_writer is the writer's login, cdr_reader the query API's.
--
-- Rollup grains, chosen by measurement on 10M CDRs:
--   (tenant, store, hour)            380k rows, a one-month KPI answered in ~1 ms;
--   (tenant, store, extension, hour) 6.4M rows, 22-64 ms for the same question.
-- So the store grain is kept hourly (summary, by-store and QoS read it), the extension grain
-- daily (by-agent reads it), and the partial hours or days at the edges of a requested range
-- are read from the raw rows.

SET LOCAL search_path = public;

-- Roles are cluster-wide: another database of the same cluster may already have made them.
-- Their passwords and connection limits are the operator's business.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'cdr_writer') THEN
        BEGIN
            CREATE ROLE cdr_writer LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- made meanwhile by a migration of another database
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'cdr_reader') THEN
        BEGIN
            CREATE ROLE cdr_reader LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Call detail records: one partition per UTC month (voip_cdr_YYYY_MM), made by
-- cdr_ensure_month(). There is no default partition on purpose: a row for a month nobody
-- prepared is refused (the writer keeps it in voip_cdr_rejects) instead of piling up in a
-- partition that later blocks creating that month.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE voip_cdr (
    tenant_id     uuid        NOT NULL,
    call_id       text        NOT NULL,
    start_ts      timestamptz NOT NULL,
    store_id      uuid,
    sip_domain    text        NOT NULL,
    direction     text        NOT NULL CHECK (direction IN ('in', 'out')),
    from_uri      text        NOT NULL,
    to_uri        text        NOT NULL,
    did_e164      text,
    ext_number    text,
    user_id       uuid,
    answer_ts     timestamptz,
    end_ts        timestamptz NOT NULL,
    billsec       integer     NOT NULL CHECK (billsec >= 0),
    disposition   text        NOT NULL
                  CHECK (disposition IN ('ANSWERED', 'NO_ANSWER', 'BUSY', 'FAILED')),
    recording_url text,
    mos           real        CHECK (mos BETWEEN 1 AND 5),
    jitter_ms     real        CHECK (jitter_ms >= 0),
    loss_pct      real        CHECK (loss_pct BETWEEN 0 AND 100),
    meta_json     jsonb,
    ingested_at   timestamptz NOT NULL DEFAULT now(),
    -- The same rules the ingest validation applies; the rollups' ring time relies on them.
    CONSTRAINT voip_cdr_times_ordered
        CHECK (start_ts <= end_ts AND (answer_ts IS NULL OR answer_ts BETWEEN start_ts AND end_ts)),
    CONSTRAINT voip_cdr_answer_iff_answered
        CHECK ((answer_ts IS NOT NULL) = (disposition = 'ANSWERED')),
    -- Dedup key of the writer (INSERT ... ON CONFLICT DO NOTHING) and the lookup by call_id.
    PRIMARY KEY (tenant_id, call_id, start_ts)
) PARTITION BY RANGE (start_ts);

COMMENT ON TABLE voip_cdr IS
    'Call detail records, partitioned by UTC month of start_ts (voip_cdr_YYYY_MM).';

-- Every index costs write throughput (about 30k rows/s with five secondary btrees against 88k
-- with none), so each one below serves a read of the query API, and each leads with tenant_id.
CREATE INDEX voip_cdr_tenant_start_idx ON voip_cdr (tenant_id, start_ts DESC, call_id);
COMMENT ON INDEX voip_cdr_tenant_start_idx IS
    '/api/cdr without filters: newest first, keyset paging on (start_ts, call_id); '
    'also the raw-row edges of the analytics ranges.';

CREATE INDEX voip_cdr_tenant_store_start_idx ON voip_cdr (tenant_id, store_id, start_ts DESC);
COMMENT ON INDEX voip_cdr_tenant_store_start_idx IS
    '/api/cdr?store_id=, newest first.';

CREATE INDEX voip_cdr_tenant_ext_start_idx ON voip_cdr (tenant_id, ext_number, start_ts DESC);
COMMENT ON INDEX voip_cdr_tenant_ext_start_idx IS
    '/api/cdr?ext=, newest first.';

CREATE INDEX voip_cdr_tenant_did_start_idx ON voip_cdr (tenant_id, did_e164, start_ts DESC);
COMMENT ON INDEX voip_cdr_tenant_did_start_idx IS
    '/api/cdr?did_e164= and /api/analytics/missed?did_e164=, newest first.';

CREATE INDEX voip_cdr_tenant_missed_idx ON voip_cdr (tenant_id, start_ts DESC)
    WHERE direction = 'in' AND disposition <> 'ANSWERED';
COMMENT ON INDEX voip_cdr_tenant_missed_idx IS
    '/api/analytics/missed: inbound calls not answered, newest first.';

-- ---------------------------------------------------------------------------------------------
-- Writer staging: COPY lands here, then INSERT ... SELECT ... ON CONFLICT DO NOTHING moves the
-- rows into voip_cdr. Columns in CDR_CODEC_CDR_COLUMNS order (common/cdr_codec.h). Rows live
-- only inside one writer transaction (copied, moved and deleted before COMMIT), so concurrent
-- writers never see one another's rows; UNLOGGED because nothing here must survive a crash.
-- ---------------------------------------------------------------------------------------------
CREATE UNLOGGED TABLE voip_cdr_staging (
    tenant_id     uuid,
    store_id      uuid,
    store_name    text,
    sip_domain    text,
    call_id       text,
    direction     text,
    from_uri      text,
    to_uri        text,
    did_e164      text,
    ext_number    text,
    user_id       uuid,
    start_ts      timestamptz,
    answer_ts     timestamptz,
    end_ts        timestamptz,
    billsec       integer,
    disposition   text,
    recording_url text,
    mos           real,
    jitter_ms     real,
    loss_pct      real,
    meta_json     jsonb,
    ingested_at   timestamptz
);
COMMENT ON TABLE voip_cdr_staging IS
    'Writer-only COPY target; empty outside a writer transaction.';

-- ---------------------------------------------------------------------------------------------
-- Rollups, maintained by the writer from the rows it actually inserted (so a redelivered CDR
-- is never counted twice). The measures are sums and counts, never averages, so that any set
-- of buckets adds up exactly.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE voip_cdr_rollup_store_hour (
    tenant_id   uuid             NOT NULL,
    store_id    uuid             NOT NULL, -- 00000000-0000-0000-0000-000000000000 = no store
    hour        timestamptz      NOT NULL
                CHECK (date_trunc('hour', hour AT TIME ZONE 'UTC') = hour AT TIME ZONE 'UTC'),
    direction   text             NOT NULL CHECK (direction IN ('in', 'out')),
    calls       bigint           NOT NULL DEFAULT 0,
    answered    bigint           NOT NULL DEFAULT 0,
    no_answer   bigint           NOT NULL DEFAULT 0,
    busy        bigint           NOT NULL DEFAULT 0,
    failed      bigint           NOT NULL DEFAULT 0,
    billsec_sum bigint           NOT NULL DEFAULT 0, -- answered calls
    ring_sum_s  double precision NOT NULL DEFAULT 0, -- answered calls: answer_ts - start_ts
    mos_sum     double precision NOT NULL DEFAULT 0,
    mos_n       bigint           NOT NULL DEFAULT 0,
    jitter_sum  double precision NOT NULL DEFAULT 0,
    jitter_n    bigint           NOT NULL DEFAULT 0,
    loss_sum    double precision NOT NULL DEFAULT 0,
    loss_n      bigint           NOT NULL DEFAULT 0,
    poor_mos_n  bigint           NOT NULL DEFAULT 0, -- calls with mos < 3.6
    PRIMARY KEY (tenant_id, store_id, hour, direction)
);
COMMENT ON TABLE voip_cdr_rollup_store_hour IS
    'Per tenant, store, UTC hour and direction: counts and sums for summary, by-store and qos.';

CREATE TABLE voip_cdr_rollup_ext_day (
    tenant_id   uuid             NOT NULL,
    ext_number  text             NOT NULL,
    day         date             NOT NULL, -- UTC day of start_ts
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
    user_id     uuid,                                -- latest seen for the extension
    store_id    uuid,                                -- latest seen for the extension
    PRIMARY KEY (tenant_id, ext_number, day, direction)
);
COMMENT ON TABLE voip_cdr_rollup_ext_day IS
    'Per tenant, extension, UTC day and direction: counts and sums for by-agent.';

-- ---------------------------------------------------------------------------------------------
-- Callback state, so that "is this missed call still due?" never searches voip_cdr by phone
-- number (which would need an index on from_uri and to_uri, paid on every insert).
-- ---------------------------------------------------------------------------------------------
CREATE TABLE voip_callback_state (
    tenant_id        uuid        NOT NULL,
    number           text        NOT NULL,
    last_answered_ts timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, number)
);
COMMENT ON TABLE voip_callback_state IS
    'Per tenant and number, the start of the latest ANSWERED call with it (inbound: from_uri; '
    'outbound: to_uri), kept with GREATEST so late arrivals are right. A missed call at t is '
    'due when no row exists or last_answered_ts <= t.';

-- ---------------------------------------------------------------------------------------------
-- Store names, for by-store (the CDR carries store_name; the writer keeps the latest).
-- ---------------------------------------------------------------------------------------------
CREATE TABLE voip_stores (
    tenant_id  uuid        NOT NULL,
    store_id   uuid        NOT NULL,
    name       text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, store_id)
);
COMMENT ON TABLE voip_stores IS 'Store names per tenant, the latest one seen.';

-- ---------------------------------------------------------------------------------------------
-- Refused items, kept with why (nothing is silently dropped). Columns after id are in
-- CDR_CODEC_REJECT_COLUMNS order (common/cdr_codec.h).
-- ---------------------------------------------------------------------------------------------
CREATE TABLE voip_cdr_rejects (
    id          bigserial   PRIMARY KEY,
    received_at timestamptz NOT NULL,
    tenant_id   uuid,                 -- NULL when the caller could not be identified
    sip_domain  text,
    call_id     text,
    source      text        NOT NULL CHECK (source IN ('ingest', 'writer')),
    reason      text        NOT NULL,
    raw         text        NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voip_cdr_rejects_tenant_received_idx ON voip_cdr_rejects (tenant_id, received_at);
COMMENT ON TABLE voip_cdr_rejects IS
    'Items refused by ingest validation or by PostgreSQL at write time, with the reason.';
COMMENT ON INDEX voip_cdr_rejects_tenant_received_idx IS
    'A tenant''s rejects by time of receipt.';

-- ---------------------------------------------------------------------------------------------
-- Row-level security. FORCE makes the policies bind the owner as well, so every role reads
-- through a policy:
--   cdr_reader  SELECT of the rows of the tenant named by app.tenant_id (set per transaction
--               with set_config('app.tenant_id', $1, true)); with it unset, nothing.
--   cdr_writer  every row: one writer serves every tenant.
--   the owner   every row, for maintenance.
-- Policies on a partitioned table also govern its partitions when read through it; a
-- partition read directly is refused by the grants (partitions get none).
-- ---------------------------------------------------------------------------------------------
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['voip_cdr', 'voip_cdr_rollup_store_hour',
                             'voip_cdr_rollup_ext_day', 'voip_callback_state',
                             'voip_stores', 'voip_cdr_rejects']
    LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY cdr_reader_tenant ON public.%I FOR SELECT TO cdr_reader '
                       'USING (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)',
                       t);
        EXECUTE format('CREATE POLICY cdr_writer_all ON public.%I FOR ALL TO cdr_writer '
                       'USING (true) WITH CHECK (true)', t);
        EXECUTE format('CREATE POLICY cdr_owner_all ON public.%I FOR ALL TO CURRENT_USER '
                       'USING (true) WITH CHECK (true)', t);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Grants. The reader gets the parent tables only; partitions made later get no grants, so a
-- partition cannot be read around the policies.
-- ---------------------------------------------------------------------------------------------
REVOKE ALL ON voip_cdr, voip_cdr_staging, voip_cdr_rollup_store_hour, voip_cdr_rollup_ext_day,
    voip_callback_state, voip_stores, voip_cdr_rejects FROM PUBLIC;

GRANT SELECT ON voip_cdr, voip_cdr_rollup_store_hour, voip_cdr_rollup_ext_day,
    voip_callback_state, voip_stores, voip_cdr_rejects TO cdr_reader;

GRANT SELECT, INSERT ON voip_cdr, voip_cdr_rejects TO cdr_writer;
GRANT SELECT, INSERT, UPDATE ON voip_cdr_rollup_store_hour, voip_cdr_rollup_ext_day,
    voip_callback_state, voip_stores TO cdr_writer;
GRANT SELECT, INSERT, DELETE, TRUNCATE ON voip_cdr_staging TO cdr_writer;
GRANT USAGE ON SEQUENCE voip_cdr_rejects_id_seq TO cdr_writer;

-- ---------------------------------------------------------------------------------------------
-- Monthly partitions. SECURITY DEFINER so that the writer can prepare the month a row needs
-- without owning voip_cdr; the partition is owned by the owner like everything else.
-- ---------------------------------------------------------------------------------------------

-- cdr_ensure_month: makes voip_cdr_YYYY_MM for the UTC month holding 'p_month' unless it
-- exists, and returns its name. Bounds are UTC month starts whatever the session TimeZone.
-- Concurrent callers are serialised by a transaction advisory lock (key 'cdr_part' in ASCII),
-- taken only when the partition looks missing.
-- Raises when p_month is NULL, or when a relation of that name exists that is not a partition
-- of voip_cdr.
CREATE FUNCTION cdr_ensure_month(p_month date) RETURNS text
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    v_start timestamp := date_trunc('month', p_month::timestamp);
    v_name  text := 'voip_cdr_' || to_char(v_start, 'YYYY_MM');
    v_oid   oid;
BEGIN
    IF p_month IS NULL THEN
        RAISE EXCEPTION 'cdr_ensure_month: month must not be null';
    END IF;
    v_oid := to_regclass('public.' || quote_ident(v_name));
    IF v_oid IS NULL THEN
        PERFORM pg_advisory_xact_lock(7161975061658825332);
        -- Looked up by a query rather than to_regclass(): a query takes a new snapshot, which
        -- sees a partition another caller committed while this one waited for the lock.
        SELECT c.oid INTO v_oid
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relname = v_name;
    END IF;
    IF v_oid IS NULL THEN
        BEGIN
            -- The bounds are written as UTC literals, so neither TimeZone nor DateStyle of
            -- the session can move them.
            EXECUTE format('CREATE TABLE public.%I PARTITION OF public.voip_cdr '
                           'FOR VALUES FROM (%L) TO (%L)',
                           v_name,
                           to_char(v_start, 'YYYY-MM-DD') || ' 00:00:00+00',
                           to_char(v_start + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00');
            EXECUTE format('COMMENT ON TABLE public.%I IS %L', v_name,
                           'voip_cdr rows with start_ts in ' || to_char(v_start, 'YYYY-MM')
                           || ' (UTC)');
        EXCEPTION WHEN duplicate_table THEN
            -- Made by a caller whose snapshot this transaction cannot see (REPEATABLE READ).
            NULL;
        END;
        v_oid := to_regclass('public.' || quote_ident(v_name));
    END IF;
    -- pg_partition_ancestors() reads the catalog as of now, whatever the transaction's snapshot.
    IF NOT EXISTS (SELECT 1 FROM pg_partition_ancestors(v_oid)
                    WHERE relid = 'public.voip_cdr'::regclass) THEN
        RAISE EXCEPTION 'cdr_ensure_month: % exists but is not a partition of voip_cdr', v_name;
    END IF;
    RETURN v_name;
END
$$;

-- cdr_ensure_months: cdr_ensure_month for 'p_months' consecutive months from the one holding
-- 'p_from'; returns the partition names in month order. Raises when p_months is outside
-- 1..240.
CREATE FUNCTION cdr_ensure_months(p_from date, p_months integer) RETURNS SETOF text
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public
AS $$
DECLARE
    i integer;
BEGIN
    IF p_from IS NULL OR p_months IS NULL OR p_months < 1 OR p_months > 240 THEN
        RAISE EXCEPTION 'cdr_ensure_months: need a month and a count in 1..240';
    END IF;
    FOR i IN 0 .. p_months - 1 LOOP
        RETURN NEXT public.cdr_ensure_month(
            (date_trunc('month', p_from::timestamp) + make_interval(months => i))::date);
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION cdr_ensure_month(date), cdr_ensure_months(date, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cdr_ensure_month(date), cdr_ensure_months(date, integer) TO cdr_writer;
