-- 005_update_room.sql - free room in the pages of the tables the writer mostly updates, so that
-- an update can stay on its page (docs/schema.md; bench/RESULTS.md, cdr-writer).
--
-- Applied by `cdrctl migrate` in one transaction, as the owner of 001's objects.

SET LOCAL search_path = public;

-- ---------------------------------------------------------------------------------------------
-- A batch of the writer adds to rows that mostly exist already: a store's day, an extension's
-- month, a number's callback state. Each addition is a new version of the row. With room left
-- on its page, PostgreSQL writes that version beside the old one and leaves the primary key
-- alone (a HOT update: no column of an index changes); on a full page it moves the row and
-- adds an index entry. The hourly store and daily extension rows are mostly new rows in a
-- batch, and stay full (70 % there changed nothing, measured).
--
-- The setting applies to pages written from now on; rows already stored stay where they are.
-- ---------------------------------------------------------------------------------------------
ALTER TABLE voip_cdr_rollup_store_day SET (fillfactor = 50);
ALTER TABLE voip_cdr_rollup_ext_month SET (fillfactor = 50);
ALTER TABLE voip_callback_state SET (fillfactor = 70);
