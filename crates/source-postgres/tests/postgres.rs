//! The `postgres` kind against a real PostgreSQL server started by the test (the Debian server
//! binaries, run as the `postgres` user on a loopback port with a socket folder of its own;
//! `scripts/lib/setup.sh` installs them). Missing binaries fail the test loudly.

use futures::StreamExt;
use serde_json::json;
use uplink_model::time_expr::from_micros;
use uplink_model::{
    Boundary, Function, PlotRequest, ProcessedRequest, RawRequest, Sample, Span, Status, TagSearch,
    TimeRange, aggregate,
};
use uplink_source::DataSource;
use uplink_source_postgres::{Bucketing, PostgresSource};

mod server;
use server::Server;

const SECOND: i64 = 1_000_000;
const START: i64 = 1_700_000_000 * SECOND;
const PER_TAG: i64 = 250_000;

fn expected(tag: i64, i: i64) -> Sample {
    let mut sample = Sample::good(START + i * SECOND, i as f64 * 0.5 + tag as f64);
    if i % 7_919 == 3 {
        return Sample::bad(sample.time_us);
    }
    if i % 1_000 == 7 {
        sample.status = Status::Uncertain;
    } else if i % 5_000 == 11 {
        sample.status = Status::Bad;
    }
    sample
}

/// Equal samples, a missing value (NaN) equal to a missing value.
fn same(a: &[Sample], b: &[Sample]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(
            (x.time_us, x.value.to_bits(), x.status),
            (y.time_us, y.value.to_bits(), y.status),
            "sample {i}"
        );
    }
}

async fn long_table(server: &Server) {
    let mut db = server.admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE vals (tag text NOT NULL, time timestamptz NOT NULL, value double precision, quality integer);
         INSERT INTO vals SELECT 'tag' || t, to_timestamp({}) + i * interval '1 second',
                CASE WHEN i % 7919 = 3 THEN NULL ELSE i * 0.5 + t END,
                CASE WHEN i % 1000 = 7 THEN 64 WHEN i % 5000 = 11 THEN 0 ELSE 192 END
           FROM generate_series(0, 3) t, generate_series(0, {}) i;
         CREATE INDEX ON vals (tag, time);
         CREATE TABLE tag_info (name text, description text, units text);
         INSERT INTO tag_info VALUES ('tag1', 'Flow into tank 1', 'm³/h');
         CREATE TABLE wide (ts timestamp, \"TI 100\" double precision, \"FI-200\" real, note text);
         INSERT INTO wide SELECT to_timestamp({}) AT TIME ZONE 'UTC' + i * interval '1 second', i, CASE WHEN i % 2 = 0 THEN i END, 'x'
           FROM generate_series(0, 999) i;
         ANALYZE;",
        START / SECOND,
        PER_TAG - 1,
        START / SECOND
    )))
    .execute(&mut db)
    .await
    .unwrap();
}

