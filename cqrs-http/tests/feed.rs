//! The feed's pages: archived pages immutable with a strong ETag, the head page revalidated
//! by the head position, links that walk the whole log, payloads byte for byte, filters,
//! compression and the error answers.

mod common;

use common::*;
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::NewEvent;
use cqrs_http::{FeedConfig, HttpFeed};
use cqrs_memory::MemoryStore;
use std::sync::atomic::Ordering;

async fn served(store: impl cqrs_core::EventStore, page_size: u64) -> String {
    let config = FeedConfig::default().with_page_size(page_size);
    serve(HttpFeed::new(store).with_config(config).router()).await
}

#[tokio::test]
async fn archived_pages_are_immutable_and_the_head_page_revalidates_by_the_head() {
    let store = MemoryStore::new();
    append(&store, "Cart-1", &["a", "b", "c", "d", "e", "f", "g"]).await;
    let base = served(store.clone(), 3).await;

    let (status, headers, body) = get(&format!("{base}/feed")).await;
    assert_eq!(status, 200, "{body}");
    let head: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(head["page"], 3);
    assert_eq!(head["archived"], false);
    assert_eq!(head["head_position"], 7);
    assert_eq!(positions(&head["events"]), [7]);
    assert_eq!(head["links"]["first"], "/feed/pages/1");
    assert_eq!(head["links"]["previous"], "/feed/pages/2");
    assert!(head["links"].get("next").is_none(), "{head}");
    assert_eq!(header(&headers, "cache-control"), "public, no-cache");
    assert_eq!(header(&headers, "etag"), "\"head-7\"");

    let client = reqwest::Client::new();
    let conditional = [("if-none-match", "\"head-7\"")];
    let (status, _, _) = get_with(&client, &format!("{base}/feed"), &conditional).await;
    assert_eq!(status, 304);
    append(&store, "Cart-1", &["h"]).await;
    let (status, headers, _) = get_with(&client, &format!("{base}/feed"), &conditional).await;
    assert_eq!(status, 200, "a new event changes the head page");
    assert_eq!(header(&headers, "etag"), "\"head-8\"");

    let (status, headers, body) = get(&format!("{base}/feed/pages/1")).await;
    assert_eq!(status, 200);
    let first: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first["archived"], true);
    assert!(
        first.get("head_position").is_none(),
        "an archived page never changes"
    );
    assert_eq!(positions(&first["events"]), [1, 2, 3]);
    assert_eq!(first["links"]["next"], "/feed/pages/2");
    assert!(first["links"].get("previous").is_none());
    assert_eq!(first["links"]["current"], "/feed");
    assert_eq!(
        header(&headers, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    let etag = header(&headers, "etag").to_owned();
    assert_eq!(etag, "\"page-3-1\"");
    assert!(header(&headers, "link").contains("</feed/pages/2>; rel=\"next-archive\""));
    let (status, _, body) = get_with(
        &client,
        &format!("{base}/feed/pages/1"),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!((status, body.as_str()), (304, ""));
    // Served again (from memory now), the same bytes.
    let (_, _, again) = get(&format!("{base}/feed/pages/1")).await;
    assert_eq!(again, body_of(&base, 1).await);
}

async fn body_of(base: &str, page: u64) -> String {
    get(&format!("{base}/feed/pages/{page}")).await.2
}

#[tokio::test]
async fn following_next_links_from_the_first_page_reads_the_whole_log_once() {
    let store = MemoryStore::new();
    for n in 0..10 {
        append(&store, &format!("Cart-{n}"), &["x", "y"]).await;
    }
    let base = served(store, 6).await;
    let mut url = json(&format!("{base}/feed")).await["links"]["first"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut seen = Vec::new();
    loop {
        let page = json(&format!("{base}{url}")).await;
        seen.extend(positions(&page["events"]));
        match page["links"]["next"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    // A page size that divides the head: the head page is the empty one after it.
    let head = json(&format!("{base}/feed/pages/4")).await;
    assert_eq!(
        (head["archived"].as_bool(), head["first_position"].as_u64()),
        (Some(false), Some(19))
    );
}

#[tokio::test]
async fn the_page_at_a_position_is_a_redirect_and_pages_past_the_head_are_not_found() {
    let store = MemoryStore::new();
    append(&store, "Cart-1", &["a", "b", "c", "d", "e"]).await;
    let base = served(store, 2).await;
    let page = json(&format!("{base}/feed/at/4")).await;
    assert_eq!(positions(&page["events"]), [3, 4]);
    let (status, _, body) = get(&format!("{base}/feed/pages/4")).await;
    assert_eq!(status, 404, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"], "not_found");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("head is at position 5"));
    for (url, parameter) in [
        ("/feed/pages/0", "page"),
        ("/feed/pages/two", "page"),
        ("/feed/at/0", "position"),
        ("/feed?typ=X", "typ"),
        ("/feed?type=", "type"),
    ] {
        let (status, headers, body) = get(&format!("{base}{url}")).await;
        assert_eq!(status, 400, "{url}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["parameter"], parameter, "{url}: {body}");
        assert_eq!(header(&headers, "content-type"), "application/json");
    }
}

#[tokio::test]
async fn payloads_are_served_byte_for_byte() {
    let store = MemoryStore::new();
    let stored = r#"{ "tag" :  "x",  "price": 1.50, "zeta":[ ] , "alpha": "\u00e9" }"#;
    let event = NewEvent {
        payload: stored.to_owned(),
        ..tagged_event("x")
    };
    append_one(&store, "Cart-1", event).await;
    let base = served(store, 10).await;
    for url in [
        "/feed",
        "/feed/pages/1",
        "/events/1",
        "/feed/events?after=0",
        "/streams/Cart-1",
    ] {
        let (_, _, body) = get(&format!("{base}{url}")).await;
        assert!(body.contains(stored), "{url}: {body}");
    }
}

#[tokio::test]
async fn pages_filter_by_event_type_and_category_and_keep_the_filter_in_links() {
    let store = MemoryStore::new();
    append(&store, "Cart-1", &["a"]).await; // 1
    let other = NewEvent {
        event_type: "Removed".into(),
        ..tagged_event("b")
    };
    append_one(&store, "Cart-1", other).await; // 2
    append(&store, "Order-1", &["c", "d"]).await; // 3, 4
    append(&store, "Cart-2", &["e"]).await; // 5
    let base = served(store, 2).await;
    let carts = json(&format!("{base}/feed/pages/1?category=Cart")).await;
    assert_eq!(positions(&carts["events"]), [1, 2]);
    assert_eq!(carts["links"]["next"], "/feed/pages/2?category=Cart");
    let orders = json(&format!("{base}/feed/pages/2?category=Order")).await;
    assert_eq!(positions(&orders["events"]), [3, 4]);
    let tagged_carts = json(&format!("{base}/feed?category=Cart&type=Tagged")).await;
    assert_eq!(positions(&tagged_carts["events"]), [5]);
    let removed = json(&format!("{base}/feed/events?type=Removed,Nothing")).await;
    assert_eq!(positions(&removed["events"]), [2]);
}

#[tokio::test]
async fn responses_are_compressed_for_clients_that_accept_it() {
    let store = MemoryStore::new();
    let tags: Vec<String> = (0..50).map(|n| format!("tag-{n}")).collect();
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    append(&store, "Cart-1", &tags).await;
    let base = served(store, 100).await;
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    let (status, headers, _) = get_with(
        &client,
        &format!("{base}/feed"),
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    let (_, headers, body) = get_with(&client, &format!("{base}/feed"), &[]).await;
    assert_eq!(header(&headers, "content-encoding"), "");
    assert!(body.contains("tag-49"));
    // A live stream is never compressed: a compressor would hold events back.
    let live = client
        .get(format!("{base}/feed/sse?after=0"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(live.headers(), "content-type"), "text/event-stream");
    assert_eq!(header(live.headers(), "content-encoding"), "");
}

#[tokio::test]
async fn a_store_that_is_down_gives_503_with_retry_after() {
    let store = Downable::default();
    append(&store, "Cart-1", &["a"]).await;
    let base = served(store.clone(), 10).await;
    store.down.store(true, Ordering::SeqCst);
    for url in [
        "/feed",
        "/feed/pages/1",
        "/events/1",
        "/streams/Cart-1",
        "/feed/events",
    ] {
        let (status, headers, body) = get(&format!("{base}{url}")).await;
        assert_eq!(status, 503, "{url}: {body}");
        assert_eq!(header(&headers, "retry-after"), "2");
        assert_eq!(header(&headers, "cache-control"), "no-store");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"], "unavailable");
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains("connection refused"));
    }
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(get(&format!("{base}/feed")).await.0, 200);
}

#[tokio::test]
async fn settings_out_of_range_are_raised_to_the_smallest_that_works() {
    let store = MemoryStore::new();
    append(&store, "Cart-1", &["a", "b"]).await;
    let config = FeedConfig {
        page_size: 0,
        max_limit: 0,
        ..FeedConfig::default()
    };
    let base = serve(HttpFeed::new(store).with_config(config).router()).await;
    let head = json(&format!("{base}/feed")).await;
    assert_eq!(
        (head["page"].as_u64(), head["page_size"].as_u64()),
        (Some(3), Some(1))
    );
    let read = json(&format!("{base}/feed/events?limit=50")).await;
    assert_eq!(positions(&read["events"]), [1]);
}
