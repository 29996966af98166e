//! The loop that executes one run: see the crate docs for the protocol.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use weir_exec::{ActionError, DatasetInput, LogSink, LogStream, TaskContext, TaskOutput};
use weir_spec::{Environment, Plan, RunInfo, Step, TemplateContext};
use weir_store::{
    DatasetVersionRow, NewDatasetVersion, NewTask, RunRow, RunUpdate, TaskLogWriter, TaskUpdate,
    Transition,
};
use weir_types::{DatasetVersionRef, RunId, RunState, TaskId, TaskState, dataset_name};

use crate::engine::{create_dir, owner_is_dead_here};
use crate::{Engine, Error, Result, RunSummary};

/// How long a run's owner may go without a heartbeat before another process
/// may take the run over.
const LEASE: Duration = Duration::from_secs(30);
const HEARTBEAT: Duration = Duration::from_secs(5);

/// How to execute a run.
#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    /// At most this many tasks run at once.
    pub concurrency: usize,
    /// Receives every state change, after it is durable.
    pub events: Option<mpsc::UnboundedSender<RunEvent>>,
    /// Cancels the run: running tasks are killed, the rest marked cancelled.
    pub cancel: CancellationToken,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        ExecuteOptions {
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            events: None,
            cancel: CancellationToken::new(),
        }
    }
}

/// A durable state change, for progress displays.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    Run {
        run: RunId,
        state: RunState,
        at: DateTime<Utc>,
    },
    Task {
        step: String,
        attempt: u32,
        state: TaskState,
        at: DateTime<Utc>,
        /// Why it failed, for `failed`.
        error: Option<String>,
        /// For a queued retry: when it may start.
        not_before: Option<DateTime<Utc>>,
    },
}

/// The executor's view of one step.
struct Slot {
    step: Step,
    deps: Vec<usize>,
    /// `None` while a newly created attempt waits for its id from the commit.
    task: Option<TaskId>,
    attempt: u32,
    state: TaskState,
    not_before: Option<DateTime<Utc>>,
    /// Attempt number retries are counted from in this execution: a resumed
    /// run gets its full retry budget again.
    base_attempt: u32,
    value: Option<serde_json::Value>,
    /// The dataset version its succeeded task produced, if any: what
    /// downstream steps read.
    output: Option<DatasetVersionRow>,
}

struct TaskDone {
    slot: usize,
    task: TaskId,
    /// The dataset versions the task was given to read (its lineage).
    inputs: Vec<DatasetVersionRef>,
    outcome: std::result::Result<TaskOutput, ActionError>,
}

/// Changes gathered for the next commit, with what to do once it is durable.
#[derive(Default)]
struct Batch {
    transition: Transition,
    /// Slot of each entry of `transition.new_tasks`, in order.
    new_task_slots: Vec<usize>,
    /// Slot of each task update carrying an output, in order.
    output_slots: Vec<usize>,
    /// Tasks marked `running` by this batch: spawn them once it is durable.
    start: Vec<(usize, TaskId)>,
    events: Vec<RunEvent>,
}

impl Batch {
    fn update(&mut self, slot: &Slot, update: TaskUpdate, error: Option<String>) {
        self.events.push(RunEvent::Task {
            step: slot.step.name.clone(),
            attempt: slot.attempt,
            state: update.to,
            at: update.at,
            error,
            not_before: None,
        });
        self.transition.tasks.push(update);
    }

    fn new_attempt(&mut self, run: RunId, index: usize, slot: &Slot, at: DateTime<Utc>) {
        self.transition.new_tasks.push((
            run,
            NewTask {
                step: slot.step.name.clone(),
                attempt: slot.attempt,
                state: slot.state,
                not_before: slot.not_before,
            },
        ));
        self.new_task_slots.push(index);
        self.events.push(RunEvent::Task {
            step: slot.step.name.clone(),
            attempt: slot.attempt,
            state: slot.state,
            at,
            error: None,
            not_before: slot.not_before,
        });
    }
}

