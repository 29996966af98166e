//! The PostgreSQL backend, for servers with workers on several machines.
//!
//! Guards are plain `UPDATE ... WHERE id = $1 AND state = $2` under READ
//! COMMITTED: a second transaction updating the same row waits for the first
//! one's row lock, then re-evaluates the `WHERE` against the committed row, so
//! of two racing appliers exactly one matches and the other sees zero rows.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, Row, SqlSafeStr, Transaction};
use weir_types::{DatasetVersionRef, Metering, RunId, TaskId};

use crate::error::db;
use crate::meta::{
    Output, RunStamps, TaskStamps, in_update_order, parse_attempt, parse_count, parse_run_state,
    parse_task_state, parse_version, version_text,
};
use crate::{
    Applied, DatasetVersionRow, Error, MetaStore, NewRun, NewTask, Result, RunFilter, RunRow,
    TaskRow, TaskUpdate, Transition,
};

const BACKEND: &str = "postgres";

/// STACK.md: 8 connections reach ~5.9k commits/s on these machines, against
/// ~1.3k with one.
const CONNECTIONS: u32 = 8;

macro_rules! run_columns {
    () => {
        "id, namespace, pipeline, state, params, environment, trigger_kind, created_by, plan, \
         created_at, started_at, finished_at, owner, heartbeat_at"
    };
}

macro_rules! task_columns {
    () => {
        "id, run_id, step, attempt, state, created_at, queued_at, started_at, finished_at, \
         not_before, exit_code, error, metering, worker, value, warnings"
    };
}

macro_rules! version_columns {
    () => {
        "namespace, name, version, schema, row_count, byte_count, files, inputs, task_id, \
         run_id, created_at"
    };
}

/// The migrations, embedded (see `sqlite::migrator` for why not `migrate!`).
fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "runs and tasks".into(),
            MigrationType::Simple,
            include_str!("../migrations/postgres/0001_runs_and_tasks.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "datasets".into(),
            MigrationType::Simple,
            include_str!("../migrations/postgres/0002_datasets.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "task warnings".into(),
            MigrationType::Simple,
            include_str!("../migrations/postgres/0003_task_warnings.sql").into_sql_str(),
            false,
        ),
    ])
}

/// The PostgreSQL [`MetaStore`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `postgres://...` with a pool of 8 connections and migrates
    /// the schema (under PostgreSQL's advisory lock, so concurrent starts are
    /// safe).
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(db(BACKEND, "connect"))?;
        migrator()
            .run(&pool)
            .await
            .map_err(|source| Error::Migrate {
                backend: BACKEND,
                source,
            })?;
        Ok(PostgresStore { pool })
    }

    /// Closes the pool, waiting for queries in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self, op: &'static str) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(db(BACKEND, op))
    }
}

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(column).map_err(db(BACKEND, "decode"))
}

fn run_from_row(row: &PgRow) -> Result<RunRow> {
    let id: i64 = get(row, "id")?;
    Ok(RunRow {
        id: RunId(id),
        namespace: get(row, "namespace")?,
        pipeline: get(row, "pipeline")?,
        state: parse_run_state(get(row, "state")?, id)?,
        params: get(row, "params")?,
        environment: get(row, "environment")?,
        trigger: get(row, "trigger_kind")?,
        created_by: get(row, "created_by")?,
        plan: get(row, "plan")?,
        created_at: get(row, "created_at")?,
        started_at: get(row, "started_at")?,
        finished_at: get(row, "finished_at")?,
        owner: get(row, "owner")?,
        heartbeat_at: get(row, "heartbeat_at")?,
    })
}

fn task_from_row(row: &PgRow) -> Result<TaskRow> {
    let id: i64 = get(row, "id")?;
    let metering: Option<Json<Metering>> = get(row, "metering")?;
    Ok(TaskRow {
        id: TaskId(id),
        run_id: RunId(get(row, "run_id")?),
        step: get(row, "step")?,
        attempt: parse_attempt(get(row, "attempt")?, id)?,
        state: parse_task_state(get(row, "state")?, id)?,
        created_at: get(row, "created_at")?,
        queued_at: get(row, "queued_at")?,
        started_at: get(row, "started_at")?,
        finished_at: get(row, "finished_at")?,
        not_before: get(row, "not_before")?,
        exit_code: get(row, "exit_code")?,
        error: get(row, "error")?,
        metering: metering.map(|m| m.0),
        worker: get(row, "worker")?,
        value: get(row, "value")?,
        warnings: get::<Option<Json<Vec<String>>>>(row, "warnings")?
            .map(|w| w.0)
            .unwrap_or_default(),
    })
}

