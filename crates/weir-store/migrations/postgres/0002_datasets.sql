-- Dataset versions (DESIGN §5-§6).
--
-- `datasets` holds one row per dataset, its last allocated version: a version
-- is allocated by an upsert that increments it, in the transaction that marks
-- the producing task succeeded. A concurrent allocator of the same dataset
-- waits for that row lock and then increments the committed value, so two
-- writers never get the same number, and a rolled-back transaction
-- allocates nothing.
--
-- Names are COLLATE "C" (byte order): listings sort like SQLite's BINARY
-- whatever the database's locale, and the keys' indexes serve that order.
CREATE TABLE datasets (
    namespace       TEXT COLLATE "C" NOT NULL,
    name            TEXT COLLATE "C" NOT NULL,
    latest_version  BIGINT           NOT NULL CHECK (latest_version >= 1),
    created_at      TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- Immutable: rows are inserted, never updated (the trigger below enforces
-- it). `id` only orders versions by creation (`run_datasets`); the key is
-- (namespace, name, version). `files` is a JSON array of blob keys, `inputs`
-- a JSON array of {namespace, name, version} (lineage).
CREATE TABLE dataset_versions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace   TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    version     BIGINT           NOT NULL CHECK (version >= 1),
    schema      JSONB            NOT NULL,
    row_count   BIGINT           NOT NULL CHECK (row_count >= 0),
    byte_count  BIGINT           NOT NULL CHECK (byte_count >= 0),
    files       JSONB            NOT NULL,
    inputs      JSONB            NOT NULL,
    task_id     BIGINT           NOT NULL REFERENCES tasks (id),
    run_id      BIGINT           NOT NULL REFERENCES runs (id),
    created_at  TIMESTAMPTZ      NOT NULL,
    UNIQUE (namespace, name, version),
    FOREIGN KEY (namespace, name) REFERENCES datasets (namespace, name)
);

CREATE INDEX dataset_versions_by_run ON dataset_versions (run_id, id);
CREATE INDEX dataset_versions_by_task ON dataset_versions (task_id);

CREATE FUNCTION dataset_versions_are_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'dataset versions are immutable';
END
$$;

CREATE TRIGGER dataset_versions_are_immutable
BEFORE UPDATE ON dataset_versions
FOR EACH ROW EXECUTE FUNCTION dataset_versions_are_immutable();
