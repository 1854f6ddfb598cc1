-- bench/lean-schema.sql - the indexes and meta_json type that bench/index-cost measured as the
-- cheapest to write while every read of docs/query.md stays on an index (bench/RESULTS.md,
-- "Table write cost"). Applied after sql/*.sql to a database whose voip_cdr is still empty, by
-- bench/index-cost (variant lean) and bench/writer-bench --schema; a proposal, not a migration.
-- What changes against sql/001_schema.sql:
--
--   primary key (tenant_id, start_ts, call_id)  the same dedup key as (tenant_id, call_id,
--       start_ts) (a unique constraint does not depend on its column order), written in time
--       order, and itself the /api/cdr order (start_ts DESC, call_id DESC, a backward scan):
--       it replaces both the old key and the (tenant_id, start_ts DESC, call_id) btree;
--   hash (call_id)                              /api/cdr/{call_id} (the tenant is a filter):
--       the lookup the old key served, at a quarter of the size of a btree;
--   (tenant_id, did_e164, start_ts DESC) WHERE did_e164 IS NOT NULL   outbound calls have no
--       DID, and every read of it names one;
--   meta_json text                              kept as sent: cdr-ingest validated and
--       compacted it, no read filters on it and the API returns it as text, so neither the
--       jsonb conversion nor json's re-validation is paid on every insert (json measured no
--       cheaper than jsonb). The writer's COPY target gets the same type.
--
-- The store, extension and missed-call indexes stay as they are.

SET search_path = public;

DROP INDEX voip_cdr_tenant_start_idx, voip_cdr_tenant_did_start_idx;
ALTER TABLE voip_cdr DROP CONSTRAINT voip_cdr_pkey;
ALTER TABLE voip_cdr ADD PRIMARY KEY (tenant_id, start_ts, call_id);
CREATE INDEX voip_cdr_call_id_idx ON voip_cdr USING hash (call_id);
CREATE INDEX voip_cdr_tenant_did_start_idx ON voip_cdr (tenant_id, did_e164, start_ts DESC)
    WHERE did_e164 IS NOT NULL;
ALTER TABLE voip_cdr ALTER COLUMN meta_json TYPE text;
ALTER TABLE voip_cdr_staging ALTER COLUMN meta_json TYPE text;