fn version_from_row(row: &PgRow) -> Result<DatasetVersionRow> {
    let namespace: String = get(row, "namespace")?;
    let name: String = get(row, "name")?;
    let number: i64 = get(row, "version")?;
    let what = || version_text(&namespace, &name, number);
    let version = parse_version(number, &namespace, &name)?;
    let rows = parse_count(get(row, "row_count")?, "row_count", &what)?;
    let bytes = parse_count(get(row, "byte_count")?, "byte_count", &what)?;
    let files: Json<Vec<String>> = get(row, "files")?;
    let inputs: Json<Vec<DatasetVersionRef>> = get(row, "inputs")?;
    Ok(DatasetVersionRow {
        namespace,
        name,
        version,
        schema: get(row, "schema")?,
        rows,
        bytes,
        files: files.0,
        inputs: inputs.0,
        task_id: TaskId(get(row, "task_id")?),
        run_id: RunId(get(row, "run_id")?),
        created_at: get(row, "created_at")?,
    })
}

/// Records one output in one statement (one round trip): the upsert
/// allocates its dataset's next version number, then the version is
/// inserted with its task's run.
///
/// The upsert locks the dataset's row until commit: a concurrent transaction
/// recording the same dataset waits for it, then increments the committed
/// number (READ COMMITTED re-reads the conflicting row), or allocates 1 if
/// the first one rolled back. No duplicate, no serialization error.
async fn insert_version(
    tx: &mut Transaction<'static, Postgres>,
    output: &Output<'_>,
) -> Result<DatasetVersionRow> {
    let new = output.version;
    let row = sqlx::query(concat!(
        "WITH allocated AS ( \
         INSERT INTO datasets (namespace, name, latest_version, created_at) \
         VALUES ($1, $2, 1, $9) \
         ON CONFLICT (namespace, name) DO UPDATE \
         SET latest_version = datasets.latest_version + 1 \
         RETURNING latest_version) \
         INSERT INTO dataset_versions (namespace, name, version, schema, row_count, byte_count, \
         files, inputs, task_id, run_id, created_at) \
         SELECT $1, $2, allocated.latest_version, $3, $4, $5, $6, $7, tasks.id, tasks.run_id, $9 \
         FROM allocated, tasks WHERE tasks.id = $8 \
         RETURNING ",
        version_columns!()
    ))
    .bind(&new.namespace)
    .bind(&new.name)
    .bind(&new.schema)
    .bind(output.rows)
    .bind(output.bytes)
    .bind(Json(&new.files))
    .bind(Json(&new.inputs))
    .bind(output.task.0)
    .bind(output.at)
    .fetch_one(&mut **tx)
    .await
    .map_err(db(BACKEND, "apply"))?;
    version_from_row(&row)
}

