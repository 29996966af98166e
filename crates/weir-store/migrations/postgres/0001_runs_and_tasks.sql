-- Runs and their tasks. States are the `as_str()` names of
-- weir_types::{RunState, TaskState}; no CHECK constraint, so a new state needs
-- no migration (readers reject unknown names as corrupt).

CREATE TABLE runs (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace     TEXT        NOT NULL,
    pipeline      TEXT        NOT NULL,
    state         TEXT        NOT NULL,
    params        JSONB       NOT NULL,
    environment   TEXT,
    trigger_kind  TEXT        NOT NULL,
    created_by    TEXT        NOT NULL,
    plan          JSONB       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    owner         TEXT,
    heartbeat_at  TIMESTAMPTZ
);

CREATE INDEX runs_by_pipeline ON runs (namespace, pipeline, id DESC);

CREATE TABLE tasks (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       BIGINT      NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step         TEXT        NOT NULL,
    attempt      BIGINT      NOT NULL CHECK (attempt >= 0),
    state        TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    queued_at    TIMESTAMPTZ,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    not_before   TIMESTAMPTZ,
    exit_code    INTEGER,
    error        TEXT,
    metering     JSONB,
    worker       TEXT,
    value        JSONB,
    UNIQUE (run_id, step, attempt)
);

CREATE INDEX tasks_by_run ON tasks (run_id, id);
