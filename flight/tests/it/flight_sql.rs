//! Flight SQL end to end: a real server on a free port, arrow-flight's client.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetTables, SqlInfo};
use arrow_flight::{Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, Ticket};
use civlink_catalog::policy::{AuditAction, OutcomeKind, UNAUTHENTICATED};
use civlink_query::Limits;
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tonic::Code;

use crate::fixture::{CLOSED, Fixture, PEOPLE, fetch, id, people, query, scalar_i64, status_of, strings, try_fetch};

#[tokio::test]
async fn handshake_then_scoped_queries() {
    let fx = Fixture::start().await;
    let mut client = fx.client().await;
    client.handshake("county", &fx.county).await.unwrap();
    assert_eq!(client.token(), Some(&fx.county), "the bearer is the token itself");

    // County 630102: four rows (the NULL-division row and the other county are out).
    let count = format!("SELECT count(*) FROM {PEOPLE}");
    assert_eq!(scalar_i64(&query(&mut client, &count).await), 4);
    let mut township = fx.client_with(&fx.township).await;
    assert_eq!(scalar_i64(&query(&mut township, &count).await), 2);
    let mut province = fx.client_with(&fx.province).await;
    assert_eq!(scalar_i64(&query(&mut province, &count).await), 5);
    let mut admin = fx.client_with(&fx.admin).await;
    assert_eq!(scalar_i64(&query(&mut admin, &count).await), 6, "Admin is not row-scoped");

    // Unqualified names resolve in the principal's department schema only.
    let err = client.execute("SELECT * FROM population".into(), None).await.unwrap_err();
    assert_eq!(status_of(&err), Code::InvalidArgument);
    fx.stop().await;
}

#[tokio::test]
async fn masked_columns_come_back_masked_and_cannot_be_probed() {
    let fx = Fixture::start().await;
    let mut client = fx.client_with(&fx.county).await;
    let batches = query(
        &mut client,
        &format!("SELECT name, id_number, division_code FROM {PEOPLE} WHERE division_code = '630102001001'"),
    )
    .await;
    let (zhang_id, _, _) = &people()[0];
    assert_eq!(strings(&batches, 0), vec![Some("张*".to_owned())]);
    // The ID number is a pseudonym under the deployment's key, which the server read from the store.
    let pseudonym = fx.store.mask_key().await.unwrap().pseudonym(zhang_id);
    assert!(pseudonym.starts_with("ps_") && pseudonym.len() == 27, "{pseudonym}");
    assert_eq!(strings(&batches, 1), vec![Some(pseudonym.clone())]);
    assert_eq!(strings(&batches, 2), vec![Some("630102001001".to_owned())]);

    // Predicates see the masked value: the clear one finds nothing.
    let probe = format!("SELECT count(*) FROM {PEOPLE} WHERE name = '张三'");
    assert_eq!(scalar_i64(&query(&mut client, &probe).await), 0);
    let probe = format!("SELECT count(*) FROM {PEOPLE} WHERE id_number = '{zhang_id}'");
    assert_eq!(scalar_i64(&query(&mut client, &probe).await), 0);
    // The client's civlink_mask has no key: it cannot compute a pseudonym to look one up with.
    let probe = format!(
        r#"SELECT count(*) FROM {PEOPLE} WHERE id_number = civlink_mask('{zhang_id}', '{{"strategy":"pseudonym"}}')"#
    );
    assert_eq!(scalar_i64(&query(&mut client, &probe).await), 0);
    let probe = format!(r#"SELECT civlink_mask('{zhang_id}', '{{"strategy":"pseudonym"}}')"#);
    assert_eq!(strings(&query(&mut client, &probe).await, 0), vec![Some("*".repeat(18))]);
    // The pseudonym is stable: the same value in every query and session.
    let probe = format!("SELECT count(*) FROM {PEOPLE} WHERE id_number = '{pseudonym}'");
    assert_eq!(scalar_i64(&query(&mut client, &probe).await), 1);

    // The UDFs work on what the principal sees (a masked ID is no valid ID: NULL).
    let batches = query(
        &mut client,
        &format!(
            "SELECT division_level(division_code), division_name(division_parent(division_code, 'county')), \
             id_sex('{zhang_id}') FROM {PEOPLE} WHERE division_code = '630102001001'"
        ),
    )
    .await;
    assert_eq!(strings(&batches, 0), vec![Some("village".to_owned())]);
    assert_eq!(strings(&batches, 1), vec![Some("城东区".to_owned())]);
    assert_eq!(strings(&batches, 2), vec![Some("1".to_owned())]);
    fx.stop().await;
}

#[tokio::test]
async fn prepared_statement_with_a_parameter() {
    let fx = Fixture::start().await;
    let mut client = fx.client_with(&fx.county).await;
    let mut prepared =
        client.prepare(format!("SELECT count(*) AS n FROM {PEOPLE} WHERE division_code LIKE $1"), None).await.unwrap();
    let parameters = prepared.parameter_schema().unwrap().clone();
    assert_eq!(parameters.fields().len(), 1);
    assert_eq!(parameters.field(0).name(), "$1");
    assert_eq!(prepared.dataset_schema().unwrap().field(0).name(), "n");

    let bind = |value: &str| {
        let schema = Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![value]))]).unwrap()
    };
    prepared.set_parameters(bind("630102001%")).unwrap();
    let info = prepared.execute().await.unwrap();
    assert_eq!(scalar_i64(&fetch(&mut client, info).await), 2);
    prepared.set_parameters(bind("630102%")).unwrap();
    let info = prepared.execute().await.unwrap();
    assert_eq!(scalar_i64(&fetch(&mut client, info).await), 4);
    // Still scoped: another county's prefix finds nothing.
    prepared.set_parameters(bind("630103%")).unwrap();
    let info = prepared.execute().await.unwrap();
    assert_eq!(scalar_i64(&fetch(&mut client, info).await), 0);
    prepared.close().await.unwrap();

    // Executing without binding the parameter is the client's mistake.
    let mut unbound = client.prepare(format!("SELECT count(*) FROM {PEOPLE} WHERE name = $1"), None).await.unwrap();
    let err = unbound.execute().await.unwrap_err();
    assert_eq!(status_of(&err), Code::InvalidArgument);
    fx.stop().await;
}