/// Inserts tasks (possibly of several runs) with one statement and returns
/// them in the given order: one array per column, expanded by `UNNEST`, so
/// 200 tasks are one round trip and one static (prepared, cached) statement.
async fn insert_tasks(
    tx: &mut Transaction<'static, Postgres>,
    tasks: &[(RunId, NewTask)],
    at: DateTime<Utc>,
    op: &'static str,
) -> Result<Vec<TaskRow>> {
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let n = tasks.len();
    let (mut runs, mut steps, mut attempts, mut states) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut queued, mut started, mut finished, mut not_before) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (run, task) in tasks {
        let stamps = TaskStamps::entering(None, task.state, at);
        runs.push(run.0);
        steps.push(task.step.as_str());
        attempts.push(i64::from(task.attempt));
        states.push(task.state.as_str());
        queued.push(stamps.queued_at());
        started.push(stamps.started);
        finished.push(stamps.finished);
        not_before.push(task.not_before);
    }
    let inserted = sqlx::query(concat!(
        "INSERT INTO tasks (run_id, step, attempt, state, created_at, queued_at, started_at, \
         finished_at, not_before) \
         SELECT t.run_id, t.step, t.attempt, t.state, $5, t.queued_at, t.started_at, \
         t.finished_at, t.not_before \
         FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $6::timestamptz[], \
         $7::timestamptz[], $8::timestamptz[], $9::timestamptz[]) WITH ORDINALITY \
         AS t(run_id, step, attempt, state, queued_at, started_at, finished_at, not_before, ord) \
         ORDER BY t.ord \
         RETURNING ",
        task_columns!()
    ))
    .bind(runs)
    .bind(steps)
    .bind(attempts)
    .bind(states)
    .bind(at)
    .bind(queued)
    .bind(started)
    .bind(finished)
    .bind(not_before)
    .fetch_all(&mut **tx)
    .await
    .map_err(db(BACKEND, op))?;
    let mut rows = inserted
        .iter()
        .map(task_from_row)
        .collect::<Result<Vec<_>>>()?;
    // RETURNING's order is unspecified; identity ids follow insertion order.
    rows.sort_by_key(|t| t.id);
    Ok(rows)
}

/// Applies one guarded task update; false if the guard did not match.
async fn update_task(conn: &mut PgConnection, update: &TaskUpdate) -> Result<bool> {
    let stamps = TaskStamps::entering(Some(update.from), update.to, update.at);
    let done = sqlx::query(
        "UPDATE tasks SET state = $1, \
         queued_at = COALESCE($2, queued_at, $3), \
         started_at = COALESCE($4, started_at), \
         finished_at = COALESCE($5, finished_at), \
         exit_code = COALESCE($6, exit_code), \
         error = COALESCE($7, error), \
         metering = COALESCE($8, metering), \
         worker = COALESCE($9, worker), \
         value = COALESCE($10, value), \
         warnings = COALESCE($13, warnings) \
         WHERE id = $11 AND state = $12",
    )
    .bind(update.to.as_str())
    .bind(stamps.queued)
    .bind(stamps.queued_if_unset)
    .bind(stamps.started)
    .bind(stamps.finished)
    .bind(update.exit_code)
    .bind(&update.error)
    .bind(update.metering.map(Json))
    .bind(&update.worker)
    .bind(&update.value)
    .bind(update.id.0)
    .bind(update.from.as_str())
    .bind((!update.warnings.is_empty()).then_some(Json(&update.warnings)))
    .execute(&mut *conn)
    .await
    .map_err(db(BACKEND, "apply"))?;
    Ok(done.rows_affected() == 1)
}

/// The conflict error for a failed guard, with the state actually found.
async fn conflict(conn: &mut PgConnection, update: &TaskUpdate) -> Result<Error> {
    let found: Option<String> = sqlx::query_scalar("SELECT state FROM tasks WHERE id = $1")
        .bind(update.id.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db(BACKEND, "apply"))?;
    Ok(Error::Conflict {
        task: update.id,
        expected: update.from,
        found: found
            .map(|text| parse_task_state(&text, update.id.0))
            .transpose()?,
    })
}

