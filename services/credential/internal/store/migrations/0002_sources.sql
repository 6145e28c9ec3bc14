-- Verification data sources: OIG LEIE and SAM.gov exclusions, the NPPES bulk
-- file and state license rosters, each imported as whole-file versions.
--
-- How a version is loaded (internal/sources/importer): rows are COPYed into a
-- fresh table <parent>_<import id> created in the loading transaction, its
-- indexes are built after the load, and in the same transaction the table is
-- ATTACHed as a partition of the parent, the previous version's partition is
-- dropped and the import record flips to 'active'. A failed load rolls back
-- and the previous version stays active and untouched. Only active versions'
-- partitions are attached, and the active_* views also filter on the import
-- record, so readers never see a half-loaded or superseded version.
--
-- The raw row (record) and NPPES taxonomies are stored as JSON text and
-- served as jsonb by the views: the importer always writes valid JSON, and
-- building jsonb for every row at load time doubled the server's COPY cost,
-- while the engine only ever reads a handful of matched rows.
-- Lookup keys (npi, normalized names, license numbers) are ASCII and compared
-- for equality: COLLATE "C" makes their index builds byte comparisons.

CREATE TABLE source_imports (
    id          bigserial PRIMARY KEY,
    source      text NOT NULL CHECK (source IN ('leie', 'sam', 'nppes', 'licenses')),
    status      text NOT NULL DEFAULT 'loading'
                CHECK (status IN ('loading', 'active', 'superseded', 'failed')),
    file_name   text NOT NULL DEFAULT '',
    sha256      text NOT NULL DEFAULT '',
    bytes       bigint NOT NULL DEFAULT 0,
    -- The date the publisher gave the file (from the upload or its name).
    file_date   date,
    row_count   bigint NOT NULL DEFAULT 0,
    -- 1, 2, 3... per source, given when the import becomes active.
    version     integer,
    error       text NOT NULL DEFAULT '',
    error_line  bigint,
    actor       text NOT NULL DEFAULT 'system',
    request_id  text NOT NULL DEFAULT '',
    -- Phase timings in milliseconds, for operators and the benchmark.
    load_ms     bigint,
    index_ms    bigint,
    swap_ms     bigint,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    activated_at timestamptz
);
-- At most one active version per source: the swap relies on it.
CREATE UNIQUE INDEX source_imports_active_idx ON source_imports (source) WHERE status = 'active';
CREATE INDEX source_imports_source_idx ON source_imports (source, id);

-- Exclusion rows from both lists (source 'leie' or 'sam').
CREATE TABLE exclusion_rows (
    import_id        bigint NOT NULL,
    source           text NOT NULL,
    line             bigint NOT NULL,
    npi              text COLLATE "C",
    last_name        text NOT NULL DEFAULT '',
    first_name       text NOT NULL DEFAULT '',
    middle_name      text NOT NULL DEFAULT '',
    business_name    text NOT NULL DEFAULT '',
    last_norm        text COLLATE "C" NOT NULL DEFAULT '',
    first_norm       text COLLATE "C" NOT NULL DEFAULT '',
    dob              date,
    excl_type        text NOT NULL DEFAULT '',
    excl_date        date,
    rein_date        date,
    waiver_date      date,
    waiver_state     text NOT NULL DEFAULT '',
    termination_date date,
    state            text NOT NULL DEFAULT '',
    -- SAM's Classification (Individual, Firm, ...) and Record Status; LEIE: ''.
    classification   text NOT NULL DEFAULT '',
    record_status    text NOT NULL DEFAULT '',
    record           text NOT NULL,  -- JSON; the view serves it as jsonb
    digest           text NOT NULL
) PARTITION BY LIST (import_id);
CREATE INDEX exclusion_rows_npi_idx ON exclusion_rows (npi) WHERE npi IS NOT NULL;
CREATE INDEX exclusion_rows_name_idx ON exclusion_rows (last_norm, first_norm);

