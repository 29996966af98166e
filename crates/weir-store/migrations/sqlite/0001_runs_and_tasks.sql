-- Runs and their tasks. Timestamps are INTEGER microseconds since the Unix
-- epoch, UTC: they sort, compare and round-trip exactly like PostgreSQL's
-- TIMESTAMPTZ. JSON columns hold serde_json text. States are the `as_str()`
-- names of weir_types::{RunState, TaskState}; no CHECK constraint, so a new
-- state needs no table rebuild (readers reject unknown names as corrupt).

-- AUTOINCREMENT: ids are never reused, even after the newest run is deleted;
-- people type them (`weir show 42`).
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace     TEXT    NOT NULL,
    pipeline      TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    params        TEXT    NOT NULL,
    environment   TEXT,
    trigger_kind  TEXT    NOT NULL,
    created_by    TEXT    NOT NULL,
    plan          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    owner         TEXT,
    heartbeat_at  INTEGER
) STRICT;

CREATE INDEX runs_by_pipeline ON runs (namespace, pipeline, id DESC);

CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step         TEXT    NOT NULL,
    attempt      INTEGER NOT NULL CHECK (attempt >= 0),
    state        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    queued_at    INTEGER,
    started_at   INTEGER,
    finished_at  INTEGER,
    not_before   INTEGER,
    exit_code    INTEGER,
    error        TEXT,
    metering     TEXT,
    worker       TEXT,
    value        TEXT,
    UNIQUE (run_id, step, attempt)
) STRICT;

CREATE INDEX tasks_by_run ON tasks (run_id, id);
