-- Source files as they really arrive (docs/sources.md): besides full lists,
-- OIG's monthly LEIE supplements (YYMMEXCL.csv, YYMMREIN.csv) and the NPPES
-- weekly increments are applied to the active version as a new version; the
-- rows a delta removed or replaced are kept in source_delta_changes.
--
-- A delta version is a whole version like any other (a partition of its own,
-- swapped in atomically): the active version's rows it did not touch are
-- copied into it. Each row remembers the import whose file holds it
-- (file_import_id) and its line there, so its digest can still be checked
-- against that file with sed and sha256sum.

ALTER TABLE source_imports
    -- full: the whole list; supplement: an LEIE monthly supplement;
    -- increment: an NPPES weekly file.
    ADD COLUMN kind text NOT NULL DEFAULT 'full' CHECK (kind IN ('full', 'supplement', 'increment')),
    -- The file's text encoding: utf-8, or windows-1252 when it was transcoded.
    ADD COLUMN encoding text NOT NULL DEFAULT 'utf-8',
    -- Rows the uploaded file held (row_count: rows of the version it made).
    ADD COLUMN file_rows bigint NOT NULL DEFAULT 0,
    -- What a delta did to the version it was applied to (NULL for full lists):
    -- rows added, rows removed (reinstated), rows replaced by a newer row with
    -- the same key, and removals that matched no row.
    ADD COLUMN rows_added bigint,
    ADD COLUMN rows_removed bigint,
    ADD COLUMN rows_replaced bigint,
    ADD COLUMN rows_unmatched bigint;
UPDATE source_imports SET file_rows = row_count;

-- The import whose file holds the row at `line` (NULL: the row's own import).
ALTER TABLE exclusion_rows ADD COLUMN file_import_id bigint;
ALTER TABLE nppes_rows ADD COLUMN file_import_id bigint;
ALTER TABLE license_rows ADD COLUMN file_import_id bigint;

-- Every change a delta file made: a reinstatement that removed an exclusion
-- row, a row that replaced an older one (an NPPES NPI, an LEIE exclusion
-- listed again), or a reinstatement that matched nothing. The delta's row
-- (line, digest, record) and the row it removed (old_*) are both kept, so the
-- history of a provider's listing survives the version tables' drop.
CREATE TABLE source_delta_changes (
    import_id      bigint NOT NULL REFERENCES source_imports (id),
    source         text NOT NULL,
    change         text NOT NULL CHECK (change IN ('removed', 'replaced', 'unmatched')),
    line           bigint NOT NULL,
    digest         text NOT NULL,
    record         text NOT NULL,  -- JSON of the delta file's row
    npi            text COLLATE "C",
    old_import_id  bigint,         -- the import whose file held the removed row
    old_line       bigint,
    old_digest     text,
    old_record     text            -- JSON of the removed row
);
CREATE INDEX source_delta_changes_import_idx ON source_delta_changes (import_id, line);
CREATE INDEX source_delta_changes_npi_idx ON source_delta_changes (npi) WHERE npi IS NOT NULL;
-- Evidence: changes are written with their version, never edited.
CREATE FUNCTION source_delta_changes_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'source_delta_changes is append-only';
END $$;
CREATE TRIGGER source_delta_changes_append_only BEFORE UPDATE OR DELETE ON source_delta_changes
    FOR EACH ROW EXECUTE FUNCTION source_delta_changes_immutable();

CREATE OR REPLACE VIEW source_versions AS
SELECT source, id AS import_id, file_date, activated_at, row_count, file_name, sha256, kind
FROM source_imports
WHERE status = 'active';

CREATE OR REPLACE VIEW active_exclusions AS
SELECT e.source, e.import_id, e.line, e.npi, e.last_name, e.first_name, e.middle_name, e.business_name,
       e.last_norm, e.first_norm, e.dob, e.excl_type, e.excl_date, e.rein_date, e.waiver_date,
       e.waiver_state, e.termination_date, e.state, e.classification, e.record_status, e.record::jsonb AS record, e.digest,
       coalesce(e.file_import_id, e.import_id) AS file_import_id
FROM exclusion_rows e
WHERE e.import_id IN (SELECT id FROM source_imports WHERE status = 'active' AND source IN ('leie', 'sam'));

CREATE OR REPLACE VIEW active_nppes AS
SELECT n.npi, n.entity_type, n.last_name, n.first_name, n.middle_name, n.name_suffix, n.credential,
       n.organization_name, n.deactivation_date, n.reactivation_date, n.enumeration_date,
       n.primary_taxonomy, n.taxonomies::jsonb AS taxonomies, n.state, n.import_id, n.line,
       n.record::jsonb AS record, n.digest, coalesce(n.file_import_id, n.import_id) AS file_import_id
FROM nppes_rows n
WHERE n.import_id IN (SELECT id FROM source_imports WHERE status = 'active' AND source = 'nppes');

CREATE OR REPLACE VIEW active_licenses AS
SELECT l.state, l.license_number, l.license_type, l.status, l.issue_date, l.expiry_date,
       l.last_name, l.first_name, l.middle_name, l.last_norm, l.first_norm, l.npi,
       l.import_id, l.line, l.record::jsonb AS record, l.digest, coalesce(l.file_import_id, l.import_id) AS file_import_id
FROM license_rows l
WHERE l.import_id IN (SELECT id FROM source_imports WHERE status = 'active' AND source = 'licenses');
