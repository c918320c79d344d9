//! Reads other than the feed: streams both ways, events by position and id, causation and
//! correlation, and the security hooks (bearer authentication, per-event visibility).

mod common;

use common::*;
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{Metadata, NewEvent};
use cqrs_http::{bearer_auth, Caller, HttpFeed, Shown};
use cqrs_memory::MemoryStore;
use uuid::Uuid;

#[tokio::test]
async fn a_stream_reads_by_version_both_ways_with_a_link_to_the_next_page() {
    let store = MemoryStore::new();
    append(&store, "Cart-1", &["a", "b", "c", "d", "e"]).await;
    append(&store, "Cart-2", &["x"]).await;
    let base = serve(HttpFeed::new(store).router()).await;
    let forward = json(&format!("{base}/streams/Cart-1?from=2&limit=2")).await;
    let versions = |body: &serde_json::Value| -> Vec<u64> {
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["version"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(versions(&forward), [2, 3]);
    assert_eq!(
        forward["next"],
        "/streams/Cart-1?from=4&limit=2&direction=forward"
    );
    let backward = json(&format!("{base}/streams/Cart-1?direction=backward&limit=3")).await;
    assert_eq!(versions(&backward), [5, 4, 3]);
    assert_eq!(
        backward["next"],
        "/streams/Cart-1?from=2&limit=3&direction=backward"
    );
    let unknown = json(&format!("{base}/streams/Nope-1")).await;
    assert_eq!(versions(&unknown), Vec::<u64>::new());
    let (status, _, body) = get(&format!("{base}/streams/Cart-1?direction=up")).await;
    assert_eq!(status, 400);
    assert!(body.contains("\"parameter\":\"direction\""), "{body}");
}

#[tokio::test]
async fn events_by_position_and_id_are_immutable_and_unknown_ones_are_not_found() {
    let store = MemoryStore::new();
    let stored = append(&store, "Cart-1", &["a", "b"]).await;
    let base = serve(HttpFeed::new(store).router()).await;
    let (status, headers, body) = get(&format!("{base}/events/2")).await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["event_id"], stored[1].event_id.to_string());
    let by_id = json(&format!("{base}/events/by-id/{}", stored[0].event_id)).await;
    assert_eq!(by_id["position"], 1);
    for (url, status) in [
        ("/events/3".to_owned(), 404),
        (format!("/events/by-id/{}", Uuid::new_v4()), 404),
        ("/events/first".to_owned(), 400),
        ("/events/by-id/123".to_owned(), 400),
    ] {
        let (got, headers, body) = get(&format!("{base}{url}")).await;
        assert_eq!(got, status, "{url}: {body}");
        assert_eq!(header(&headers, "cache-control"), "no-store");
    }
}

#[tokio::test]
async fn caused_events_and_a_correlation_are_found_by_scanning_the_log() {
    let store = MemoryStore::new();
    let correlation = Uuid::new_v4();
    let metadata = Metadata::new().with_correlation_id(correlation);
    let root = NewEvent {
        metadata: metadata.clone(),
        ..tagged_event("root")
    };
    let root = append_one(&store, "User-1", root).await;
    append(&store, "Other-1", &["noise"]).await;
    let caused = |tag| NewEvent {
        metadata: metadata.clone().with_causation_id(root.event_id),
        ..tagged_event(tag)
    };
    append_one(&store, "Task-1", caused("t1")).await;
    append_one(&store, "Task-2", caused("t2")).await;
    let base = serve(HttpFeed::new(store).router()).await;
    let found = json(&format!("{base}/events/by-id/{}/caused", root.event_id)).await;
    assert_eq!(positions(&found["events"]), [3, 4]);
    assert_eq!(found["complete"], true);
    let trace = json(&format!("{base}/correlations/{correlation}")).await;
    assert_eq!(positions(&trace["events"]), [1, 3, 4]);
    let first = json(&format!("{base}/correlations/{correlation}?limit=2")).await;
    assert_eq!(positions(&first["events"]), [1, 3]);
    assert_eq!(first["complete"], false);
    let next = first["next"].as_str().unwrap();
    assert_eq!(
        positions(&json(&format!("{base}{next}")).await["events"]),
        [4]
    );
    let (status, _, body) = get(&format!("{base}/correlations/nope")).await;
    assert_eq!(status, 400);
    assert!(body.contains("\"parameter\":\"correlation_id\""), "{body}");
}

#[tokio::test]
async fn bearer_auth_lets_in_known_tokens_and_visibility_hides_and_redacts_per_caller() {
    let store = MemoryStore::new();
    append(&store, "Order-1", &["published"]).await; // 1
    let internal = NewEvent {
        event_type: "InternalNote".into(),
        ..tagged_event("secret")
    };
    append_one(&store, "Order-1", internal).await; // 2
    let personal = NewEvent {
        event_type: "AddressChanged".into(),
        metadata: Metadata::new().with("user", "ada"),
        ..tagged_event("10 Downing St")
    };
    append_one(&store, "Order-1", personal).await; // 3
    let visibility = |caller: Option<&Caller>, event: &cqrs_core::RecordedEvent| {
        let auditor = caller.is_some_and(|caller| caller.name == "auditor");
        match event.event_type.as_str() {
            _ if auditor => Shown::Show,
            "InternalNote" => Shown::Hide,
            "AddressChanged" => Shown::Redact,
            _ => Shown::Show,
        }
    };
    let router = HttpFeed::new(store)
        .with_visibility(visibility)
        .router()
        .layer(bearer_auth([
            ("t-partner", "partner"),
            ("t-audit", "auditor"),
        ]));
    let base = serve(router).await;

    let (status, headers, _) = get(&format!("{base}/feed")).await;
    assert_eq!(status, 401);
    assert_eq!(header(&headers, "www-authenticate"), "Bearer");
    let client = reqwest::Client::new();
    let wrong = [("authorization", "Bearer nope")];
    assert_eq!(
        get_with(&client, &format!("{base}/feed"), &wrong).await.0,
        401
    );

    let partner = [("authorization", "Bearer t-partner")];
    let (status, headers, body) = get_with(&client, &format!("{base}/feed"), &partner).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "cache-control"), "private, no-cache");
    assert_eq!(header(&headers, "vary"), "authorization");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        positions(&page["events"]),
        [1, 3],
        "the internal note is hidden"
    );
    assert_eq!(page["events"][1]["redacted"], true);
    assert_eq!(page["events"][1]["payload"], serde_json::Value::Null);
    assert!(!body.contains("Downing"), "{body}");
    assert_eq!(
        get_with(&client, &format!("{base}/events/2"), &partner)
            .await
            .0,
        404
    );

    let auditor = [("authorization", "Bearer t-audit")];
    let (_, _, body) = get_with(&client, &format!("{base}/feed"), &auditor).await;
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(positions(&page["events"]), [1, 2, 3]);
    assert!(body.contains("Downing"));
}
