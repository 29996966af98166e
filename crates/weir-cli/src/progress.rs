//! Live progress of a run: one redrawn line per step on a terminal, plain
//! line-per-event output otherwise (pipes, CI logs, `NO_COLOR`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use weir_engine::RunEvent;
use weir_types::TaskState;

use crate::output;

pub async fn display(
    mut events: mpsc::UnboundedReceiver<RunEvent>,
    steps: Vec<String>,
    rich: bool,
) {
    let width = steps.iter().map(|s| s.chars().count()).max().unwrap_or(4);
    if rich {
        let mut live = Live::new(&steps, width);
        while let Some(event) = events.recv().await {
            live.show(&event);
        }
        live.finish();
    } else {
        let start = Instant::now();
        while let Some(event) = events.recv().await {
            if let Some(line) = plain_line(&event, width, start.elapsed()) {
                output::line(line);
            }
        }
    }
}

/// The line printed for an event in plain mode.
fn plain_line(event: &RunEvent, width: usize, elapsed: Duration) -> Option<String> {
    let RunEvent::Task {
        step,
        attempt,
        state,
        error,
        not_before,
        ..
    } = event
    else {
        return None;
    };
    let mut line = format!(
        "[{:>7}] {step:<width$}  {:<15} attempt {attempt}",
        output::duration(elapsed.as_secs_f64()),
        state.as_str()
    );
    if let (TaskState::Queued, Some(at)) = (state, not_before) {
        let wait = (*at - chrono::Utc::now()).as_seconds_f64().max(0.0);
        line.push_str(&format!(" (retry in {})", output::duration(wait)));
    }
    // The first line: the summary after the run has the rest.
    if let Some(error) = error {
        line.push_str(&format!(": {}", error.lines().next().unwrap_or_default()));
    }
    Some(line)
}

struct Live {
    bars: HashMap<String, (ProgressBar, Instant)>,
    multi: MultiProgress,
    /// Waiting and finished steps: a fixed message.
    still: ProgressStyle,
    /// A running step: spinner and its elapsed time, redrawn as it ticks.
    running: ProgressStyle,
}

impl Live {
    fn new(steps: &[String], width: usize) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let style = ProgressStyle::with_template(&format!("  {{prefix:<{width}}}  {{msg}}"))
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let running = ProgressStyle::with_template(&format!(
            "{{spinner:.cyan}} {{prefix:<{width}}}  {{msg}}  {{elapsed}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bars = steps
            .iter()
            .map(|step| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(step.clone());
                bar.set_message("pending");
                bar.tick();
                (step.clone(), (bar, Instant::now()))
            })
            .collect();
        Live {
            bars,
            multi,
            still: style,
            running,
        }
    }

    fn show(&mut self, event: &RunEvent) {
        let RunEvent::Task {
            step,
            attempt,
            state,
            error,
            ..
        } = event
        else {
            return;
        };
        let Some((bar, started)) = self.bars.get_mut(step) else {
            return;
        };
        match state {
            TaskState::Running => {
                *started = Instant::now();
                bar.set_style(self.running.clone());
                bar.reset_elapsed();
                bar.enable_steady_tick(Duration::from_millis(120));
                bar.set_message(format!("running  attempt {attempt}"));
            }
            s if s.is_terminal() => {
                let took = output::duration(started.elapsed().as_secs_f64());
                let mark = match s {
                    TaskState::Succeeded | TaskState::Cached | TaskState::Skipped => "✓",
                    TaskState::Cancelled => "-",
                    _ => "✗",
                };
                let reason = error
                    .as_deref()
                    .map(|e| format!(": {}", e.lines().next().unwrap_or_default()))
                    .unwrap_or_default();
                bar.disable_steady_tick();
                bar.set_style(self.still.clone());
                bar.set_message(format!("{mark} {s}  attempt {attempt}  {took}{reason}"));
                bar.tick();
            }
            s => bar.set_message(format!("{s}  attempt {attempt}")),
        }
    }

    fn finish(self) {
        for (bar, _) in self.bars.values() {
            bar.disable_steady_tick();
            bar.abandon();
        }
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_name_step_state_and_attempt() {
        let event = RunEvent::Task {
            step: "clean".into(),
            attempt: 2,
            state: TaskState::Failed,
            at: chrono::Utc::now(),
            error: Some("exit code 3".into()),
            not_before: None,
        };
        let line = plain_line(&event, 6, Duration::from_millis(1500));
        assert_eq!(
            line.as_deref(),
            Some("[  1.50s] clean   failed          attempt 2: exit code 3")
        );
    }
}
