//! `civlink-load`: the load client of the interactive-latency benchmark
//! (`benches/latency`, issue 19).
//!
//! Many principals query one `civlink serve` at once over Flight SQL, each
//! on its own HTTP/2 connection with its own token, every result checked.
//! It exists because the measurement shares two cores with the server: the
//! ADBC driver spends about 4 ms of CPU per query in the client, which alone
//! would cap the machine near 500 queries/s whatever the server did. This
//! client is `arrow-flight`'s own `FlightSqlServiceClient` on one tokio
//! thread, the same calls an ADBC client makes (`GetFlightInfo`, then
//! `DoGet` for each endpoint), at a fraction of the CPU.
//!
//! Protocol: one JSON document on stdin, one on stdout (progress and errors
//! on stderr), so that `bench_latency.py` drives it like its own ADBC
//! processes:
//!
//! ```json
//! {"uri": "http://127.0.0.1:PORT", "duration": 20.0, "warmup_rounds": 2,
//!  "mix": [["count", "SELECT count(*) FROM …"], …],
//!  "clients": [{"county": "630102", "token": "clk_…", "expected": {"count": [[12]], …}}]}
//! ```
//!
//! Each client first runs the whole mix once and checks every result against
//! `expected` (rows as JSON arrays), then `warmup_rounds` more times; when
//! all are ready, every client runs the mix from its own starting point for
//! `duration` seconds. The answer holds the latencies (ms) per query kind,
//! errors, queries per client and the client's CPU seconds in the window.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int32Type, Int64Type, UInt64Type};
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Barrier, Mutex, watch};
use tonic::transport::Channel;

/// What to run (stdin).
#[derive(Deserialize)]
struct Plan {
    uri: String,
    duration: f64,
    #[serde(default)]
    warmup_rounds: usize,
    mix: Vec<(String, String)>,
    clients: Vec<ClientPlan>,
}

/// One principal.
#[derive(Deserialize)]
struct ClientPlan {
    county: String,
    token: String,
    /// Per query kind, the rows its result must be.
    expected: BTreeMap<String, Value>,
}

/// What happened (stdout).
#[derive(Serialize, Default)]
struct Report {
    clients: usize,
    /// Per query kind, each timed query's latency in milliseconds.
    lat: BTreeMap<String, Vec<f64>>,
    errors: u64,
    first_error: Option<String>,
    setup_error: Option<String>,
    /// Queries each client completed in the window.
    per_client: BTreeMap<String, u64>,
    /// CPU seconds (user + system) this process spent in the window.
    cpu: Option<f64>,
}

type Client = FlightSqlServiceClient<Channel>;

