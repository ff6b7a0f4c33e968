//! Live usage over Server-Sent Events and graphql-transport-ws, from requests made through the
//! edge: filtered, resumable with no gap and no record twice, isolated per tenant, and a
//! subscriber that does not read is told how many records it lost.

use eventsource_stream::Eventsource;
use futures::{SinkExt, Stream, StreamExt};
use keyledger_tests::{both, eventually, spawn_app, spawn_upstream, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::pin::Pin;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Events = Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, String>> + Send>>;

/// An open `GET /v1/usage/stream`, read with an SSE parser.
struct SseClient {
    events: Events,
}

impl SseClient {
    async fn open(app: &TestApp, token: &str, query: &str, last_event_id: Option<&str>) -> SseClient {
        let mut req = app
            .client
            .get(app.url(&format!("/v1/usage/stream{query}")))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let res = req.send().await.expect("stream opened");
        assert_eq!(res.status(), StatusCode::OK, "{query}");
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        let events = res.bytes_stream().eventsource().map(|e| e.map_err(|e| e.to_string()));
        SseClient {
            events: Box::pin(events),
        }
    }

    /// The next event (of any kind), within 10 s.
    async fn next(&mut self) -> eventsource_stream::Event {
        tokio::time::timeout(Duration::from_secs(10), self.events.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream is open")
            .expect("a well-formed event")
    }

    /// The next usage record: its SSE id and its data.
    async fn record(&mut self) -> (String, Value) {
        let event = self.next().await;
        assert_eq!(event.event, "usage", "{event:?}");
        let data: Value = serde_json::from_str(&event.data).expect("JSON data");
        assert_eq!(data["id"], event.id.as_str(), "the SSE id is the record's");
        (event.id, data)
    }

    /// Nothing arrives for a while (records are delivered within a second).
    async fn nothing_more(&mut self) {
        if let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(1_500), self.events.next()).await {
            panic!("nothing more was expected, got {event:?}");
        }
    }
}

/// An endpoint, a reader key with its scope and one without: (reader key, its id, other key).
async fn setting(app: &TestApp) -> (String, String, String) {
    let upstream = spawn_upstream().await;
    app.register_endpoint(json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "required_scopes": ["FILES_READ"], "upstream_url": format!("{upstream}/api") }))
        .await;
    let reader = app
        .create_key(json!({ "name": "reader", "scopes": ["FILES_READ"] }))
        .await;
    let other = app
        .create_key(json!({ "name": "other", "scopes": ["FILES_READ"] }))
        .await;
    (
        reader["key"].as_str().unwrap().to_owned(),
        reader["id"].as_str().unwrap().to_owned(),
        other["key"].as_str().unwrap().to_owned(),
    )
}

