-- Dataset versions (DESIGN §5-§6). Same conventions as 0001: INTEGER
-- microseconds, JSON as serde_json text.
--
-- `datasets` holds one row per dataset, its last allocated version: a version
-- is allocated by an upsert that increments it, in the transaction that marks
-- the producing task succeeded, so a rolled-back transaction allocates
-- nothing and two writers never get the same number.
CREATE TABLE datasets (
    namespace       TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    latest_version  INTEGER NOT NULL CHECK (latest_version >= 1),
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
) STRICT, WITHOUT ROWID;

-- Immutable: rows are inserted, never updated (the trigger below enforces
-- it). `id` only orders versions by creation (`run_datasets`); the key is
-- (namespace, name, version). `files` is a JSON array of blob keys, `inputs`
-- a JSON array of {namespace, name, version} (lineage).
CREATE TABLE dataset_versions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    schema      TEXT    NOT NULL,
    row_count   INTEGER NOT NULL CHECK (row_count >= 0),
    byte_count  INTEGER NOT NULL CHECK (byte_count >= 0),
    files       TEXT    NOT NULL,
    inputs      TEXT    NOT NULL,
    task_id     INTEGER NOT NULL REFERENCES tasks (id),
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    created_at  INTEGER NOT NULL,
    UNIQUE (namespace, name, version),
    FOREIGN KEY (namespace, name) REFERENCES datasets (namespace, name)
) STRICT;

CREATE INDEX dataset_versions_by_run ON dataset_versions (run_id, id);
CREATE INDEX dataset_versions_by_task ON dataset_versions (task_id);

CREATE TRIGGER dataset_versions_are_immutable
BEFORE UPDATE ON dataset_versions
BEGIN
    SELECT RAISE(ABORT, 'dataset versions are immutable');
END;