fn main() -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut input) {
        eprintln!("civlink-load: cannot read the plan from stdin: {e}");
        return ExitCode::from(2);
    }
    let plan: Plan = match serde_json::from_str(&input) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("civlink-load: the plan on stdin is not valid: {e}");
            return ExitCode::from(2);
        }
    };
    // One thread: the point is to leave the cores to the server.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("civlink-load: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(run(plan));
    match serde_json::to_string(&report) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("civlink-load: cannot write the report: {e}");
            return ExitCode::from(2);
        }
    }
    if report.setup_error.is_some() { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

async fn run(plan: Plan) -> Report {
    let plan = Arc::new(plan);
    let report = Arc::new(Mutex::new(Report { clients: plan.clients.len(), ..Report::default() }));
    let ready = Arc::new(Barrier::new(plan.clients.len() + 1));
    let (start, window) = watch::channel(None::<(Instant, Instant)>);
    let mut tasks = Vec::new();
    for slot in 0..plan.clients.len() {
        let (plan, report, ready, window) =
            (Arc::clone(&plan), Arc::clone(&report), Arc::clone(&ready), window.clone());
        tasks.push(tokio::spawn(async move { client(slot, &plan, &report, &ready, window).await }));
    }
    ready.wait().await;
    let set_up = report.lock().await.setup_error.is_none();
    eprintln!("civlink-load: {} clients connected, verified and warmed up", plan.clients.len());
    let begin = Instant::now() + Duration::from_millis(200);
    let end = begin + Duration::from_secs_f64(if set_up { plan.duration } else { 0.0 });
    let _ = start.send(Some((begin, end)));
    tokio::time::sleep_until(begin.into()).await;
    let cpu_before = cpu_seconds();
    tokio::time::sleep_until(end.into()).await;
    let cpu_after = cpu_seconds();
    for task in tasks {
        if let Err(e) = task.await {
            let mut report = report.lock().await;
            report.setup_error.get_or_insert_with(|| format!("a client task failed: {e}"));
        }
    }
    let mut report = std::mem::take(&mut *report.lock().await);
    report.cpu = cpu_before.zip(cpu_after).map(|(a, b)| b - a);
    report
}

async fn client(
    slot: usize,
    plan: &Plan,
    report: &Mutex<Report>,
    ready: &Barrier,
    mut window: watch::Receiver<Option<(Instant, Instant)>>,
) {
    let me = &plan.clients[slot];
    let set_up = async {
        let channel = Channel::from_shared(plan.uri.clone())
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut flight = FlightSqlServiceClient::new(channel);
        flight.set_token(me.token.clone());
        for _ in 0..=plan.warmup_rounds {
            for (kind, sql) in &plan.mix {
                check(me, kind, query(&mut flight, sql).await?)?;
            }
        }
        Ok::<_, String>(flight)
    }
    .await;
    let flight = match set_up {
        Ok(flight) => Some(flight),
        Err(e) => {
            let mut report = report.lock().await;
            report.setup_error.get_or_insert_with(|| format!("county {}: {e}", me.county));
            None
        }
    };
    ready.wait().await;
    let Some(mut flight) = flight else { return };
    let Ok(window) = window.wait_for(Option::is_some).await.map(|w| *w) else { return };
    let Some((begin, end)) = window else { return };
    tokio::time::sleep_until(begin.into()).await;

    let mut lat: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let (mut done, mut errors, mut first_error) = (0u64, 0u64, None);
    let mut i = slot;
    loop {
        let (kind, sql) = &plan.mix[i % plan.mix.len()];
        i += 1;
        let started = Instant::now();
        if started >= end {
            break;
        }
        let outcome = query(&mut flight, sql).await.and_then(|rows| check(me, kind, rows));
        let finished = Instant::now();
        match outcome {
            Ok(()) if finished <= end => {
                lat.entry(kind).or_default().push(finished.duration_since(started).as_secs_f64() * 1e3);
                done += 1;
            }
            Ok(()) => {}
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{kind} as county {}: {e}", me.county));
            }
        }
    }
    let mut report = report.lock().await;
    for (kind, values) in lat {
        report.lat.entry(kind.to_owned()).or_default().extend(values);
    }
    report.errors += errors;
    if report.first_error.is_none() {
        report.first_error = first_error;
    }
    report.per_client.insert(me.county.clone(), done);
}

/// `sql`'s rows as JSON arrays: `GetFlightInfo`, then `DoGet` per endpoint.
async fn query(flight: &mut Client, sql: &str) -> Result<Vec<Value>, String> {
    let info = flight.execute(sql.to_owned(), None).await.map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
        let batches: Vec<RecordBatch> =
            flight.do_get(ticket).await.map_err(|e| e.to_string())?.try_collect().await.map_err(|e| e.to_string())?;
        for batch in &batches {
            rows.extend(json_rows(batch)?);
        }
    }
    Ok(rows)
}

fn check(me: &ClientPlan, kind: &str, rows: Vec<Value>) -> Result<(), String> {
    let expected = me.expected.get(kind).ok_or_else(|| format!("no expected rows for {kind}"))?;
    let got = Value::Array(rows);
    if &got == expected { Ok(()) } else { Err(format!("wrong result {got}, expected {expected}")) }
}

/// A batch's rows as JSON arrays (integers and strings: what the mix returns).
fn json_rows(batch: &RecordBatch) -> Result<Vec<Value>, String> {
    let mut rows = vec![Vec::with_capacity(batch.num_columns()); batch.num_rows()];
    for column in batch.columns() {
        for (r, row) in rows.iter_mut().enumerate() {
            let value = if column.is_null(r) {
                Value::Null
            } else {
                match column.data_type() {
                    DataType::Int64 => column.as_primitive::<Int64Type>().value(r).into(),
                    DataType::Int32 => column.as_primitive::<Int32Type>().value(r).into(),
                    DataType::UInt64 => column.as_primitive::<UInt64Type>().value(r).into(),
                    DataType::Utf8 => column.as_string::<i32>().value(r).into(),
                    DataType::LargeUtf8 => column.as_string::<i64>().value(r).into(),
                    DataType::Utf8View => column.as_string_view().value(r).into(),
                    other => return Err(format!("a column of type {other}, which this client does not compare")),
                }
            };
            row.push(value);
        }
    }
    Ok(rows.into_iter().map(Value::Array).collect())
}

/// This process's CPU time (user + system), from `/proc/self/stat`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports them in USER_HZ, 100 on every architecture it supports.
    Some(ticks as f64 / 100.0)
}
