//! Following the log: the cursor with long-polling, and Server-Sent Events resumed by
//! `Last-Event-ID`.

mod common;

use common::*;
use cqrs_http::HttpFeed;
use cqrs_memory::MemoryStore;
use futures_util::StreamExt;

#[tokio::test]
async fn the_cursor_pages_after_a_position_and_links_to_the_next_read() {
    let store = MemoryStore::new();
    append(&store, "Cart-1", &["a", "b", "c", "d", "e"]).await;
    let base = serve(HttpFeed::new(store).router()).await;
    let read = json(&format!("{base}/feed/events?after=2&limit=2")).await;
    assert_eq!(positions(&read["events"]), [3, 4]);
    assert_eq!(read["last_position"], 4);
    assert_eq!(read["links"]["next"], "/feed/events?after=4&limit=2");
    let rest = json(&format!(
        "{base}{}",
        read["links"]["next"].as_str().unwrap()
    ))
    .await;
    assert_eq!(positions(&rest["events"]), [5]);
    let end = json(&format!("{base}/feed/events?after=5")).await;
    assert_eq!(
        (positions(&end["events"]), end["last_position"].as_u64()),
        (vec![], Some(5))
    );
    for (query, parameter) in [
        ("after=x", "after"),
        ("limit=0", "limit"),
        ("wait=-1", "wait"),
    ] {
        let (status, _, body) = get(&format!("{base}/feed/events?{query}")).await;
        assert_eq!(status, 400, "{query}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["parameter"], parameter);
    }
}

#[tokio::test]
async fn a_long_poll_returns_the_event_appended_while_it_waits() {
    let store = MemoryStore::new();
    append(&store, "Cart-1", &["a"]).await;
    let base = serve(HttpFeed::new(store.clone()).router()).await;
    let poll =
        tokio::spawn(async move { json(&format!("{base}/feed/events?after=1&wait=30")).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !poll.is_finished(),
        "nothing to return yet: the request waits"
    );
    append(&store, "Cart-1", &["b"]).await;
    let read = poll.await.unwrap();
    assert_eq!(positions(&read["events"]), [2]);
}

/// Reads SSE frames from `response` until `count` events arrived: their (id, position).
async fn sse_events(response: reqwest::Response, count: usize) -> Vec<(u64, u64)> {
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = body.next().await.expect("the stream ended early").unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let id = frame.lines().find_map(|line| line.strip_prefix("id: "));
            let data = frame.lines().find_map(|line| line.strip_prefix("data: "));
            if let (Some(id), Some(data)) = (id, data) {
                let event: serde_json::Value = serde_json::from_str(data).unwrap();
                events.push((id.parse().unwrap(), event["position"].as_u64().unwrap()));
            }
        }
    }
    events
}

#[tokio::test]
async fn sse_sends_each_event_with_its_position_as_id_and_resumes_after_last_event_id() {
    let store = MemoryStore::new();
    append(&store, "Cart-1", &["a", "b", "c"]).await;
    let base = serve(HttpFeed::new(store.clone()).router()).await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{base}/feed/sse?after=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(response.headers(), "content-type"),
        "text/event-stream"
    );
    let live = tokio::spawn(sse_events(response, 4));
    append(&store, "Cart-2", &["d", "e"]).await;
    assert_eq!(live.await.unwrap(), [(2, 2), (3, 3), (4, 4), (5, 5)]);

    let resumed = client
        .get(format!("{base}/feed/sse?after=1"))
        .header("last-event-id", "4")
        .send()
        .await
        .unwrap();
    assert_eq!(
        sse_events(resumed, 1).await,
        [(5, 5)],
        "Last-Event-ID wins over after"
    );
    let bad = client
        .get(format!("{base}/feed/sse"))
        .header("last-event-id", "four")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}

#[tokio::test]
async fn sse_without_a_position_starts_at_the_head() {
    let store = MemoryStore::new();
    append(&store, "Cart-1", &["a", "b"]).await;
    let base = serve(HttpFeed::new(store.clone()).router()).await;
    let response = reqwest::get(format!("{base}/feed/sse")).await.unwrap();
    let live = tokio::spawn(sse_events(response, 1));
    append(&store, "Cart-1", &["c"]).await;
    assert_eq!(live.await.unwrap(), [(3, 3)]);
}
