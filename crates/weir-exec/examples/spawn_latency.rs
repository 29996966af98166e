//! Latency of `run_process` for trivial processes: the floor under every
//! shell/python task. Run with
//! `cargo run --release -p weir-exec --example spawn_latency [runs]`.
#![expect(
    clippy::print_stdout,
    reason = "an example that prints its measurements"
)]

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use weir_exec::process::{ProcessSpec, run_process};
use weir_exec::{LogSink, LogStream};

struct Discard;

impl LogSink for Discard {
    fn line(&self, _stream: LogStream, _text: &str) {}
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args().nth(1).map_or(Ok(200), |n| n.parse())?;
    let cwd = std::env::temp_dir();
    let env: std::collections::BTreeMap<String, String> = std::env::var("PATH")
        .map(|path| [("PATH".to_owned(), path)].into())
        .unwrap_or_default();
    let cases = [
        ("/bin/true", ProcessSpec::new("/bin/true", &cwd)),
        (
            "bash -c true",
            ProcessSpec::new("bash", &cwd).args(["-c", "true"]),
        ),
    ];
    println!("{runs} runs each");
    println!(
        "{:<14} {:>9} {:>9} {:>9}",
        "program", "median", "p90", "max"
    );
    for (name, spec) in cases {
        let spec = spec.env(env.clone());
        let cancel = CancellationToken::new();
        // Warm up the blocking pool and the page cache.
        for _ in 0..10 {
            run_process(&spec, &Discard, &cancel).await?;
        }
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let exit = run_process(&spec, &Discard, &cancel).await?;
            times.push(started.elapsed());
            if !exit.success() {
                return Err(format!("`{name}` failed: {exit}").into());
            }
        }
        times.sort();
        let at = |q: f64| ms(times[((times.len() - 1) as f64 * q).round() as usize]);
        println!(
            "{name:<14} {:>7.3}ms {:>7.3}ms {:>7.3}ms",
            at(0.5),
            at(0.9),
            at(1.0)
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