async fn read(
    source: &PostgresSource,
    tag: &str,
    lo: i64,
    hi: i64,
    boundary: Boundary,
) -> Vec<Sample> {
    let request = RawRequest {
        tag: tag.into(),
        range: TimeRange::new(from_micros(lo), from_micros(hi)).unwrap(),
        max_count: None,
        boundary,
    };
    let mut stream = source.raw(&request).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= uplink_source::CHUNK);
        out.extend(chunk);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_historian_reads_long_and_wide_tables_and_names_bad_settings() {
    let server = Server::start();
    long_table(&server).await;
    let long = json!({"table": "vals", "timeColumn": "time", "tagColumn": "tag", "valueColumn": "value",
        "qualityColumn": "quality", "metadataTable": "tag_info"});
    let source = PostgresSource::open(&server.config(long.clone()))
        .await
        .unwrap();

    let page = source.search(&TagSearch::new("*")).await.unwrap();
    let names: Vec<&str> = page.tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["tag0", "tag1", "tag2", "tag3"]);
    assert_eq!(page.tags[1].units, "m³/h");
    assert_eq!(page.tags[1].description, "Flow into tank 1");

    let latest = source.snapshot(&["tag2".into()]).await.unwrap();
    assert_eq!(latest[0].to_sample(), expected(2, PER_TAG - 1));

    // 1 000 000 rows read back exactly, a page at a time.
    let mut total = 0;
    for t in 0..4 {
        let values = read(
            &source,
            &format!("tag{t}"),
            START,
            START + PER_TAG * SECOND,
            Boundary::Inside,
        )
        .await;
        assert_eq!(values.len() as i64, PER_TAG);
        same(
            &values,
            &(0..PER_TAG).map(|i| expected(t, i)).collect::<Vec<_>>(),
        );
        total += values.len();
    }
    assert_eq!(total, 1_000_000);
    let (lo, hi) = (START + 10 * SECOND + 1, START + 20 * SECOND + 1);
    let inside = read(&source, "tag3", lo, hi, Boundary::Inside).await;
    assert_eq!(
        inside,
        (11..=20).map(|i| expected(3, i)).collect::<Vec<_>>()
    );
    let outside = read(&source, "tag3", lo, hi, Boundary::Outside).await;
    assert_eq!(
        outside,
        (10..=21).map(|i| expected(3, i)).collect::<Vec<_>>()
    );
    let exact = read(
        &source,
        "tag3",
        START + 10 * SECOND,
        START + 20 * SECOND,
        Boundary::Outside,
    )
    .await;
    assert_eq!(exact, (10..=20).map(|i| expected(3, i)).collect::<Vec<_>>());

    // The plot computed by the server equals the model's over the same raw rows, for few and
    // many intervals, uneven cuts, bad and missing values included.
    for (tag, from, to, intervals) in [
        ("tag0", START, START + 100_000 * SECOND, 50),
        ("tag1", START + 3, START + 249_999 * SECOND, 7),
        (
            "tag2",
            START - 5 * SECOND,
            START + 30_000 * SECOND + 17,
            4_999,
        ),
        ("tag3", START + 100 * SECOND, START + 200 * SECOND, 1_000),
    ] {
        let plot = PlotRequest {
            tag: tag.into(),
            range: TimeRange::new(from_micros(from), from_micros(to)).unwrap(),
            intervals,
        };
        let raw = read(&source, tag, from, to, Boundary::Inside).await;
        let answer = source.plot(&plot).await.unwrap();
        assert_eq!(
            answer.by,
            uplink_model::ComputedBy::Source,
            "date_bin in the database"
        );
        let ours = answer.values;
        assert!(!ours.is_empty());
        same(&ours, &aggregate::plot(&raw, &plot.intervals()));
    }

    // Processed: the functions the server computes, and the rest from raw, equal to the model's
    // over the same rows (uneven last interval, empty intervals before the data).
    let all = vec![
        Function::Min,
        Function::Max,
        Function::Count,
        Function::Range,
        Function::Delta,
        Function::PercentGood,
        Function::PercentBad,
        Function::Avg,
        Function::Interp,
    ];
    for (tag, from, to, step) in [
        (
            "tag0",
            START - 3_600 * SECOND,
            START + 100_000 * SECOND + 5,
            3_600,
        ),
        ("tag2", START + 1, START + 20_000 * SECOND, 137),
    ] {
        let request = ProcessedRequest {
            tag: tag.into(),
            range: TimeRange::new(from_micros(from), from_micros(to)).unwrap(),
            interval: Span::from_secs(step),
            functions: all.clone(),
        };
        let raw = read(&source, tag, from, to, Boundary::Outside).await;
        let answers = source.processed(&request).await.unwrap().values;
        assert_eq!(answers.len(), all.len());
        for (function, values) in answers {
            same(
                &values,
                &aggregate::processed(&raw, &request.intervals(), function),
            );
        }
    }

    // A wide table: a tag per numeric column; a NULL is no value, not a zero.
    let wide = PostgresSource::open(
        &server.config(json!({"layout": "wide", "table": "public.wide", "timeColumn": "ts"})),
    )
    .await
    .unwrap();
    let page = wide.search(&TagSearch::new("*")).await.unwrap();
    let names: Vec<&str> = page.tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["FI-200", "TI 100"]);
    let plot = PlotRequest {
        tag: "FI-200".into(),
        range: TimeRange::new(from_micros(START), from_micros(START + 999 * SECOND)).unwrap(),
        intervals: 9,
    };
    let raw = read(
        &wide,
        "FI-200",
        START,
        START + 999 * SECOND,
        Boundary::Inside,
    )
    .await;
    same(
        &wide.plot(&plot).await.unwrap().values,
        &aggregate::plot(&raw, &plot.intervals()),
    );
    let values = read(
        &wide,
        "FI-200",
        START,
        START + 10 * SECOND,
        Boundary::Inside,
    )
    .await;
    assert_eq!(
        values,
        (0..=10)
            .step_by(2)
            .map(|i| Sample::good(START + i * SECOND, i as f64))
            .collect::<Vec<_>>()
    );

    // Settings the catalog does not know are field errors, all at once.
    let err = PostgresSource::open(&server.config(json!({"table": "nope"})))
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "table", "{err}");
    let err = PostgresSource::open(&server.config(
        json!({"table": "vals", "valueColumn": "val\"; DROP TABLE vals; --",
        "qualityColumn": "tag"}),
    ))
    .await
    .unwrap_err();
    let fields: Vec<&str> = err
        .field_errors()
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(fields, ["valueColumn", "qualityColumn"], "{err}");
    assert!(err.field_errors()[1].message.contains("is text"), "{err}");

    // Wrong credentials: a database error that does not repeat the password.
    let mut wrong = server.config(long.clone());
    wrong
        .settings
        .insert("password".into(), json!("not-the-password"));
    let err = PostgresSource::open(&wrong).await.unwrap_err();
    assert_eq!(err.code(), "database");
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-password"));

    // The connection dropped mid-stream: the read ends with an error or carries on correctly on
    // a new connection; it never hangs or returns wrong values.
    let request = RawRequest {
        tag: "tag1".into(),
        range: TimeRange::new(from_micros(START), from_micros(START + PER_TAG * SECOND)).unwrap(),
        max_count: None,
        boundary: Boundary::Inside,
    };
    let mut stream = source.raw(&request).await.unwrap();
    let mut got = stream.next().await.unwrap().unwrap();
    let mut admin = server.admin().await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'uplink-connector'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!killed.is_empty());
    let mut failed = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => got.extend(chunk),
            Err(err) => {
                failed = Some(err);
                break;
            }
        }
    }
    match failed {
        Some(err) => assert_eq!(err.code(), "database", "{err}"),
        None => assert_eq!(got.len() as i64, PER_TAG),
    }
    same(
        &got,
        &(0..got.len() as i64)
            .map(|i| expected(1, i))
            .collect::<Vec<_>>(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verify_full_trusts_the_given_ca_and_refuses_an_unknown_one() {
    let ca = uplink_tls::LoopbackCa::generate(&["localhost", "127.0.0.1"]).unwrap();
    let server = Server::start_tls(&ca);
    let mut db = server.admin().await;
    sqlx::raw_sql(
        "CREATE TABLE vals (tag text, time timestamptz, value double precision);
         INSERT INTO vals VALUES ('a', now(), 1.5);",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();

    let trusted = server.config(json!({"table": "vals", "tls": "verify-full",
        "caFile": ca_file.display().to_string()}));
    let source = PostgresSource::open(&trusted).await.unwrap();
    let value = source.snapshot(&["a".into()]).await.unwrap();
    assert_eq!(value[0].value, Some(1.5));
    let mut admin = server.admin().await;
    let encrypted: Vec<bool> = sqlx::query_scalar(
        "SELECT ssl FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE application_name = 'uplink-connector'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        !encrypted.is_empty() && encrypted.iter().all(|e| *e),
        "{encrypted:?}"
    );

    // Without our CA, the server's certificate is not trusted.
    let other = uplink_tls::LoopbackCa::generate(&["localhost"]).unwrap();
    std::fs::write(&ca_file, other.ca_pem()).unwrap();
    let err = PostgresSource::open(&trusted).await.unwrap_err();
    assert_eq!(err.code(), "database", "{err}");
    assert!(!err.to_string().contains(server::PASSWORD), "{err}");
}

/// Calls of the stand-in `time_bucket` so far.
async fn time_bucket_calls(server: &Server) -> i64 {
    let mut db = server.admin().await;
    sqlx::query_scalar(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM time_bucket_calls",
    )
    .fetch_one(&mut db)
    .await
    .unwrap()
}

/// TimescaleDB is not packaged here, so the test stands in for the extension's function with a
/// SQL function of the same signature, `time_bucket(interval, timestamptz)`, aligned as the
/// extension's is (to Monday 2000-01-03) and counting its calls: that checks the source detects
/// the function and its queries call it, not TimescaleDB itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timescaledbs_time_bucket_is_used_when_present_and_answers_as_date_bin_does() {
    let server = Server::start();
    let mut db = server.admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE vals (tag text NOT NULL, time timestamptz NOT NULL, value double precision, quality integer);
         INSERT INTO vals SELECT 'a', to_timestamp({}) + i * interval '1 second',
                CASE WHEN i % 797 = 3 THEN NULL ELSE sin(i / 500.0) * 100 END,
                CASE WHEN i % 100 = 7 THEN 64 WHEN i % 500 = 11 THEN 0 ELSE 192 END
           FROM generate_series(0, 49999) i;
         CREATE INDEX ON vals (tag, time);
         ANALYZE;",
        START / SECOND
    )))
    .execute(&mut db)
    .await
    .unwrap();
    let settings = json!({"table": "vals", "timeColumn": "time", "tagColumn": "tag",
        "valueColumn": "value", "qualityColumn": "quality"});
    let plain = PostgresSource::open(&server.config(settings.clone()))
        .await
        .unwrap();
    assert_eq!(plain.bucketing(), Bucketing::DateBin);

    sqlx::raw_sql(
        "CREATE SEQUENCE time_bucket_calls;
         CREATE FUNCTION time_bucket(interval, timestamptz) RETURNS timestamptz
           LANGUAGE plpgsql AS $$
           BEGIN
             PERFORM nextval('time_bucket_calls');
             RETURN date_bin($1, $2, '2000-01-03T00:00:00Z'::timestamptz);
           END $$;",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let timescale = PostgresSource::open(&server.config(settings))
        .await
        .unwrap();
    assert_eq!(timescale.bucketing(), Bucketing::TimeBucket);

    // Intervals of one width, from a start that is no bucket boundary of either function's own.
    let from = START + 1_234_567;
    let plot = PlotRequest {
        tag: "a".into(),
        range: TimeRange::new(from_micros(from), from_micros(from + 40_000 * SECOND)).unwrap(),
        intervals: 160,
    };
    let before = time_bucket_calls(&server).await;
    let ours = timescale.plot(&plot).await.unwrap();
    let rows = 40_000;
    assert!(
        time_bucket_calls(&server).await - before >= rows,
        "the plot query called time_bucket for each row"
    );
    let by_date_bin = plain.plot(&plot).await.unwrap();
    assert_eq!(ours.by, uplink_model::ComputedBy::Source);
    let (ours, by_date_bin) = (ours.values, by_date_bin.values);
    assert!(!ours.is_empty());
    same(&ours, &by_date_bin);
    let raw = read(&plain, "a", from, from + 40_000 * SECOND, Boundary::Inside).await;
    same(&ours, &aggregate::plot(&raw, &plot.intervals()));

    let processed = ProcessedRequest {
        tag: "a".into(),
        range: TimeRange::new(from_micros(from), from_micros(from + 30_000 * SECOND + 17)).unwrap(),
        interval: Span::from_secs(600),
        functions: vec![
            Function::Min,
            Function::Max,
            Function::Count,
            Function::Range,
            Function::Delta,
            Function::PercentGood,
            Function::PercentBad,
        ],
    };
    let before = time_bucket_calls(&server).await;
    let ours = timescale.processed(&processed).await.unwrap();
    assert!(
        time_bucket_calls(&server).await - before >= 30_000,
        "the processed query called time_bucket for each row"
    );
    let by_date_bin = plain.processed(&processed).await.unwrap();
    assert_eq!(ours.by, uplink_model::ComputedBy::Source);
    let (ours, by_date_bin) = (ours.values, by_date_bin.values);
    assert_eq!(ours.len(), by_date_bin.len());
    for ((f, a), (g, b)) in ours.iter().zip(&by_date_bin) {
        assert_eq!(f, g);
        assert_eq!(a.len(), 51, "{f}: 50 whole intervals and the cut one");
        same(a, b);
    }

    // Uneven cuts (40 000 s in 7 intervals) are not one width: width_bucket, no time_bucket.
    let uneven = PlotRequest {
        intervals: 7,
        ..plot.clone()
    };
    let before = time_bucket_calls(&server).await;
    same(
        &timescale.plot(&uneven).await.unwrap().values,
        &plain.plot(&uneven).await.unwrap().values,
    );
    assert_eq!(time_bucket_calls(&server).await, before);
}