-- NPPES bulk dissemination rows (one per NPI per version).
CREATE TABLE nppes_rows (
    import_id          bigint NOT NULL,
    line               bigint NOT NULL,
    npi                text COLLATE "C" NOT NULL,
    entity_type        text,
    last_name          text NOT NULL DEFAULT '',
    first_name         text NOT NULL DEFAULT '',
    middle_name        text NOT NULL DEFAULT '',
    name_suffix        text NOT NULL DEFAULT '',
    credential         text NOT NULL DEFAULT '',
    organization_name  text NOT NULL DEFAULT '',
    deactivation_date  date,
    reactivation_date  date,
    enumeration_date   date,
    primary_taxonomy   text NOT NULL DEFAULT '',
    taxonomies         text NOT NULL DEFAULT '[]',  -- JSON array, served as jsonb
    state              text NOT NULL DEFAULT '',
    record             text NOT NULL,  -- JSON; the view serves it as jsonb
    digest             text NOT NULL
) PARTITION BY LIST (import_id);
CREATE UNIQUE INDEX nppes_rows_npi_idx ON nppes_rows (npi, import_id);

-- State license roster rows (column set: docs/sources.md).
CREATE TABLE license_rows (
    import_id      bigint NOT NULL,
    line           bigint NOT NULL,
    state          text NOT NULL,
    license_number text COLLATE "C" NOT NULL,
    license_type   text NOT NULL DEFAULT '',
    status         text NOT NULL,
    issue_date     date,
    expiry_date    date,
    last_name      text NOT NULL DEFAULT '',
    first_name     text NOT NULL DEFAULT '',
    middle_name    text NOT NULL DEFAULT '',
    last_norm      text COLLATE "C" NOT NULL DEFAULT '',
    first_norm     text COLLATE "C" NOT NULL DEFAULT '',
    npi            text COLLATE "C",
    record         text NOT NULL,  -- JSON; the view serves it as jsonb
    digest         text NOT NULL
) PARTITION BY LIST (import_id);
CREATE INDEX license_rows_number_idx ON license_rows (state, license_number);
CREATE INDEX license_rows_npi_idx ON license_rows (npi) WHERE npi IS NOT NULL;
CREATE INDEX license_rows_name_idx ON license_rows (last_norm, first_norm);

-- The active version of each source, for evidence ("source version").
CREATE VIEW source_versions AS
SELECT source, id AS import_id, file_date, activated_at, row_count, file_name, sha256
FROM source_imports
WHERE status = 'active';

CREATE VIEW active_exclusions AS
SELECT e.source, e.import_id, e.line, e.npi, e.last_name, e.first_name, e.middle_name, e.business_name,
       e.last_norm, e.first_norm, e.dob, e.excl_type, e.excl_date, e.rein_date, e.waiver_date,
       e.waiver_state, e.termination_date, e.state, e.classification, e.record_status, e.record::jsonb AS record, e.digest
FROM exclusion_rows e
WHERE e.import_id IN (SELECT id FROM source_imports WHERE status = 'active' AND source IN ('leie', 'sam'));

CREATE VIEW active_nppes AS
SELECT n.npi, n.entity_type, n.last_name, n.first_name, n.middle_name, n.name_suffix, n.credential,
       n.organization_name, n.deactivation_date, n.reactivation_date, n.enumeration_date,
       n.primary_taxonomy, n.taxonomies::jsonb AS taxonomies, n.state, n.import_id, n.line,
       n.record::jsonb AS record, n.digest
FROM nppes_rows n
WHERE n.import_id IN (SELECT id FROM source_imports WHERE status = 'active' AND source = 'nppes');

CREATE VIEW active_licenses AS
SELECT l.state, l.license_number, l.license_type, l.status, l.issue_date, l.expiry_date,
       l.last_name, l.first_name, l.middle_name, l.last_norm, l.first_norm, l.npi,
       l.import_id, l.line, l.record::jsonb AS record, l.digest
FROM license_rows l
WHERE l.import_id IN (SELECT id FROM source_imports WHERE status = 'active' AND source = 'licenses');
