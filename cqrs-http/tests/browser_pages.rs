//! The browser's pages as HTML (the click-through in a real browser is the examples'
//! `browser` test): paging a stream both ways, escaping, a trace as a tree, the
//! subscriptions' lag, and errors as pages.

mod common;

use common::*;
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{CheckpointStore, Metadata, NewEvent};
use cqrs_http::HttpFeed;
use cqrs_memory::MemoryStore;
use uuid::Uuid;

#[tokio::test]
async fn a_stream_pages_both_ways_from_its_newest_events() {
    let store = MemoryStore::new();
    let tags: Vec<String> = (1..=45).map(|n| format!("t{n}")).collect();
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    append(&store, "Cart-1", &tags).await;
    let base = serve(HttpFeed::new(store).router()).await;
    let (status, headers, newest) = get(&format!("{base}/browse/streams/Cart-1")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    assert!(newest.contains("Versions 26 to 45 of 45"), "{newest}");
    assert!(newest.contains("id=\"older\" href=\"/browse/streams/Cart-1?from=6\""));
    assert!(!newest.contains("id=\"newer\""));
    let (_, _, oldest) = get(&format!("{base}/browse/streams/Cart-1?from=1")).await;
    assert!(oldest.contains("Versions 1 to 20 of 45"));
    assert!(oldest.contains("id=\"newer\" href=\"/browse/streams/Cart-1?from=21\""));
    let (status, _, missing) = get(&format!("{base}/browse/streams/Nope-1")).await;
    assert_eq!(status, 404);
    assert!(missing.contains("no stream `Nope-1`"), "{missing}");
}

#[tokio::test]
async fn stored_text_is_escaped() {
    let store = MemoryStore::new();
    let event = NewEvent {
        event_type: "<script>alert(1)</script>".into(),
        payload: r#"{"note":"<b>bold</b> & more"}"#.into(),
        ..tagged_event("x")
    };
    append_one(&store, "Cart-<i>1</i>", event).await;
    let base = serve(HttpFeed::new(store).router()).await;
    let (_, _, page) = get(&format!("{base}/browse/events/1")).await;
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;b&gt;bold&lt;/b&gt; &amp; more"));
    assert!(page.contains("Cart-&lt;i&gt;1&lt;/i&gt;"));
    let (_, _, home) = get(&format!("{base}/browse")).await;
    assert!(
        home.contains("/browse/streams/Cart-%3Ci%3E1%3C%2Fi%3E"),
        "{home}"
    );
}

#[tokio::test]
async fn a_trace_nests_each_effect_under_its_cause() {
    let store = MemoryStore::new();
    let correlation = Uuid::new_v4();
    let metadata = Metadata::new().with_correlation_id(correlation);
    let with = |tag: &str, event_type: &str, metadata: Metadata| NewEvent {
        event_type: event_type.into(),
        metadata,
        ..tagged_event(tag)
    };
    let root = append_one(&store, "User-1", with("r", "UserCreated", metadata.clone())).await;
    let task = append_one(
        &store,
        "Task-1",
        with(
            "t",
            "TaskCreated",
            metadata.clone().with_causation_id(root.event_id),
        ),
    )
    .await;
    append_one(
        &store,
        "Mail-1",
        with(
            "m",
            "MailSent",
            metadata.clone().with_causation_id(task.event_id),
        ),
    )
    .await;
    let base = serve(HttpFeed::new(store).router()).await;
    let (_, _, page) = get(&format!("{base}/browse/correlations/{correlation}")).await;
    let user = page.find("UserCreated").unwrap();
    let task = page.find("TaskCreated").unwrap();
    let mail = page.find("MailSent").unwrap();
    assert!(user < task && task < mail, "{page}");
    assert_eq!(
        page[user..mail].matches("<ul>").count(),
        2,
        "two levels deep: {page}"
    );
}

#[tokio::test]
async fn the_home_page_shows_each_named_subscription_with_its_lag() {
    let store = MemoryStore::new();
    append(&store, "Cart-1", &["a", "b", "c", "d"]).await;
    store.save_checkpoint("mailer", 1).await.unwrap();
    let base = serve(
        HttpFeed::new(store.clone())
            .with_subscriptions(store, ["mailer", "never-ran"])
            .router(),
    )
    .await;
    let (_, _, home) = get(&format!("{base}/browse")).await;
    assert!(
        home.contains("<td>mailer</td><td class=\"num\">1</td><td class=\"num\">3</td>"),
        "{home}"
    );
    assert!(home.contains("<td>never-ran</td><td class=\"num\">0</td><td class=\"num\">4</td>"));
}
