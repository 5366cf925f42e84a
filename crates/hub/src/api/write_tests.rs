//! `PUT …/values` inside the hub: the scope and the per-source grant checked on the request,
//! the body checked field by field, idempotency keys, and the audit trail. The connector side
//! is the stand-in of the data API's tests, which applies every value.

use super::*;

const WRITE: &[&str] = &[scopes::DATA_READ, scopes::DATA_WRITE];

impl Fixture {
    /// A token whose grant on `line-1` holds `grant` and which carries `token`.
    async fn writer(&self, grant: &[&str], token: &[&str]) -> String {
        self.hub
            .store
            .grant(
                &self.user.id,
                APP,
                std::slice::from_ref(&self.granted.id),
                &grant.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
                crate::clock::now(),
            )
            .await
            .unwrap();
        Self::token_for(&self.hub, &self.user, token).await
    }

    async fn put(
        &self,
        token: &str,
        body: &str,
        key: Option<&str>,
    ) -> (StatusCode, Value, Option<String>) {
        let mut request = Request::put(self.path("values"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = self
            .send(request.body(Body::from(body.to_owned())).unwrap())
            .await;
        let replayed = response
            .headers()
            .get(write::REPLAYED)
            .map(|v| v.to_str().unwrap().to_owned());
        let (status, body) = json_of(response).await;
        (status, body, replayed)
    }

    fn writes(&self) -> usize {
        self.relay.writes.lock().unwrap().len()
    }

    async fn audited(&self, event: &str) -> Vec<crate::store::AuditEvent> {
        self.hub
            .store
            .audit_events(100)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event == event)
            .collect()
    }
}

const ONE: &str = r#"{"values":[{"tag":"SP1","value":42.5}]}"#;

#[tokio::test]
async fn a_write_needs_the_scope_on_the_token_and_in_that_sources_grant() {
    let f = Fixture::new().await;
    // The fixture's token reads but does not write.
    let (status, body, _) = f.put(&f.token, ONE, None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
    // The scope on the token, not ticked for this source.
    let unticked = f.writer(&[scopes::DATA_READ], WRITE).await;
    let (status, body, _) = f.put(&unticked, ONE, None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
    assert!(body["message"].as_str().unwrap().contains("data.write"));
    // Another source, never granted.
    let writer = f.writer(WRITE, WRITE).await;
    let request = Request::put(format!("/api/v1/sources/{}/values", f.other.id))
        .header(header::AUTHORIZATION, format!("Bearer {writer}"))
        .body(Body::from(ONE))
        .unwrap();
    let (status, body) = json_of(f.send(request).await).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("no_grant")));
    assert_eq!(f.writes(), 0, "nothing refused reached the connector");
    // Ticked: relayed, answered per value.
    let (status, body, replayed) = f.put(&writer, ONE, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"results": [{"tag": "SP1", "result": "ok"}]}));
    assert_eq!(replayed, None);
    let relayed = f.relay.writes.lock().unwrap()[0].clone();
    assert_eq!(relayed.source, "line-1");
    assert_eq!(relayed.app_id, APP);
    assert_eq!(relayed.user_id, f.user.id);
    assert_eq!(relayed.values[0].value, uplink_link::WriteValue::Number(42.5));
}

#[tokio::test]
async fn every_write_is_in_the_audit_trail_with_old_and_new_value() {
    let f = Fixture::new().await;
    let writer = f.writer(WRITE, WRITE).await;
    let (status, ..) = f
        .put(
            &writer,
            r#"{"values":[{"tag":"SP1","value":42.5},{"tag":"Mode","value":"auto"},{"tag":"Run","value":true}]}"#,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let audited = f.audited("write").await;
    assert_eq!(audited.len(), 3);
    let details: Vec<&str> = audited.iter().map(|e| e.detail.as_str()).collect();
    assert!(details.contains(&"tag=\"SP1\" old=1 new=42.5 result=ok"), "{details:?}");
    assert!(details.contains(&"tag=\"Mode\" old=1 new=\"auto\" result=ok"), "{details:?}");
    assert!(details.contains(&"tag=\"Run\" old=1 new=true result=ok"), "{details:?}");
    for event in &audited {
        assert_eq!(event.app_id.as_deref(), Some(APP));
        assert_eq!(event.user_id.as_deref(), Some(f.user.id.as_str()));
        assert_eq!(event.source_id.as_deref(), Some(f.granted.id.as_str()));
    }
}

#[tokio::test]
async fn an_idempotency_key_applies_once_and_refuses_other_values() {
    let f = Fixture::new().await;
    let writer = f.writer(WRITE, WRITE).await;
    let first = f.put(&writer, ONE, Some("order-7")).await;
    assert_eq!(first.0, StatusCode::OK);
    let retry = f.put(&writer, ONE, Some("order-7")).await;
    assert_eq!((retry.0, &retry.1), (first.0, &first.1), "the same answer");
    assert_eq!(retry.2.as_deref(), Some("true"));
    assert_eq!(f.writes(), 1, "applied once");
    assert_eq!(f.audited("write").await.len(), 1);
    let (status, body, _) = f
        .put(&writer, r#"{"values":[{"tag":"SP1","value":43}]}"#, Some("order-7"))
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("idempotency_key_reused")));
    assert_eq!(f.writes(), 1);
    // Keys are per app and user, and a new key is a new write.
    let (status, _, replayed) = f.put(&writer, ONE, Some("order-8")).await;
    assert_eq!((status, replayed), (StatusCode::OK, None));
    assert_eq!(f.writes(), 2);
    let (status, body, _) = f.put(&writer, ONE, Some("")).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
}

#[tokio::test]
async fn a_bad_write_is_400_naming_the_field_before_anything_is_relayed() {
    let f = Fixture::new().await;
    let writer = f.writer(WRITE, WRITE).await;
    let many = format!(
        r#"{{"values":[{}]}}"#,
        vec![r#"{"tag":"T","value":1}"#; 101].join(",")
    );
    for (body, field) in [
        ("not json", "body"),
        (r#"{"values":[]}"#, "values"),
        (many.as_str(), "values"),
        (r#"{"values":[{"tag":"","value":1}]}"#, "values[0].tag"),
        (r#"{"values":[{"tag":"T"}]}"#, "values[0].value"),
        (r#"{"values":[{"tag":"T","value":[1]}]}"#, "values[0].value"),
        (r#"{"values":[{"tag":"T","value":1,"time":"yesterday"}]}"#, "values[0].time"),
        (r#"{"values":[{"tag":"T","value":1,"unit":"bar"}]}"#, "values[0].unit"),
        (r#"{"values":[],"dryRun":true}"#, "dryRun"),
    ] {
        let (status, answer, _) = f.put(&writer, body, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["code"], "invalid_query");
        assert!(
            answer["message"].as_str().unwrap().starts_with(&format!("{field}: ")),
            "{body}: {answer}"
        );
    }
    assert_eq!(f.writes(), 0);
}
