//! The embedded SQLite backend.
//!
//! One writer connection and a pool of readers: SQLite allows one writer at a
//! time anyway, and in WAL mode readers never block it nor it them. Every write
//! is an explicit `BEGIN IMMEDIATE` transaction, which takes the write lock up
//! front instead of upgrading a read lock later; an upgrade can fail with
//! `SQLITE_BUSY` without waiting when another process (a second `weir run` on
//! the same project) committed in between. `synchronous=FULL` because the
//! product promise is that a crash, power loss included, loses nothing
//! (STACK.md measures ~0.4 ms per commit with it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{Row, SqlSafeStr, Sqlite, Transaction};
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

const BACKEND: &str = "sqlite";

/// How long a writer waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Readers: the API, the UI and `weir logs` read while the engine writes.
const READERS: u32 = 4;

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

/// The migrations, embedded. Not `sqlx::migrate!`: that macro needs sqlx's
/// `macros` feature, which compiles a second copy of both drivers (and of the
/// bundled SQLite C library) for the proc-macro host. Same file naming, so
/// switching is a one-line change.
fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "runs and tasks".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0001_runs_and_tasks.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "datasets".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0002_datasets.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "task warnings".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0003_task_warnings.sql").into_sql_str(),
            false,
        ),
    ])
}

/// The SQLite [`MetaStore`]: one database file, created and migrated on open.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens `sqlite://PATH` or `sqlite:PATH` (`sqlite:///abs/path` for an
    /// absolute one). The file and its parent directory are created if missing.
    pub async fn open_url(url: &str) -> Result<SqliteStore> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| Error::InvalidUrl {
                url: url.to_owned(),
                reason: "expected `sqlite://PATH` or `postgres://...`",
            })?;
        if path.is_empty() || path.contains(":memory:") || path.contains('?') {
            return Err(Error::InvalidUrl {
                url: url.to_owned(),
                reason: "expected a file path after `sqlite://` (no in-memory databases, no query options)",
            });
        }
        SqliteStore::open(Path::new(path)).await
    }

    /// Opens (creating and migrating if needed) the database file at `path`.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs_err::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);

        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // Connections live as long as the store: a reconnect costs a
            // file open and schema parse for nothing.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone().create_if_missing(true))
            .await
            .map_err(db(BACKEND, "open"))?;
        migrator()
            .run(&writer)
            .await
            .map_err(|source| Error::Migrate {
                backend: BACKEND,
                source,
            })?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.read_only(true))
            .await
            .map_err(db(BACKEND, "open"))?;
        Ok(SqliteStore {
            writer,
            readers,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes both pools, waiting for queries in flight.
    pub async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
    }

    async fn begin(&self, op: &'static str) -> Result<Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db(BACKEND, op))
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn opt_micros(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(micros)
}

fn time(row: &SqliteRow, column: &str, id: i64) -> Result<Option<DateTime<Utc>>> {
    let Some(us) = get::<Option<i64>>(row, column)? else {
        return Ok(None);
    };
    DateTime::from_timestamp_micros(us)
        .map(Some)
        .ok_or_else(|| Error::corrupt(format!("row {id}: `{column}` = {us} is not a time")))
}

fn required_time(row: &SqliteRow, column: &str, id: i64) -> Result<DateTime<Utc>> {
    time(row, column, id)?.ok_or_else(|| Error::corrupt(format!("row {id}: `{column}` is null")))
}

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(column).map_err(db(BACKEND, "decode"))
}

fn run_from_row(row: &SqliteRow) -> Result<RunRow> {
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
        created_at: required_time(row, "created_at", id)?,
        started_at: time(row, "started_at", id)?,
        finished_at: time(row, "finished_at", id)?,
        owner: get(row, "owner")?,
        heartbeat_at: time(row, "heartbeat_at", id)?,
    })
}