#[tokio::test]
async fn metadata_lists_only_what_the_principal_may_read() {
    let fx = Fixture::start().await;
    let mut client = fx.client_with(&fx.county).await;

    let info = client
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: None,
            table_name_filter_pattern: None,
            table_types: vec![],
            include_schema: true,
        })
        .await
        .unwrap();
    let batches = fetch(&mut client, info).await;
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1, "the closed dataset is not listed");
    let batch = &batches[0];
    assert_eq!(batch.column(0).as_string::<i32>().value(0), "civlink");
    assert_eq!(batch.column(1).as_string::<i32>().value(0), "gongan");
    assert_eq!(batch.column(2).as_string::<i32>().value(0), "population");
    assert_eq!(batch.column(3).as_string::<i32>().value(0), "TABLE");
    let ipc = batch.column(4).as_binary::<i32>().value(0).to_vec();
    let schema = Schema::try_from(arrow_flight::IpcMessage(ipc.into())).unwrap();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert!(names.contains(&"name") && names.contains(&"division_code"), "{names:?}");
    assert!(schema.fields().iter().all(|f| f.data_type() != &DataType::Utf8View));

    let info = client.get_catalogs().await.unwrap();
    assert_eq!(strings(&fetch(&mut client, info).await, 0), vec![Some("civlink".to_owned())]);
    let info =
        client.get_db_schemas(CommandGetDbSchemas { catalog: None, db_schema_filter_pattern: None }).await.unwrap();
    assert_eq!(strings(&fetch(&mut client, info).await, 1), vec![Some("gongan".to_owned())]);
    let info = client.get_table_types().await.unwrap();
    assert_eq!(strings(&fetch(&mut client, info).await, 0), vec![Some("TABLE".to_owned())]);
    let info = client
        .get_primary_keys(CommandGetPrimaryKeys {
            catalog: None,
            db_schema: Some("gongan".into()),
            table: "population".into(),
        })
        .await
        .unwrap();
    assert_eq!(strings(&fetch(&mut client, info).await, 3), vec![Some("id_number".to_owned())]);
    let info = client.get_sql_info(vec![SqlInfo::FlightSqlServerName, SqlInfo::FlightSqlServerReadOnly]).await.unwrap();
    assert_eq!(fetch(&mut client, info).await.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
    let info = client.get_xdbc_type_info(Default::default()).await.unwrap();
    assert!(fetch(&mut client, info).await.iter().map(RecordBatch::num_rows).sum::<usize>() >= 5);

    // information_schema agrees.
    let batches =
        query(&mut client, "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = 'civlink' AND table_schema <> 'information_schema'").await;
    // The readable dataset, and the findings of the principal's division (every session has them).
    let mut listed = strings(&batches, 1);
    listed.sort();
    assert_eq!(listed, vec![Some("findings".to_owned()), Some("population".to_owned())]);
    fx.stop().await;
}