#[async_trait]
impl MetaStore for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn create_run(&self, run: NewRun, tasks: Vec<NewTask>) -> Result<(RunRow, Vec<TaskRow>)> {
        const OP: &str = "create_run";
        let stamps = RunStamps::entering(run.state, run.at);
        let mut tx = self.begin(OP).await?;
        let row = sqlx::query(concat!(
            "INSERT INTO runs (namespace, pipeline, state, params, environment, trigger_kind, \
             created_by, plan, created_at, started_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
            run_columns!()
        ))
        .bind(&run.namespace)
        .bind(&run.pipeline)
        .bind(run.state.as_str())
        .bind(&run.params)
        .bind(&run.environment)
        .bind(&run.trigger)
        .bind(&run.created_by)
        .bind(&run.plan)
        .bind(run.at)
        .bind(stamps.started)
        .bind(stamps.finished)
        .fetch_one(&mut *tx)
        .await
        .map_err(db(BACKEND, OP))?;
        let run_row = run_from_row(&row)?;
        let tasks: Vec<(RunId, NewTask)> = tasks.into_iter().map(|t| (run_row.id, t)).collect();
        let task_rows = insert_tasks(&mut tx, &tasks, run.at, OP).await?;
        tx.commit().await.map_err(db(BACKEND, OP))?;
        Ok((run_row, task_rows))
    }

    async fn apply(&self, transition: Transition) -> Result<Applied> {
        const OP: &str = "apply";
        if transition.is_empty() {
            return Ok(Applied::default());
        }
        let outputs = transition.outputs()?;
        // The most common transition is one guarded update (claim + start,
        // finish). As a single statement it is its own transaction, which
        // saves the BEGIN and COMMIT round trips: 1.28 ms -> ~0.42 ms per
        // commit (examples/commit_cost.rs). An output is a second statement,
        // so it takes the transaction below.
        if let ([update], [], []) = (
            transition.tasks.as_slice(),
            transition.new_tasks.as_slice(),
            transition.runs.as_slice(),
        ) && update.output.is_none()
        {
            let mut conn = self.pool.acquire().await.map_err(db(BACKEND, OP))?;
            return match update_task(&mut conn, update).await? {
                true => Ok(Applied::default()),
                false => Err(conflict(&mut conn, update).await?),
            };
        }
        let mut tx = self.begin(OP).await?;
        for update in &transition.tasks {
            if !update_task(&mut tx, update).await? {
                let conflict = conflict(&mut tx, update).await?;
                tx.rollback().await.map_err(db(BACKEND, OP))?;
                return Err(conflict);
            }
        }
        let mut datasets = Vec::with_capacity(outputs.len());
        for output in &outputs {
            datasets.push((output.index, insert_version(&mut tx, output).await?));
        }
        let created =
            insert_tasks(&mut tx, &transition.new_tasks, transition.created_at(), OP).await?;
        for update in &transition.runs {
            let stamps = RunStamps::entering(update.to, update.at);
            let done = sqlx::query(
                "UPDATE runs SET state = $1, \
                 started_at = COALESCE(started_at, $2), \
                 finished_at = $3, \
                 owner = CASE WHEN $4 THEN NULL ELSE owner END, \
                 heartbeat_at = CASE WHEN $4 THEN NULL ELSE heartbeat_at END \
                 WHERE id = $5",
            )
            .bind(update.to.as_str())
            .bind(stamps.started)
            .bind(stamps.finished)
            .bind(stamps.release)
            .bind(update.id.0)
            .execute(&mut *tx)
            .await
            .map_err(db(BACKEND, OP))?;
            if done.rows_affected() == 0 {
                tx.rollback().await.map_err(db(BACKEND, OP))?;
                return Err(Error::RunNotFound { run: update.id });
            }
        }
        tx.commit().await.map_err(db(BACKEND, OP))?;
        Ok(Applied {
            tasks: created,
            datasets: in_update_order(datasets),
        })
    }

    async fn run(&self, id: RunId) -> Result<Option<RunRow>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(BACKEND, "run"))?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        // One static statement per filter shape: a generic `$1 IS NULL OR ...`
        // plan cannot use `runs_by_pipeline`.
        let query = match (&filter.namespace, &filter.pipeline) {
            (Some(ns), Some(pipeline)) => sqlx::query(concat!(
                "SELECT ",
                run_columns!(),
                " FROM runs WHERE namespace = $1 AND pipeline = $2 ORDER BY id DESC LIMIT $3"
            ))
            .bind(ns)
            .bind(pipeline),
            (Some(ns), None) => sqlx::query(concat!(
                "SELECT ",
                run_columns!(),
                " FROM runs WHERE namespace = $1 ORDER BY id DESC LIMIT $2"
            ))
            .bind(ns),
            (None, Some(pipeline)) => sqlx::query(concat!(
                "SELECT ",
                run_columns!(),
                " FROM runs WHERE pipeline = $1 ORDER BY id DESC LIMIT $2"
            ))
            .bind(pipeline),
            (None, None) => sqlx::query(concat!(
                "SELECT ",
                run_columns!(),
                " FROM runs ORDER BY id DESC LIMIT $1"
            )),
        };
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db(BACKEND, "runs"))?;
        rows.iter().map(run_from_row).collect()
    }

    async fn tasks(&self, run: RunId) -> Result<Vec<TaskRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE run_id = $1 ORDER BY id"
        ))
        .bind(run.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db(BACKEND, "tasks"))?;
        rows.iter().map(task_from_row).collect()
    }

    async fn claim_run(
        &self,
        id: RunId,
        owner: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool> {
        // One statement: its own transaction, and the row lock makes two
        // concurrent claims serialize on the re-checked WHERE.
        let done = sqlx::query(
            "UPDATE runs SET owner = $1, heartbeat_at = $2 \
             WHERE id = $3 \
             AND state <> 'succeeded' \
             AND (owner IS NULL OR owner = $1 OR heartbeat_at IS NULL OR heartbeat_at < $4)",
        )
        .bind(owner)
        .bind(now)
        .bind(id.0)
        .bind(stale_before)
        .execute(&self.pool)
        .await
        .map_err(db(BACKEND, "claim_run"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn heartbeat_run(&self, id: RunId, owner: &str, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query("UPDATE runs SET heartbeat_at = $1 WHERE id = $2 AND owner = $3")
            .bind(now)
            .bind(id.0)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(db(BACKEND, "heartbeat_run"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_run(&self, id: RunId, owner: &str) -> Result<()> {
        sqlx::query(
            "UPDATE runs SET owner = NULL, heartbeat_at = NULL WHERE id = $1 AND owner = $2",
        )
        .bind(id.0)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(db(BACKEND, "release_run"))?;
        Ok(())
    }

    async fn datasets(&self, namespace: Option<&str>) -> Result<Vec<DatasetVersionRow>> {
        let query = match namespace {
            Some(ns) => sqlx::query(concat!(
                "SELECT ",
                version_columns!(),
                " FROM dataset_versions WHERE (namespace, name, version) IN \
                 (SELECT namespace, name, latest_version FROM datasets WHERE namespace = $1) \
                 ORDER BY namespace, name"
            ))
            .bind(ns),
            None => sqlx::query(concat!(
                "SELECT ",
                version_columns!(),
                " FROM dataset_versions WHERE (namespace, name, version) IN \
                 (SELECT namespace, name, latest_version FROM datasets) \
                 ORDER BY namespace, name"
            )),
        };
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(db(BACKEND, "datasets"))?;
        rows.iter().map(version_from_row).collect()
    }

    async fn dataset_versions(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<DatasetVersionRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM dataset_versions WHERE namespace = $1 AND name = $2 ORDER BY version DESC"
        ))
        .bind(namespace)
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(db(BACKEND, "dataset_versions"))?;
        rows.iter().map(version_from_row).collect()
    }

    async fn dataset_version(
        &self,
        namespace: &str,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<DatasetVersionRow>> {
        let query = match version {
            Some(version) => sqlx::query(concat!(
                "SELECT ",
                version_columns!(),
                " FROM dataset_versions WHERE namespace = $1 AND name = $2 AND version = $3"
            ))
            .bind(namespace)
            .bind(name)
            .bind(i64::from(version)),
            None => sqlx::query(concat!(
                "SELECT ",
                version_columns!(),
                " FROM dataset_versions WHERE namespace = $1 AND name = $2 \
                 ORDER BY version DESC LIMIT 1"
            ))
            .bind(namespace)
            .bind(name),
        };
        let row = query
            .fetch_optional(&self.pool)
            .await
            .map_err(db(BACKEND, "dataset_version"))?;
        row.as_ref().map(version_from_row).transpose()
    }

    async fn run_datasets(&self, run: RunId) -> Result<Vec<DatasetVersionRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM dataset_versions WHERE run_id = $1 ORDER BY id"
        ))
        .bind(run.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db(BACKEND, "run_datasets"))?;
        rows.iter().map(version_from_row).collect()
    }
}
