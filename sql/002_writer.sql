-- 002_writer.sql - what cdr-writer needs beyond 001: reject rows keyed by the stream entry they
-- came in, so that a redelivered entry is not stored twice, and the shape of the temp table the
-- writer copies reject rows into.
--
-- Applied by `cdrctl migrate` in one transaction, as the owner of 001's objects.

SET LOCAL search_path = public;

-- ---------------------------------------------------------------------------------------------
-- Every reject row the writer stores names the stream entry and the row within it (1-based).
-- Rows stored before this migration have neither: NULLs never conflict, so they stay as they are.
-- ---------------------------------------------------------------------------------------------
ALTER TABLE voip_cdr_rejects
    ADD COLUMN entry_id  text,
    ADD COLUMN entry_seq integer;
COMMENT ON COLUMN voip_cdr_rejects.entry_id IS
    'Redis Stream id of the entry the row came in (NULL for rows stored before 002_writer).';
COMMENT ON COLUMN voip_cdr_rejects.entry_seq IS
    'Row number, from 1, within that entry.';

CREATE UNIQUE INDEX voip_cdr_rejects_entry_idx ON voip_cdr_rejects (entry_id, entry_seq);
COMMENT ON INDEX voip_cdr_rejects_entry_idx IS
    'The writer''s idempotency key (INSERT ... ON CONFLICT (entry_id, entry_seq) DO NOTHING).';

-- ---------------------------------------------------------------------------------------------
-- The writer's reject rows: CDR_CODEC_REJECT_COLUMNS (common/cdr_codec.h), then the entry key.
-- Each writer session copies into a temp table made LIKE this one, so this table itself stays
-- empty; it only fixes the shape in one place. No constraints: the checks of voip_cdr_rejects
-- apply when the rows are moved there, with its messages.
-- ---------------------------------------------------------------------------------------------
CREATE UNLOGGED TABLE voip_cdr_rejects_staging (
    received_at timestamptz,
    tenant_id   uuid,
    sip_domain  text,
    call_id     text,
    source      text,
    reason      text,
    raw         text,
    entry_id    text,
    entry_seq   integer
);
COMMENT ON TABLE voip_cdr_rejects_staging IS
    'Shape of the writer''s temp table of reject rows; always empty.';

-- CREATE TABLE ... (LIKE ...) needs SELECT on the table it copies.
REVOKE ALL ON voip_cdr_rejects_staging FROM PUBLIC;
GRANT SELECT ON voip_cdr_rejects_staging TO cdr_writer;