#[tokio::test]
async fn unauthenticated_and_forbidden() {
    let fx = Fixture::start().await;
    let sql = format!("SELECT count(*) FROM {PEOPLE}");

    let mut anonymous = fx.client().await;
    let err = anonymous.execute(sql.clone(), None).await.unwrap_err();
    assert_eq!(status_of(&err), Code::Unauthenticated);
    let mut wrong = fx.client_with("clk_0000000000000000_nope").await;
    assert_eq!(status_of(&wrong.execute(sql.clone(), None).await.unwrap_err()), Code::Unauthenticated);
    let mut bad_user = fx.client().await;
    assert!(bad_user.handshake("someone-else", &fx.county).await.is_err());
    let mut bad_password = fx.client().await;
    assert!(bad_password.handshake("county", "clk_bogus").await.is_err());

    // A ticket is useless without credentials, too.
    let mut client = fx.client_with(&fx.county).await;
    let info = client.execute(sql.clone(), None).await.unwrap();
    let ticket: Ticket = info.endpoint[0].ticket.clone().unwrap();
    let err = anonymous.do_get(ticket).await.err().unwrap();
    assert_eq!(status_of(&err), Code::Unauthenticated);

    // Revocation applies at the next call.
    let tokens = fx.store.tokens().await.unwrap();
    let township = tokens.iter().find(|t| t.principal == "township").unwrap();
    let mut revoked = fx.client_with(&fx.township).await;
    assert_eq!(scalar_i64(&query(&mut revoked, &sql).await), 2);
    fx.store.revoke_token(&township.id).await.unwrap();
    assert_eq!(status_of(&revoked.execute(sql.clone(), None).await.unwrap_err()), Code::Unauthenticated);

    // A registered dataset one may not read, and any write, are denied.
    let err = client.execute(format!("SELECT * FROM {CLOSED}"), None).await.unwrap_err();
    assert_eq!(status_of(&err), Code::PermissionDenied);
    let err = client.execute("CREATE TABLE minzheng.x AS SELECT 1".into(), None).await.unwrap_err();
    assert_eq!(status_of(&err), Code::PermissionDenied);
    let err = client.execute_update(format!("DELETE FROM {PEOPLE}"), None).await.unwrap_err();
    assert_eq!(status_of(&err), Code::PermissionDenied);
    // Reading files directly is not a thing either.
    let err = client.execute("SELECT * FROM '/etc/passwd'".into(), None).await.unwrap_err();
    assert_eq!(status_of(&err), Code::InvalidArgument);
    // An unknown dataset is just not found.
    let err = client.execute("SELECT * FROM gongan.nothing_here".into(), None).await.unwrap_err();
    assert_eq!(status_of(&err), Code::InvalidArgument);
    fx.stop().await;
}