fn task_from_row(row: &SqliteRow) -> Result<TaskRow> {
    let id: i64 = get(row, "id")?;
    let metering: Option<Json<Metering>> = get(row, "metering")?;
    Ok(TaskRow {
        id: TaskId(id),
        run_id: RunId(get(row, "run_id")?),
        step: get(row, "step")?,
        attempt: parse_attempt(get(row, "attempt")?, id)?,
        state: parse_task_state(get(row, "state")?, id)?,
        created_at: required_time(row, "created_at", id)?,
        queued_at: time(row, "queued_at", id)?,
        started_at: time(row, "started_at", id)?,
        finished_at: time(row, "finished_at", id)?,
        not_before: time(row, "not_before", id)?,
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

fn version_from_row(row: &SqliteRow) -> Result<DatasetVersionRow> {
    let namespace: String = get(row, "namespace")?;
    let name: String = get(row, "name")?;
    let number: i64 = get(row, "version")?;
    let what = || version_text(&namespace, &name, number);
    let version = parse_version(number, &namespace, &name)?;
    let rows = parse_count(get(row, "row_count")?, "row_count", &what)?;
    let bytes = parse_count(get(row, "byte_count")?, "byte_count", &what)?;
    let created: i64 = get(row, "created_at")?;
    let created_at = DateTime::from_timestamp_micros(created).ok_or_else(|| {
        Error::corrupt(format!(
            "{}: `created_at` = {created} is not a time",
            what()
        ))
    })?;
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
        created_at,
    })
}

/// Records one output: allocates its dataset's next version number (the
/// `BEGIN IMMEDIATE` write lock already serializes writers; the upsert keeps
/// the statement the same as PostgreSQL's) and inserts the version with its
/// task's run.
async fn insert_version(
    tx: &mut Transaction<'static, Sqlite>,
    output: &Output<'_>,
) -> Result<DatasetVersionRow> {
    const OP: &str = "apply";
    let new = output.version;
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO datasets (namespace, name, latest_version, created_at) \
         VALUES (?1, ?2, 1, ?3) \
         ON CONFLICT (namespace, name) DO UPDATE SET latest_version = datasets.latest_version + 1 \
         RETURNING latest_version",
    )
    .bind(&new.namespace)
    .bind(&new.name)
    .bind(micros(output.at))
    .fetch_one(&mut **tx)
    .await
    .map_err(db(BACKEND, OP))?;
    let row = sqlx::query(concat!(
        "INSERT INTO dataset_versions (namespace, name, version, schema, row_count, byte_count, \
         files, inputs, task_id, run_id, created_at) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, id, run_id, ?9 FROM tasks WHERE id = ?10 \
         RETURNING ",
        version_columns!()
    ))
    .bind(&new.namespace)
    .bind(&new.name)
    .bind(version)
    .bind(&new.schema)
    .bind(output.rows)
    .bind(output.bytes)
    .bind(Json(&new.files))
    .bind(Json(&new.inputs))
    .bind(micros(output.at))
    .bind(output.task.0)
    .fetch_one(&mut **tx)
    .await
    .map_err(db(BACKEND, OP))?;
    version_from_row(&row)
}

/// Inserts tasks (possibly of several runs) with one statement and returns
/// them in the given order.
///
/// The rows travel as one JSON array expanded by `json_each`: one statement,
/// one round trip to the SQLite thread and one bind whatever the count (200
/// tasks of a fan-out), without building SQL text at run time.
async fn insert_tasks(
    tx: &mut Transaction<'static, Sqlite>,
    tasks: &[(RunId, NewTask)],
    at: DateTime<Utc>,
    op: &'static str,
) -> Result<Vec<TaskRow>> {
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<serde_json::Value> = tasks
        .iter()
        .map(|(run, task)| {
            let stamps = TaskStamps::entering(None, task.state, at);
            serde_json::json!([
                run.0,
                task.step,
                task.attempt,
                task.state.as_str(),
                micros(at),
                opt_micros(stamps.queued_at()),
                opt_micros(stamps.started),
                opt_micros(stamps.finished),
                opt_micros(task.not_before),
            ])
        })
        .collect();
    let inserted = sqlx::query(concat!(
        "INSERT INTO tasks (run_id, step, attempt, state, created_at, queued_at, started_at, \
         finished_at, not_before) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
         value ->> 6, value ->> 7, value ->> 8 FROM json_each(?1) ORDER BY key \
         RETURNING ",
        task_columns!()
    ))
    .bind(Json(rows))
    .fetch_all(&mut **tx)
    .await
    .map_err(db(BACKEND, op))?;
    let mut rows = inserted
        .iter()
        .map(task_from_row)
        .collect::<Result<Vec<_>>>()?;
    // RETURNING's order is unspecified; ids follow insertion order.
    rows.sort_by_key(|t| t.id);
    Ok(rows)
}