both!(
    server_sent_events_deliver_filtered_records_and_resume_after_the_last_event_id,
    sse
);
async fn sse(app: TestApp) -> TestApp {
    let (key, key_id, other) = setting(&app).await;
    let mut mine = SseClient::open(&app, &app.token, &format!("?key={key_id}"), None).await;
    let mut errors = SseClient::open(&app, &app.token, "?status_class=4xx", None).await;

    for (path, with) in [
        ("/files/1", &key),
        ("/files/2", &key),
        ("/files/3", &other),
        ("/files/4", &key),
    ] {
        assert_eq!(app.edge_get(path, with).await.status, StatusCode::OK);
    }
    assert_eq!(
        app.edge_get("/files/5", "not a key").await.status,
        StatusCode::UNAUTHORIZED
    );
    let (first, one) = mine.record().await;
    assert_eq!(
        (
            &one["path"],
            &one["key_id"],
            &one["outcome"],
            &one["status"],
            &one["method"]
        ),
        (
            &json!("/files/1"),
            &json!(key_id),
            &json!("VALID"),
            &json!(200),
            &json!("GET")
        ),
        "{one}"
    );
    assert_eq!(one["tenant"], "default");
    assert!(one["latency_ms"].as_f64().unwrap() > 0.0, "{one}");
    let (second, two) = mine.record().await;
    assert_eq!(two["path"], "/files/2");
    assert!(
        second.parse::<u64>().unwrap() > first.parse::<u64>().unwrap(),
        "ids follow the log"
    );
    let (_, four) = mine.record().await;
    assert_eq!(four["path"], "/files/4", "the other key's request is filtered out");
    let (_, refused) = errors.record().await;
    assert_eq!(
        (&refused["path"], &refused["outcome"], &refused["status"]),
        (&json!("/files/5"), &json!("INVALID_KEY"), &json!(401))
    );
    errors.nothing_more().await;

    // A client that went away after the second record resumes with its id: it gets the
    // fourth, then what was made while it was away, then live ones, each once.
    drop(mine);
    assert_eq!(app.edge_get("/files/6", &key).await.status, StatusCode::OK);
    let mut resumed = SseClient::open(&app, &app.token, &format!("?key={key_id}"), Some(&second)).await;
    assert_eq!(resumed.record().await.1["path"], "/files/4");
    assert_eq!(resumed.record().await.1["path"], "/files/6");
    assert_eq!(app.edge_get("/files/7", &key).await.status, StatusCode::OK);
    assert_eq!(resumed.record().await.1["path"], "/files/7");
    resumed.nothing_more().await;
    // `after` does the same where a header cannot be set.
    let mut after = SseClient::open(&app, &app.token, &format!("?key={key_id}&after={first}"), None).await;
    let paths: Vec<Value> = [
        after.record().await,
        after.record().await,
        after.record().await,
        after.record().await,
    ]
    .into_iter()
    .map(|(_, r)| r["path"].clone())
    .collect();
    assert_eq!(
        paths,
        [
            json!("/files/2"),
            json!("/files/4"),
            json!("/files/6"),
            json!("/files/7")
        ]
    );

    // Bad input is refused before the stream opens.
    let bad = app.get("/v1/usage/stream?outcome=MAYBE").await;
    assert_eq!(
        (bad.status, bad.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    let bad = app
        .client
        .get(app.url("/v1/usage/stream"))
        .bearer_auth(&app.token)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(keyledger_tests::Answer::read(bad).await.error_code(), "invalid_query");
    assert_eq!(
        app.client
            .get(app.url("/v1/usage/stream"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    app
}

both!(a_tenant_streams_its_own_usage_only, tenants);
async fn tenants(app: TestApp) -> TestApp {
    let (key, ..) = setting(&app).await;
    let writer = app.token_for("acme", "acme writer", &["API_MANAGEMENT_WRITE"]).await;
    let theirs = app
        .post_as(
            &writer,
            "/v1/keys",
            json!({ "name": "acme reader", "scopes": ["FILES_READ"] }),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{:?}", theirs.body);
    let their_key = theirs.body["key"].as_str().unwrap().to_owned();
    let acme = app.token_for("acme", "acme analyst", &["API_MANAGEMENT_READ"]).await;

    let mut stream = SseClient::open(&app, &acme, "", None).await;
    assert_eq!(app.edge_get("/files/1", &key).await.status, StatusCode::OK);
    app.edge_get("/files/2", &their_key).await;
    let (_, record) = stream.record().await;
    assert_eq!(
        (&record["tenant"], &record["path"]),
        (&json!("acme"), &json!("/files/2")),
        "{record}"
    );
    stream.nothing_more().await;
    let forbidden = app.get_as(&acme, "/v1/usage/stream?tenant=default").await;
    assert_eq!(
        (forbidden.status, forbidden.error_code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    // Resuming from the start of the log replays the tenant's records only.
    let mut replay = SseClient::open(&app, &acme, "?after=0", None).await;
    assert_eq!(replay.record().await.1["path"], "/files/2");
    replay.nothing_more().await;
    app
}

/// A graphql-transport-ws client over a real WebSocket.
struct WsClient {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl WsClient {
    async fn connect(app: &TestApp, token: Option<&str>) -> WsClient {
        let mut request = format!("ws://{}/graphql/ws", app.addr).into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket opened");
        assert_eq!(response.headers()["sec-websocket-protocol"], "graphql-transport-ws");
        let mut client = WsClient { socket };
        let payload = token.map_or(json!({}), |t| json!({ "authorization": format!("Bearer {t}") }));
        client
            .send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        assert_eq!(client.receive().await["type"], "connection_ack");
        client
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("sent");
    }

    /// The next protocol message (pings answered), within 10 s.
    async fn receive(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("a message within 10 s")
                .expect("the socket is open")
                .expect("a message");
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ping" {
                    self.send(json!({ "type": "pong" })).await;
                    continue;
                }
                return value;
            }
        }
    }

    async fn subscribe(&mut self, id: &str, key_id: &str, after: Option<&str>) {
        self.send(json!({
            "id": id,
            "type": "subscribe",
            "payload": {
                "query": "subscription($key: String, $after: String) { usage(filter: { key: $key }, after: $after) { __typename ... on UsageRecord { id path outcome status keyId } ... on UsageLag { skipped } } }",
                "variables": { "key": key_id, "after": after },
            }
        }))
        .await;
    }

    /// The next usage record of subscription `id` (a `complete` of an earlier one, which
    /// async-graphql echoes, passed over).
    async fn record(&mut self, id: &str) -> Value {
        let mut message = self.receive().await;
        while message["type"] == "complete" && message["id"] != id {
            message = self.receive().await;
        }
        assert_eq!(
            (&message["type"], &message["id"]),
            (&json!("next"), &json!(id)),
            "{message}"
        );
        let usage = message["payload"]["data"]["usage"].clone();
        assert_eq!(usage["__typename"], "UsageRecord", "{message}");
        usage
    }
}

both!(
    a_graphql_subscription_delivers_records_over_graphql_transport_ws_and_resumes_after,
    subscription
);
async fn subscription(app: TestApp) -> TestApp {
    let (key, key_id, other) = setting(&app).await;
    let mut ws = WsClient::connect(&app, Some(&app.token)).await;
    ws.subscribe("1", &key_id, None).await;
    // The subscription starts when the server has read the message: a request made now is
    // either live or, if it came first, not wanted; so wait until one is seen.
    let mut n = 0;
    let first = loop {
        n += 1;
        assert_eq!(app.edge_get(&format!("/files/{n}"), &key).await.status, StatusCode::OK);
        let message = tokio::time::timeout(Duration::from_millis(1_500), ws.record("1")).await;
        if let Ok(record) = message {
            break record;
        }
        assert!(n < 5, "no record reached the subscription");
    };
    assert_eq!(
        (&first["outcome"], &first["status"], &first["keyId"]),
        (&json!("VALID"), &json!(200), &json!(key_id))
    );
    app.edge_get("/files/100", &other).await;
    assert_eq!(app.edge_get("/files/101", &key).await.status, StatusCode::OK);
    let next = ws.record("1").await;
    assert_eq!(next["path"], "/files/101", "the other key's request is filtered out");

    // `after` replays from the log: a new subscription after the first record gets the second.
    ws.send(json!({ "id": "1", "type": "complete" })).await;
    ws.subscribe("2", &key_id, first["id"].as_str()).await;
    assert_eq!(ws.record("2").await["path"], "/files/101");
    assert_eq!(app.edge_get("/files/102", &key).await.status, StatusCode::OK);
    assert_eq!(ws.record("2").await["path"], "/files/102");

    // Without a token, the subscription answers `unauthorized`.
    let mut anonymous = WsClient::connect(&app, None).await;
    anonymous.subscribe("3", &key_id, None).await;
    let refused = anonymous.receive().await;
    assert_eq!(refused["type"], "next", "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "unauthorized",
        "{refused}"
    );
    assert_eq!(anonymous.receive().await["type"], "complete");
    app
}

/// A subscriber that reads nothing while 20 000 records are stored loses some, never slows
/// the others, and is told exactly how many it lost: what it then receives and what it was told
/// it skipped add up to every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_keep_up_is_told_how_many_records_it_skipped() {
    use http_body_util::BodyExt;
    const RECORDS: usize = 20_000;
    let app = spawn_app(Backend::Sqlite).await.expect("app");
    // A client with a small receive window, so that the server cannot park thousands of events in
    // socket buffers.
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_recv_buffer_size(Some(4_096));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Empty<hyper::body::Bytes>>(connector);
    let request = hyper::Request::get(app.url("/v1/usage/stream"))
        .header("authorization", format!("Bearer {}", app.token))
        .body(http_body_util::Empty::new())
        .unwrap();
    let slow = client.request(request).await.expect("stream opened");
    assert_eq!(slow.status(), StatusCode::OK);
    let mut keeping_up = SseClient::open(&app, &app.token, "?outcome=VALID", None).await;

    let recorder = app.state.edge.usage.clone();
    for i in 0..RECORDS {
        let record = keyledger_projections::usage::UsageRecord {
            at: app.clock_now(),
            key: None,
            endpoint: None,
            method: "GET".into(),
            path: format!("/flood/{i}"),
            status: 401,
            code: "invalid_key",
            latency_us: 50,
            client_ip: None,
        };
        while !recorder.try_record(&record) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let upstream = spawn_upstream().await;
    app.register_endpoint(json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "upstream_url": format!("{upstream}/api") }))
        .await;
    let key = app.create_key(json!({ "name": "meanwhile" })).await;
    assert_eq!(
        app.edge_get("/files/1", key["key"].as_str().unwrap()).await.status,
        StatusCode::OK
    );
    // The other subscriber is served while this one is stuck.
    assert_eq!(keeping_up.record().await.1["path"], "/files/1");
    eventually("the flood is stored", || async {
        let stored: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(records), 0) AS BIGINT) FROM usage_batches")
            .fetch_one(app.state.db.pool())
            .await
            .unwrap();
        stored as usize == RECORDS + 1
    })
    .await;

    let mut events = slow
        .into_body()
        .into_data_stream()
        .map(|chunk| chunk.map_err(|e| e.to_string()))
        .eventsource();
    let (mut received, mut skipped, mut notices) = (0usize, 0usize, 0);
    while received + skipped < RECORDS + 1 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap_or_else(|_| panic!("more events: {received} received, {skipped} skipped"))
            .expect("open")
            .expect("well-formed");
        match event.event.as_str() {
            "usage" => received += 1,
            "lag" => {
                let lag: Value = serde_json::from_str(&event.data).unwrap();
                skipped += lag["skipped"].as_u64().unwrap() as usize;
                notices += 1;
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert!(notices > 0 && skipped > 0, "it lagged: {received} received");
    assert_eq!(received + skipped, RECORDS + 1, "every record is received or counted");
    app.finish().await;
}