#[tokio::test]
async fn every_handshake_and_query_is_audited() {
    let fx = Fixture::start().await;
    let mut client = fx.client().await;
    client.set_header("x-civlink-purpose", "低保资格复核");
    client.handshake("county", &fx.county).await.unwrap();
    let sql = format!("SELECT name FROM {PEOPLE}");
    let batches = query(&mut client, &sql).await;
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 4);
    let mut failed = fx.client().await;
    assert!(failed.handshake("mallory", "clk_bogus").await.is_err());

    // A query's entries are durable before its stream ends: no waiting.
    let entries = fx.store.audit_entries(None).await.unwrap();
    let handshake =
        entries.iter().find(|e| e.entry.action == AuditAction::Handshake && e.entry.principal == "county").unwrap();
    assert!(handshake.entry.outcome.is_ok());
    assert_eq!(handshake.entry.purpose.as_deref(), Some("低保资格复核"));
    let queries: Vec<_> =
        entries.iter().filter(|e| e.entry.action == AuditAction::Query && e.entry.principal == "county").collect();
    // One entry before the first batch, one when the stream ends, in that order.
    let [started, ended] = queries.as_slice() else { panic!("{queries:?}") };
    assert!(started.seq < ended.seq);
    assert_eq!(started.entry.outcome.kind, OutcomeKind::Started);
    for q in [started, ended] {
        assert_eq!(q.entry.sql_text.as_deref(), Some(sql.as_str()));
        assert_eq!(q.entry.datasets, vec![PEOPLE.to_owned()]);
        assert_eq!(q.entry.purpose.as_deref(), Some("低保资格复核"));
    }
    assert_eq!(ended.entry.rows, Some(4));
    assert!(ended.entry.outcome.is_ok());
    assert!(ended.entry.duration_ms.is_some());
    // The failed handshake is recorded without trusting the name it claimed.
    assert!(entries.iter().all(|e| e.entry.principal != "mallory"));
    let refused = entries.iter().find(|e| e.entry.principal == UNAUTHENTICATED).unwrap();
    assert_eq!(refused.entry.action, AuditAction::Handshake);
    assert_eq!(refused.entry.outcome.kind, OutcomeKind::Unauthenticated);
    assert_eq!(refused.entry.sql_text.as_deref(), Some("claimed user \"mallory\""));
    assert!(fx.store.verify_audit().await.unwrap().intact());
    fx.stop().await;
}

/// A query that runs for minutes (in a debug build) unless stopped.
const SLOW: &str = "SELECT count(*) FROM generate_series(1, 100000000000)";

#[tokio::test]
async fn limits_time_out_and_cap_concurrency() {
    let limits = Limits { query_timeout: Duration::from_secs(1), max_concurrent_per_principal: 1, ..Limits::default() };
    let fx = Fixture::with_limits(limits).await;
    let mut client = fx.client_with(&fx.county).await;

    let started = std::time::Instant::now();
    let info = client.execute(SLOW.into(), None).await.unwrap();
    let err = try_fetch(&mut client, info).await.unwrap_err();
    assert_eq!(status_of(&err), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(30));

    // One query at a time: a second one is refused while the first streams.
    let info = client.execute(SLOW.into(), None).await.unwrap();
    let first = client.do_get(info.endpoint[0].ticket.clone().unwrap()).await.unwrap();
    // Planning takes a slot too, so the second is refused at GetFlightInfo.
    let mut other = fx.client_with(&fx.county).await;
    let err = other.execute(format!("SELECT count(*) FROM {PEOPLE}"), None).await.unwrap_err();
    assert_eq!(status_of(&err), Code::ResourceExhausted);
    // Another principal is not affected.
    let mut township = fx.client_with(&fx.township).await;
    assert_eq!(scalar_i64(&query(&mut township, &format!("SELECT count(*) FROM {PEOPLE}")).await), 2);

    // The client dropping its stream stops the query and frees the slot.
    drop(first);
    let count = format!("SELECT count(*) FROM {PEOPLE}");
    let mut freed = false;
    for _ in 0..100 {
        if let Ok(info) = other.execute(count.clone(), None).await
            && let Ok(batches) = try_fetch(&mut other, info).await
        {
            assert_eq!(scalar_i64(&batches), 4);
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "the dropped query still holds its slot");
    // The dropped query's closing entry is written as its stream winds down,
    // which may finish just after the slot is free: wait for it (bounded).
    let cancelled = |entries: &[civlink_catalog::policy::AuditRecord]| {
        entries.iter().any(|e| e.entry.action == AuditAction::Query && e.entry.outcome.kind == OutcomeKind::Cancelled)
    };
    let mut entries = fx.store.audit_entries(None).await.unwrap();
    for _ in 0..100 {
        if cancelled(&entries) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        entries = fx.store.audit_entries(None).await.unwrap();
    }
    assert!(cancelled(&entries), "{entries:?}");
    // Both limits are recorded as limits: the time limit and the slot.
    let limited: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.action == AuditAction::Query && e.entry.outcome.kind == OutcomeKind::Limit)
        .collect();
    assert!(limited.len() >= 2, "{limited:?}");
    fx.stop().await;
}