/// Applies one guarded task update; false if the guard did not match.
async fn update_task(conn: &mut SqliteConnection, update: &TaskUpdate) -> Result<bool> {
    let stamps = TaskStamps::entering(Some(update.from), update.to, update.at);
    let done = sqlx::query(
        "UPDATE tasks SET state = ?1, \
         queued_at = COALESCE(?2, queued_at, ?3), \
         started_at = COALESCE(?4, started_at), \
         finished_at = COALESCE(?5, finished_at), \
         exit_code = COALESCE(?6, exit_code), \
         error = COALESCE(?7, error), \
         metering = COALESCE(?8, metering), \
         worker = COALESCE(?9, worker), \
         value = COALESCE(?10, value), \
         warnings = COALESCE(?13, warnings) \
         WHERE id = ?11 AND state = ?12",
    )
    .bind(update.to.as_str())
    .bind(opt_micros(stamps.queued))
    .bind(opt_micros(stamps.queued_if_unset))
    .bind(opt_micros(stamps.started))
    .bind(opt_micros(stamps.finished))
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
async fn conflict(conn: &mut SqliteConnection, update: &TaskUpdate) -> Result<Error> {
    let found: Option<String> = sqlx::query_scalar("SELECT state FROM tasks WHERE id = ?1")
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
impl MetaStore for SqliteStore {
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING ",
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
        .bind(micros(run.at))
        .bind(opt_micros(stamps.started))
        .bind(opt_micros(stamps.finished))
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
                "UPDATE runs SET state = ?1, \
                 started_at = COALESCE(started_at, ?2), \
                 finished_at = ?3, \
                 owner = CASE WHEN ?4 THEN NULL ELSE owner END, \
                 heartbeat_at = CASE WHEN ?4 THEN NULL ELSE heartbeat_at END \
                 WHERE id = ?5",
            )
            .bind(update.to.as_str())
            .bind(opt_micros(stamps.started))
            .bind(opt_micros(stamps.finished))
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
            " FROM runs WHERE id = ?1"
        ))
        .bind(id.0)
        .fetch_optional(&self.readers)
        .await
        .map_err(db(BACKEND, "run"))?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        // One static statement per filter shape, so each can use
        // `runs_by_pipeline` (an `?1 IS NULL OR ...` form cannot).
        let query = match (&filter.namespace, &filter.pipeline) {
            (Some(ns), Some(pipeline)) => sqlx::query(concat!(
                "SELECT ",
                run_columns!(),
                " FROM runs WHERE namespace = ?1 AND pipeline = ?2 ORDER BY id DESC LIMIT ?3"
            ))
            .bind(ns)
            .bind(pipeline),
            (Some(ns), None) => sqlx::query(concat!(
                "SELECT ",
                run_columns!(),
                " FROM runs WHERE namespace = ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .bind(ns),
            (None, Some(pipeline)) => sqlx::query(concat!(
                "SELECT ",
                run_columns!(),
                " FROM runs WHERE pipeline = ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .bind(pipeline),
            (None, None) => sqlx::query(concat!(
                "SELECT ",
                run_columns!(),
                " FROM runs ORDER BY id DESC LIMIT ?1"
            )),
        };
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(&self.readers)
            .await
            .map_err(db(BACKEND, "runs"))?;
        rows.iter().map(run_from_row).collect()
    }

    async fn tasks(&self, run: RunId) -> Result<Vec<TaskRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE run_id = ?1 ORDER BY id"
        ))
        .bind(run.0)
        .fetch_all(&self.readers)
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
        const OP: &str = "claim_run";
        let mut tx = self.begin(OP).await?;
        let done = sqlx::query(
            "UPDATE runs SET owner = ?1, heartbeat_at = ?2 \
             WHERE id = ?3 \
             AND state <> 'succeeded' \
             AND (owner IS NULL OR owner = ?1 OR heartbeat_at IS NULL OR heartbeat_at < ?4)",
        )
        .bind(owner)
        .bind(micros(now))
        .bind(id.0)
        .bind(micros(stale_before))
        .execute(&mut *tx)
        .await
        .map_err(db(BACKEND, OP))?;
        tx.commit().await.map_err(db(BACKEND, OP))?;
        Ok(done.rows_affected() == 1)
    }

    async fn heartbeat_run(&self, id: RunId, owner: &str, now: DateTime<Utc>) -> Result<bool> {
        const OP: &str = "heartbeat_run";
        let mut tx = self.begin(OP).await?;
        let done = sqlx::query("UPDATE runs SET heartbeat_at = ?1 WHERE id = ?2 AND owner = ?3")
            .bind(micros(now))
            .bind(id.0)
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(db(BACKEND, OP))?;
        tx.commit().await.map_err(db(BACKEND, OP))?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_run(&self, id: RunId, owner: &str) -> Result<()> {
        const OP: &str = "release_run";
        let mut tx = self.begin(OP).await?;
        sqlx::query(
            "UPDATE runs SET owner = NULL, heartbeat_at = NULL WHERE id = ?1 AND owner = ?2",
        )
        .bind(id.0)
        .bind(owner)
        .execute(&mut *tx)
        .await
        .map_err(db(BACKEND, OP))?;
        tx.commit().await.map_err(db(BACKEND, OP))?;
        Ok(())
    }

    async fn datasets(&self, namespace: Option<&str>) -> Result<Vec<DatasetVersionRow>> {
        let query = match namespace {
            Some(ns) => sqlx::query(concat!(
                "SELECT ",
                version_columns!(),
                " FROM dataset_versions WHERE (namespace, name, version) IN \
                 (SELECT namespace, name, latest_version FROM datasets WHERE namespace = ?1) \
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
            .fetch_all(&self.readers)
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
            " FROM dataset_versions WHERE namespace = ?1 AND name = ?2 ORDER BY version DESC"
        ))
        .bind(namespace)
        .bind(name)
        .fetch_all(&self.readers)
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
                " FROM dataset_versions WHERE namespace = ?1 AND name = ?2 AND version = ?3"
            ))
            .bind(namespace)
            .bind(name)
            .bind(i64::from(version)),
            None => sqlx::query(concat!(
                "SELECT ",
                version_columns!(),
                " FROM dataset_versions WHERE namespace = ?1 AND name = ?2 \
                 ORDER BY version DESC LIMIT 1"
            ))
            .bind(namespace)
            .bind(name),
        };
        let row = query
            .fetch_optional(&self.readers)
            .await
            .map_err(db(BACKEND, "dataset_version"))?;
        row.as_ref().map(version_from_row).transpose()
    }

    async fn run_datasets(&self, run: RunId) -> Result<Vec<DatasetVersionRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM dataset_versions WHERE run_id = ?1 ORDER BY id"
        ))
        .bind(run.0)
        .fetch_all(&self.readers)
        .await
        .map_err(db(BACKEND, "run_datasets"))?;
        rows.iter().map(version_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writer_is_durable_wal_with_foreign_keys() {
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite:{}", dir.path().join("a/b/weir.db").display());
        let store = SqliteStore::open_url(&url).await.unwrap();
        assert!(store.path().is_file());
        let mut conn = store.writer.acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        // 2 = FULL: fsync on every commit, so power loss loses nothing.
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(sync, 2);
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[tokio::test]
    async fn urls_other_than_files_are_refused() {
        for url in [
            "sqlite::memory:",
            "sqlite://",
            "mysql://x",
            "sqlite://a.db?mode=ro",
        ] {
            let err = SqliteStore::open_url(url).await.unwrap_err();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err:?}");
        }
    }
}