impl Engine {
    /// Executes a run to its end: a new run, or one interrupted earlier (then
    /// succeeded steps are kept and every other step gets a new attempt).
    pub async fn execute(&self, run_id: RunId, options: ExecuteOptions) -> Result<RunSummary> {
        let run = self
            .store
            .run(run_id)
            .await?
            .ok_or(Error::RunNotFound(run_id))?;
        if run.state == RunState::Succeeded {
            return Err(Error::AlreadySucceeded {
                run: run_id,
                state: run.state,
            });
        }
        let now = Utc::now();
        let stale_before = match (&run.owner, run.heartbeat_at) {
            // Its process is gone: take the run over now, but only from that
            // owner, as we saw it (a claim refreshes the heartbeat, so a
            // concurrent resume that claimed first makes this one fail).
            (Some(owner), Some(seen)) if owner_is_dead_here(owner) => {
                seen + chrono::Duration::microseconds(1)
            }
            _ => now - chrono::Duration::from_std(LEASE).unwrap_or_default(),
        };
        if !self
            .store
            .claim_run(run_id, &self.owner, now, stale_before)
            .await?
        {
            let owner = self
                .store
                .run(run_id)
                .await?
                .and_then(|r| r.owner)
                .unwrap_or_default();
            return Err(Error::RunBusy { run: run_id, owner });
        }
        let result = self.execute_owned(&run, options).await;
        if result.is_err() {
            // Keep the run resumable by someone else right away.
            let _ = self.store.release_run(run_id, &self.owner).await;
        }
        result
    }