#[tokio::test]
async fn cancel_flight_info_stops_a_running_query() {
    let fx = Fixture::start().await;
    let mut client = fx.client_with(&fx.county).await;
    let info = client.execute(SLOW.into(), None).await.unwrap();
    let mut stream = client.do_get(info.endpoint[0].ticket.clone().unwrap()).await.unwrap();

    // Another principal cannot cancel it.
    let mut township = fx.client_with(&fx.township).await;
    let action = Action::new("CancelFlightInfo", CancelFlightInfoRequest::new(info.clone()).encode_to_vec());
    let err = township.do_action(action.clone()).await.err().unwrap();
    assert_eq!(status_of(&err), Code::NotFound);

    // Give the server a moment to register the running query, then cancel it.
    let mut result = None;
    for _ in 0..50 {
        match client.do_action(action.clone()).await {
            Ok(results) => {
                let results: Vec<_> = results.try_collect().await.unwrap();
                result = Some(CancelFlightInfoResult::decode(results[0].body.clone()).unwrap());
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert_eq!(result.unwrap().status, CancelStatus::Cancelled as i32);
    let err = loop {
        match stream.next().await {
            Some(Ok(_)) => continue,
            Some(Err(e)) => break e,
            None => panic!("a cancelled query ends with an error"),
        }
    };
    assert_eq!(status_of(&err), Code::Cancelled);
    fx.stop().await;
}

#[tokio::test]
async fn ids_in_the_fixture_are_valid() {
    assert_eq!(id("63010219900307123").len(), 18);
    assert!(civlink_standards::idcard::CitizenId::parse(&people()[5].0).is_ok());
}

#[tokio::test]
async fn the_memory_cap_spills_or_fails_cleanly() {
    let limits = Limits { memory_per_query: 2 << 20, ..Limits::default() };
    let fx = Fixture::with_limits(limits).await;
    let mut client = fx.client_with(&fx.county).await;
    // A sort bigger than the cap spills to disk and completes.
    let batches = query(&mut client, "SELECT value FROM generate_series(1, 400000) ORDER BY value DESC").await;
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 400_000);
    // An aggregate state that cannot spill fails with RESOURCE_EXHAUSTED, not a crash.
    let info = client.execute("SELECT array_agg(value) FROM generate_series(1, 2000000)".into(), None).await.unwrap();
    let err = try_fetch(&mut client, info).await.unwrap_err();
    assert_eq!(status_of(&err), Code::ResourceExhausted, "{err}");
    fx.stop().await;
}

/// What the admin gets from `people` under `limits`.
struct Scanned {
    /// The physical plan of `SELECT *`.
    plan: String,
    /// Bytes the table cache held after the queries.
    cached_bytes: usize,
    rows: i64,
    /// The type the engine holds `division_code` in.
    division_type: String,
    /// The unmasked columns in order, as they reach the client.
    all: Vec<RecordBatch>,
}

async fn plan_and_count(limits: Limits) -> Scanned {
    let fx = Fixture::with_limits(limits).await;
    let mut client = fx.client_with(&fx.admin).await;
    let rows = scalar_i64(&query(&mut client, &format!("SELECT count(*) FROM {PEOPLE}")).await);
    let plan = strings(&query(&mut client, &format!("EXPLAIN SELECT * FROM {PEOPLE}")).await, 1)
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    let typed = query(&mut client, &format!("SELECT arrow_typeof(division_code) FROM {PEOPLE} LIMIT 1")).await;
    let division_type = strings(&typed, 0).into_iter().flatten().next().unwrap();
    // Unmasked columns only: every fixture keys its pseudonyms afresh.
    let columns = "division_code, sex, ethnic_group, birth_date, relationship, status, status_date";
    let all = query(&mut client, &format!("SELECT {columns} FROM {PEOPLE} ORDER BY {columns}")).await;
    let cached_bytes = fx.factory.cache().bytes_held();
    fx.stop().await;
    Scanned { plan, rows, cached_bytes, division_type, all }
}

#[tokio::test]
async fn tables_that_fit_the_cache_are_scanned_from_memory_and_others_from_storage() {
    let cached = plan_and_count(Limits::default()).await;
    assert!(cached.cached_bytes > 0, "a small table is served from memory");
    // Held as plain strings, the type results travel in, so scans convert nothing.
    assert_eq!(cached.division_type, "Utf8");

    // A budget smaller than the table: it is read from its Parquet files, with the same rows.
    let too_small = plan_and_count(Limits { table_cache_bytes: 64, ..Limits::default() }).await;
    assert_eq!(too_small.cached_bytes, 0);
    // Plain types from storage too: nothing a client sees tells the two apart.
    assert_eq!(too_small.division_type, "Utf8");
    assert_eq!(too_small.rows, cached.rows);

    let off = plan_and_count(Limits { table_cache_bytes: 0, ..Limits::default() }).await;
    assert_eq!(off.cached_bytes, 0);
    // EXPLAIN is the same either way: it shows the scope boundary, not what is below it.
    assert_eq!(cached.plan, off.plan);
    assert!(!off.plan.contains(".parquet") && !off.plan.contains("partition_sizes"), "{}", off.plan);
    assert_eq!(off.rows, cached.rows);
    // The same values and wire types either way.
    assert!(cached.all.iter().map(RecordBatch::num_rows).sum::<usize>() > 0);
    assert_eq!(
        arrow::compute::concat_batches(&cached.all[0].schema(), &cached.all).unwrap(),
        arrow::compute::concat_batches(&off.all[0].schema(), &off.all).unwrap()
    );
}

#[tokio::test]
async fn connections_per_client_are_bounded() {
    let limits = Limits {
        connections: civlink_query::connections::ConnectionLimits { per_client: 2, total: 100 },
        ..Limits::default()
    };
    let fx = Fixture::with_limits(limits).await;
    let count = format!("SELECT count(*) FROM {PEOPLE}");
    let mut first = fx.client_with(&fx.county).await;
    let mut second = fx.client_with(&fx.county).await;
    assert_eq!(scalar_i64(&query(&mut first, &count).await), 4);
    assert_eq!(scalar_i64(&query(&mut second, &count).await), 4);
    // A third connection from the same address is closed before it is read.
    let third = tonic::transport::Channel::from_shared(format!("http://{}", fx.addr)).unwrap().connect().await;
    if let Ok(channel) = third {
        let mut client = arrow_flight::sql::client::FlightSqlServiceClient::new(channel);
        client.set_token(fx.county.clone());
        assert!(client.execute(count.clone(), None).await.is_err(), "the third connection was served");
    }
    drop(first);
    let mut served = false;
    for _ in 0..100 {
        if let Ok(channel) =
            tonic::transport::Channel::from_shared(format!("http://{}", fx.addr)).unwrap().connect().await
        {
            let mut client = arrow_flight::sql::client::FlightSqlServiceClient::new(channel);
            client.set_token(fx.county.clone());
            if let Ok(info) = client.execute(count.clone(), None).await
                && let Ok(batches) = try_fetch(&mut client, info).await
            {
                assert_eq!(scalar_i64(&batches), 4);
                served = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a closed connection frees its place");
    drop(second);
    fx.stop().await;
}