    async fn execute_owned(&self, run: &RunRow, options: ExecuteOptions) -> Result<RunSummary> {
        let plan: Plan =
            serde_json::from_value(run.plan.clone()).map_err(|source| Error::PlanSnapshot {
                run: run.id,
                source,
            })?;
        let environments = self.load_environments(run, &plan)?;
        let external = self.resolve_reads(run, &plan).await?;
        let mut slots = self.slots(run, &plan).await?;

        let mut batch = Batch::default();
        let now = Utc::now();
        // Attempts still `running` belonged to a process that died; theirs
        // may live on and must not overlap with the new attempts.
        let leftovers = if slots.iter().any(|s| s.state == TaskState::Running) {
            let dir = self.run_work_dir(run.id);
            let run_id = run.id.to_string();
            tokio::task::spawn_blocking(move || {
                weir_exec::process::kill_task_processes(&dir, "WEIR_RUN_ID", &run_id)
            })
            .await
            .unwrap_or(0)
        } else {
            0
        };
        recover_interrupted(run.id, &mut slots, &mut batch, now, leftovers);
        batch.transition.runs.push(RunUpdate {
            id: run.id,
            to: RunState::Running,
            at: now,
        });
        batch.events.push(RunEvent::Run {
            run: run.id,
            state: RunState::Running,
            at: now,
        });

        self.prepare_work_dirs(run.id, &slots);
        let concurrency = options.concurrency.max(1);
        let stop = CancellationToken::new();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<TaskDone>();
        let mut finished: Vec<TaskDone> = Vec::new();
        let mut running = 0usize;
        let mut cancelling = false;
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        let mut last_heartbeat = std::time::Instant::now();
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;

        loop {
            let now = Utc::now();
            for done in finished.drain(..) {
                running -= 1;
                finish_task(
                    run.id,
                    &run.namespace,
                    &run.pipeline,
                    &mut slots,
                    done,
                    cancelling,
                    &mut batch,
                    now,
                );
            }
            let run_state = advance(
                &mut slots,
                &mut batch,
                concurrency.saturating_sub(running),
                cancelling,
                now,
            );
            let final_state = run_state.filter(|_| running == 0);
            if let Some(state) = final_state {
                batch.transition.runs.push(RunUpdate {
                    id: run.id,
                    to: state,
                    at: now,
                });
                batch.events.push(RunEvent::Run {
                    run: run.id,
                    state,
                    at: now,
                });
            }

            let Batch {
                transition,
                new_task_slots,
                output_slots,
                start,
                events,
            } = std::mem::take(&mut batch);
            // Attempts created by this commit get their ids from it; they can
            // only be started by the next pass, which must not wait.
            let created_tasks = !new_task_slots.is_empty();
            if !transition.is_empty() {
                match self.store.apply(transition).await {
                    Ok(applied) => {
                        for (index, row) in new_task_slots.into_iter().zip(applied.tasks) {
                            slots[index].task = Some(row.id);
                        }
                        for (index, row) in output_slots.into_iter().zip(applied.datasets) {
                            slots[index].output = Some(row);
                        }
                    }
                    Err(e) => {
                        // Nothing of this batch happened. Stop what runs and
                        // leave the run resumable.
                        stop.cancel();
                        drain(&mut done_rx, running).await;
                        return Err(e.into());
                    }
                }
            }
            if let Some(tx) = &options.events {
                for event in events {
                    let _ = tx.send(event);
                }
            }
            for (index, task) in start {
                running += 1;
                self.spawn_task(
                    run,
                    &slots,
                    index,
                    task,
                    (&environments, &external),
                    &stop,
                    &done_tx,
                );
            }
            if final_state.is_some() {
                break;
            }
            if created_tasks {
                continue;
            }

            let wake_at = next_wake(&slots, running, concurrency);
            let sleep = wake_at.map(|at| {
                (at - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .max(Duration::from_millis(1))
            });
            tokio::select! {
                Some(done) = done_rx.recv() => {
                    finished.push(done);
                    while let Ok(done) = done_rx.try_recv() {
                        finished.push(done);
                    }
                }
                () = options.cancel.cancelled(), if !cancelling => {
                    cancelling = true;
                    stop.cancel();
                }
                () = tokio::time::sleep(sleep.unwrap_or(HEARTBEAT)), if sleep.is_some() => {}
                _ = heartbeat.tick() => {
                    match self.store.heartbeat_run(run.id, &self.owner, Utc::now()).await {
                        Ok(true) => last_heartbeat = std::time::Instant::now(),
                        // A store that fails for a moment (a restarted
                        // PostgreSQL, a busy SQLite) is tolerated while the
                        // lease cannot have expired for others: they wait
                        // LEASE after the last heartbeat they saw.
                        Err(e) if last_heartbeat.elapsed() + HEARTBEAT < LEASE => {
                            tracing::warn!(run = %run.id, "heartbeat failed, retrying: {e}");
                        }
                        kept => {
                            // Lost the run (or the store for too long): stop
                            // executing it; what ran is re-run by whoever
                            // resumes it.
                            stop.cancel();
                            drain(&mut done_rx, running).await;
                            kept?;
                            return Err(Error::RunBusy { run: run.id, owner: "another process".into() });
                        }
                    }
                }
            }
        }
        self.summary(run.id).await
    }

    /// Creates the working directories of the steps still to run, in the
    /// background: a directory costs an inode allocation (up to a few
    /// hundred microseconds on ext4, bench/README.md), which then happens
    /// while earlier steps run instead of between a commit and a spawn.
    /// Best effort: a task creates its directory itself if it is missing.
    fn prepare_work_dirs(&self, run: RunId, slots: &[Slot]) {
        let dirs: Vec<std::path::PathBuf> = slots
            .iter()
            .filter(|s| !s.state.is_terminal())
            .map(|s| self.work_dir(run, &s.step.name, s.attempt))
            .collect();
        tokio::task::spawn_blocking(move || {
            for dir in dirs {
                let _ = std::fs::create_dir_all(dir);
            }
        });
    }

    /// The version of each dataset of another pipeline the plan reads: the
    /// latest one committed before the run was created, so a resumed run
    /// reads what its first attempt read (or, if there was none then, the
    /// latest). `None`: there is none.
    async fn resolve_reads(
        &self,
        run: &RunRow,
        plan: &Plan,
    ) -> Result<HashMap<String, Option<DatasetInput>>> {
        let mut out = HashMap::new();
        for name in plan.steps.iter().flat_map(|s| &s.reads) {
            if out.contains_key(name) {
                continue;
            }
            let parts: Vec<&str> = name.split('.').collect();
            let (namespace, dataset) = match parts.as_slice() {
                [p, s] => (run.namespace.clone(), format!("{p}.{s}")),
                [ns, p, s] => ((*ns).to_owned(), format!("{p}.{s}")),
                _ => (run.namespace.clone(), name.clone()),
            };
            let versions = self.store.dataset_versions(&namespace, &dataset).await?;
            let before_run = versions
                .iter()
                .filter(|v| v.created_at <= run.created_at)
                .max_by_key(|v| v.version);
            // None existed when the run was created: the run failed on it
            // and is being resumed after the upstream pipeline ran.
            let input = before_run
                .or_else(|| versions.iter().max_by_key(|v| v.version))
                .map(|row| DatasetInput {
                    version: row.reference(),
                    files: row.files.clone(),
                    schema: row.schema.clone(),
                    rows: row.rows,
                    view: None,
                });
            out.insert(name.clone(), input);
        }
        Ok(out)
    }

    fn load_environments(&self, run: &RunRow, plan: &Plan) -> Result<HashMap<String, Environment>> {
        let mut envs = HashMap::new();
        let names = plan
            .steps
            .iter()
            .filter_map(|s| s.environment.clone())
            .chain(run.environment.clone());
        for name in names {
            if let std::collections::hash_map::Entry::Vacant(entry) = envs.entry(name) {
                let env = self.load_environment(entry.key())?;
                entry.insert(env);
            }
        }
        Ok(envs)
    }

    /// One slot per plan step, holding its latest stored attempt.
    async fn slots(&self, run: &RunRow, plan: &Plan) -> Result<Vec<Slot>> {
        let tasks = self.store.tasks(run.id).await?;
        let mut outputs: HashMap<TaskId, DatasetVersionRow> = self
            .store
            .run_datasets(run.id)
            .await?
            .into_iter()
            .map(|d| (d.task_id, d))
            .collect();
        let index: HashMap<&str, usize> = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let mut slots = Vec::with_capacity(plan.steps.len());
        for step in &plan.steps {
            let deps = step
                .depends_on
                .iter()
                .map(|d| {
                    index.get(d.as_str()).copied().ok_or_else(|| {
                        Error::Internal(format!("step `{}` depends on unknown `{d}`", step.name))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let latest = tasks
                .iter()
                .filter(|t| t.step == step.name)
                .max_by_key(|t| t.attempt)
                .ok_or_else(|| Error::Internal(format!("step `{}` has no task", step.name)))?;
            slots.push(Slot {
                step: step.clone(),
                deps,
                task: Some(latest.id),
                attempt: latest.attempt,
                state: latest.state,
                not_before: latest.not_before,
                base_attempt: latest.attempt,
                value: latest.value.clone(),
                output: outputs.remove(&latest.id),
            });
        }
        Ok(slots)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "called from one place in the loop, with the loop's own locals"
    )]
    fn spawn_task(
        &self,
        run: &RunRow,
        slots: &[Slot],
        index: usize,
        task: TaskId,
        (environments, external): (
            &HashMap<String, Environment>,
            &HashMap<String, Option<DatasetInput>>,
        ),
        stop: &CancellationToken,
        done_tx: &mpsc::UnboundedSender<TaskDone>,
    ) {
        let slot = &slots[index];
        let env = slot
            .step
            .environment
            .as_ref()
            .or(run.environment.as_ref())
            .and_then(|name| environments.get(name))
            .cloned()
            .unwrap_or_default();
        let params = run.params.as_object().cloned().unwrap_or_default();
        let mut missing_reads = Vec::new();
        let inputs = slot_inputs(run, slots, index, external, &mut missing_reads);
        let upstream_values: BTreeMap<String, serde_json::Value> = slot
            .deps
            .iter()
            .filter_map(|&d| {
                let dep = &slots[d];
                dep.value.clone().map(|v| (dep.step.name.clone(), v))
            })
            .collect();
        let secrets = secret_values(&env);
        let template = TemplateContext {
            params: params.clone(),
            env_vars: env.vars.clone(),
            secrets: secrets.clone(),
            run: RunInfo {
                id: run.id.0,
                pipeline: run.pipeline.clone(),
                namespace: run.namespace.clone(),
                logical_date: run
                    .created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                attempt: slot.attempt,
                started_by: run.created_by.clone(),
            },
            trigger_payload: serde_json::Value::Null,
            steps: upstream_values,
        };
        // Steps reach the project's files (data, scripts) through this.
        let mut vars = env.vars.clone();
        vars.insert(
            "WEIR_PROJECT_DIR".to_owned(),
            self.config.project_root.display().to_string(),
        );
        let job = TaskJob {
            run: run.id,
            task,
            namespace: run.namespace.clone(),
            pipeline: run.pipeline.clone(),
            step: slot.step.clone(),
            attempt: slot.attempt,
            params,
            vars,
            template,
            work_dir: self.work_dir(run.id, &slot.step.name, slot.attempt),
            inputs,
            missing_reads,
            environment: env,
            secrets,
        };
        let logs = Arc::clone(&self.logs);
        let blobs = Arc::clone(self.blobs.object_store());
        let registry = Arc::clone(&self.registry);
        let cancel = stop.child_token();
        let done_tx = done_tx.clone();
        tokio::spawn(async move {
            let mut inputs: Vec<weir_types::DatasetVersionRef> = Vec::new();
            for version in job.inputs.values().flat_map(DatasetInput::stored_versions) {
                if !inputs.contains(&version) {
                    inputs.push(version);
                }
            }
            let outcome = job.execute(&logs, blobs, &registry, cancel).await;
            let _ = done_tx.send(TaskDone {
                slot: index,
                task,
                inputs,
                outcome,
            });
        });
    }
}

/// When the loop must wake up by itself: when the earliest queued retry
/// comes due, if a slot is free for it. With none free, a finishing task
/// wakes the loop; a timer would spin on a retry that is already due.
fn next_wake(slots: &[Slot], running: usize, concurrency: usize) -> Option<DateTime<Utc>> {
    if running >= concurrency {
        return None;
    }
    slots
        .iter()
        .filter(|s| s.state == TaskState::Queued && s.task.is_some())
        .filter_map(|s| s.not_before)
        .min()
}

/// Resume: attempts that were running when their process died are recorded
/// as failed ("interrupted"), and every step that has not succeeded gets a
/// new pending attempt.
fn recover_interrupted(
    run: RunId,
    slots: &mut [Slot],
    batch: &mut Batch,
    now: DateTime<Utc>,
    leftover_groups_killed: usize,
) {
    for (index, slot) in slots.iter_mut().enumerate() {
        let state = slot.state;
        match state {
            TaskState::Pending | TaskState::Queued => continue,
            s if s.satisfies_dependents() => continue,
            _ => {}
        }
        if state == TaskState::Running
            && let Some(task) = slot.task
        {
            let mut update = TaskUpdate::new(task, TaskState::Running, TaskState::Failed, now);
            let mut error = "interrupted: the weir process running this task stopped".to_owned();
            if leftover_groups_killed > 0 {
                error.push_str(&format!(
                    "; {leftover_groups_killed} leftover process group(s) of the run were killed"
                ));
            }
            update.error = Some(error.clone());
            batch.update(slot, update, Some(error));
        }
        slot.attempt += 1;
        slot.base_attempt = slot.attempt;
        slot.state = TaskState::Pending;
        slot.task = None;
        slot.not_before = None;
        slot.value = None;
        slot.output = None;
        batch.new_attempt(run, index, slot, now);
    }
}

/// Records a finished task; a failure with retries left queues a new attempt.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename them"
)]
fn finish_task(
    run: RunId,
    namespace: &str,
    pipeline: &str,
    slots: &mut [Slot],
    done: TaskDone,
    cancelling: bool,
    batch: &mut Batch,
    now: DateTime<Utc>,
) {
    let index = done.slot;
    let slot = &mut slots[index];
    let mut update = TaskUpdate::new(done.task, TaskState::Running, TaskState::Failed, now);
    match done.outcome {
        Ok(output) => {
            update.to = TaskState::Succeeded;
            update.metering = Some(output.metering);
            update.exit_code = output.exit_code;
            update.value = output.value.clone();
            update.warnings = output.warnings.clone();
            if let Some(dataset) = output.dataset {
                update.output = Some(NewDatasetVersion {
                    namespace: namespace.to_owned(),
                    name: dataset_name(pipeline, &slot.step.name),
                    schema: dataset.schema,
                    rows: dataset.rows,
                    bytes: dataset.bytes,
                    files: dataset.files,
                    inputs: done.inputs,
                });
                batch.output_slots.push(index);
            }
            slot.state = TaskState::Succeeded;
            slot.value = output.value;
            batch.update(slot, update, None);
        }
        Err(ActionError::Cancelled { metering }) => {
            update.to = TaskState::Cancelled;
            update.metering = Some(metering);
            slot.state = TaskState::Cancelled;
            batch.update(slot, update, None);
        }
        Err(error) => {
            let message = error.to_string();
            update.metering = Some(error.metering());
            update.exit_code = error.exit_code();
            update.error = Some(message.clone());
            slot.state = TaskState::Failed;
            batch.update(slot, update, Some(message));
            let retries_used = slot.attempt - slot.base_attempt;
            if !cancelling && retries_used < slot.step.retries.max {
                slot.attempt += 1;
                let delay = slot.step.retries.delay_before(retries_used + 2);
                slot.state = TaskState::Queued;
                slot.task = None;
                // Backoffs are bounded at `weir check`; saturate rather than
                // retry at once if an old plan snapshot holds a huge one.
                let not_before = chrono::Duration::from_std(delay)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                slot.not_before = Some(not_before);
                batch.new_attempt(run, index, &slots[index], now);
            }
        }
    }
}

/// Moves steps forward in plan (topological) order: blocked steps become
/// `upstream_failed`, ready ones `queued` or straight `running` when a slot
/// is free. Returns the run's final state once every step is terminal.
fn advance(
    slots: &mut [Slot],
    batch: &mut Batch,
    free: usize,
    cancelling: bool,
    now: DateTime<Utc>,
) -> Option<RunState> {
    let mut free = free;
    for index in 0..slots.len() {
        let state = slots[index].state;
        let Some(task) = slots[index].task else {
            continue;
        };
        let to = match state {
            TaskState::Pending | TaskState::Queued if cancelling => TaskState::Cancelled,
            TaskState::Pending => {
                let deps = slots[index].deps.iter().map(|&d| slots[d].state);
                let mut blocked = false;
                let mut ready = true;
                for dep in deps {
                    blocked |= matches!(
                        dep,
                        TaskState::Failed | TaskState::UpstreamFailed | TaskState::Cancelled
                    );
                    ready &= dep.satisfies_dependents();
                }
                if blocked {
                    TaskState::UpstreamFailed
                } else if ready && free > 0 {
                    TaskState::Running
                } else if ready {
                    TaskState::Queued
                } else {
                    continue;
                }
            }
            TaskState::Queued => {
                let due = slots[index].not_before.is_none_or(|at| at <= now);
                if due && free > 0 {
                    TaskState::Running
                } else {
                    continue;
                }
            }
            _ => continue,
        };
        let slot = &mut slots[index];
        batch.update(slot, TaskUpdate::new(task, state, to, now), None);
        slot.state = to;
        if to == TaskState::Running {
            free -= 1;
            batch.start.push((index, task));
        }
    }
    if slots.iter().any(|s| !s.state.is_terminal()) {
        return None;
    }
    // Every step done is success even if a cancel arrived as the last task
    // finished.
    Some(if slots.iter().all(|s| s.state.satisfies_dependents()) {
        RunState::Succeeded
    } else if cancelling {
        RunState::Cancelled
    } else {
        RunState::Failed
    })
}

async fn drain(done_rx: &mut mpsc::UnboundedReceiver<TaskDone>, mut running: usize) {
    while running > 0 && done_rx.recv().await.is_some() {
        running -= 1;
    }
}

/// What a spawned task needs, detached from the executor's borrows.
struct TaskJob {
    run: RunId,
    task: TaskId,
    namespace: String,
    pipeline: String,
    step: Step,
    attempt: u32,
    params: serde_json::Map<String, serde_json::Value>,
    vars: BTreeMap<String, String>,
    template: TemplateContext,
    work_dir: std::path::PathBuf,
    inputs: BTreeMap<String, DatasetInput>,
    /// Datasets of other pipelines the step reads that have no version.
    missing_reads: Vec<String>,
    environment: Environment,
    secrets: BTreeMap<String, String>,
}

/// The inputs of the step in `slots[index]`: each dependency's stored
/// output, or for one that is not stored (`persist: false`) its query with
/// its own inputs, recursively; plus the datasets of other pipelines it
/// reads (those without a version go to `missing`).
fn slot_inputs(
    run: &RunRow,
    slots: &[Slot],
    index: usize,
    external: &HashMap<String, Option<DatasetInput>>,
    missing: &mut Vec<String>,
) -> BTreeMap<String, DatasetInput> {
    let slot = &slots[index];
    let mut inputs = BTreeMap::new();
    for &d in &slot.deps {
        let dep = &slots[d];
        let input = if let Some(row) = &dep.output {
            DatasetInput {
                version: row.reference(),
                files: row.files.clone(),
                schema: row.schema.clone(),
                rows: row.rows,
                view: None,
            }
        } else if let Some(sql) = dep
            .value
            .as_ref()
            .and_then(|v| v.get(weir_exec::VIEW_KEY))
            .and_then(|v| v.as_str())
        {
            DatasetInput {
                version: weir_types::DatasetVersionRef {
                    namespace: run.namespace.clone(),
                    name: weir_types::dataset_name(&run.pipeline, &dep.step.name),
                    version: 0,
                },
                files: Vec::new(),
                schema: serde_json::Value::Null,
                rows: 0,
                view: Some(Box::new(weir_exec::View {
                    sql: sql.to_owned(),
                    inputs: slot_inputs(run, slots, d, external, missing),
                })),
            }
        } else {
            continue;
        };
        inputs.insert(dep.step.name.clone(), input);
    }
    for name in &slot.step.reads {
        match external.get(name) {
            Some(Some(input)) => {
                inputs.insert(name.clone(), input.clone());
            }
            _ => {
                if !missing.contains(name) {
                    missing.push(name.clone());
                }
            }
        }
    }
    inputs
}

/// Values of the secrets `env` declares. Until weir has its secret store
/// (DESIGN §8), a secret `NAME` is read from the process environment
/// variable `WEIR_SECRET_NAME`; one that is not set is left out, so a
/// template using it fails as undefined and `anonymize: hash` refuses to run.
fn secret_values(env: &Environment) -> BTreeMap<String, String> {
    env.secrets
        .iter()
        .filter_map(|name| {
            std::env::var(format!("WEIR_SECRET_{name}"))
                .ok()
                .map(|value| (name.clone(), value))
        })
        .collect()
}

/// Adapts the store's log writer to the executor's `LogSink`.
struct WriterSink(TaskLogWriter);

impl LogSink for WriterSink {
    fn line(&self, stream: LogStream, text: &str) {
        self.0.append(stream.as_str(), text);
    }
}

impl TaskJob {
    async fn execute(
        self,
        logs: &weir_store::LogStore,
        blobs: Arc<dyn object_store::ObjectStore>,
        registry: &weir_exec::Registry,
        cancel: CancellationToken,
    ) -> std::result::Result<TaskOutput, ActionError> {
        let failed = |message: String| ActionError::Failed {
            message,
            exit_code: None,
            metering: weir_types::Metering::default(),
        };
        if let Err(e) = create_dir(&self.work_dir) {
            return Err(failed(format!("{e}: {}", source_text(&e))));
        }
        let writer = logs
            .writer(self.run, &self.step.name, self.attempt)
            .map_err(|e| failed(format!("cannot open the task log: {e}")))?;
        let sink = Arc::new(WriterSink(writer));
        let rendered = match self.missing_reads.first() {
            Some(name) => {
                let pipeline = name.rsplit('.').nth(1).unwrap_or(name);
                Err(format!(
                    "dataset `{name}` has no version yet\nhint: run pipeline `{pipeline}` first (`weir run {pipeline}`)"
                ))
            }
            None => weir_spec::render_value(&self.step.spec, &self.template)
                .map_err(|e| format!("template error: {e}")),
        };
        let outcome = match rendered {
            Err(message) => {
                sink.line(LogStream::System, &message);
                Err(failed(message))
            }
            Ok(spec) => {
                let cx = TaskContext {
                    run_id: self.run,
                    task_id: self.task,
                    namespace: self.namespace,
                    pipeline: self.pipeline,
                    step: self.step.name.clone(),
                    attempt: self.attempt,
                    params: self.params,
                    vars: self.vars,
                    work_dir: self.work_dir,
                    timeout: self.step.timeout,
                    cancel,
                    log: sink.clone(),
                    inputs: self.inputs,
                    blobs,
                    data: self.step.data.clone(),
                    environment: self.environment,
                    secrets: self.secrets,
                };
                registry.run(&self.step.kind, spec, cx).await
            }
        };
        if let Err(e) = &outcome {
            sink.line(
                LogStream::System,
                &format!("attempt {} failed: {e}", self.attempt),
            );
        }
        // Logs are stored before the task's end is committed.
        match Arc::try_unwrap(sink) {
            Ok(WriterSink(writer)) => {
                if let Err(e) = writer.finish().await {
                    tracing::warn!(step = %self.step.name, "could not store the task log: {e}");
                }
            }
            Err(_) => tracing::warn!(step = %self.step.name, "task log still in use at task end"),
        }
        outcome
    }
}

fn source_text(e: &Error) -> String {
    std::error::Error::source(e).map_or_else(String::new, ToString::to_string)
}

#[cfg(test)]
mod tests {
    use weir_spec::RetryPolicy;

    use super::*;

    fn slot(state: TaskState, not_before: Option<DateTime<Utc>>) -> Slot {
        Slot {
            step: Step {
                name: "s".into(),
                kind: "shell".into(),
                spec: serde_json::json!("true"),
                depends_on: Vec::new(),
                retries: RetryPolicy::default(),
                timeout: None,
                environment: None,
                data: weir_spec::StepData::default(),
                reads: Vec::new(),
            },
            deps: Vec::new(),
            task: Some(TaskId(1)),
            attempt: 2,
            state,
            not_before,
            base_attempt: 1,
            value: None,
            output: None,
        }
    }

    #[test]
    fn a_due_retry_sets_no_timer_while_every_slot_is_busy() {
        let due = Utc::now() - chrono::Duration::seconds(1);
        let later = Utc::now() + chrono::Duration::seconds(5);
        let slots = [
            slot(TaskState::Queued, Some(later)),
            slot(TaskState::Queued, Some(due)),
            slot(TaskState::Running, None),
        ];
        assert_eq!(next_wake(&slots, 1, 1), None, "no free slot: no timer");
        assert_eq!(next_wake(&slots, 0, 1), Some(due), "earliest retry");
        assert_eq!(next_wake(&slots[2..], 0, 1), None, "nothing queued");
    }

    #[test]
    fn a_run_whose_steps_all_succeeded_is_succeeded_even_when_cancelling() {
        let mut slots = [
            slot(TaskState::Succeeded, None),
            slot(TaskState::Cached, None),
        ];
        let mut batch = Batch::default();
        assert_eq!(
            advance(&mut slots, &mut batch, 2, true, Utc::now()),
            Some(RunState::Succeeded)
        );
        let mut slots = [
            slot(TaskState::Succeeded, None),
            slot(TaskState::Pending, None),
        ];
        assert_eq!(
            advance(&mut slots, &mut batch, 2, true, Utc::now()),
            Some(RunState::Cancelled),
            "a pending step is cancelled, and so is the run"
        );
    }
}
