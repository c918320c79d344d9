//! The event browser in a real browser: headless Chromium driven through chromedriver's
//! WebDriver HTTP API, against a store filled by the examples' stories. It clicks from a
//! stream to an event to its causation parent and on to the correlation's tree, and
//! watches the live tail pause and resume.
//!
//! Needs `chromium` and `chromium-driver` (Debian); `.ci/run` installs them and sets
//! `CQRS_BROWSER_TEST=require`. Elsewhere the test says it is skipped when they are missing.
//! With `CQRS_SCREENSHOT=path.png` it saves a screenshot of the event page.

use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{EventStore, ExpectedVersion};
use cqrs_examples::demo;
use cqrs_http::HttpFeed;
use cqrs_sqlite::SqliteStore;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key WebDriver names an element by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session in it.
struct Driver {
    http: reqwest::Client,
    session: String,
    url: String,
    process: Child,
    _profile: tempfile::TempDir,
}

impl Driver {
    /// Starts chromedriver on a free loopback port and a headless Chromium session; `None`
    /// when chromedriver is not installed (and the test is not required).
    async fn start() -> Option<Self> {
        let found = Command::new("chromedriver").arg("--version").output();
        if found.is_err() {
            let required = std::env::var("CQRS_BROWSER_TEST").is_ok_and(|v| v == "require");
            assert!(
                !required,
                "CQRS_BROWSER_TEST=require but chromedriver is not installed"
            );
            eprintln!(
                "skipped: chromedriver is not installed (apt-get install chromium chromium-driver)"
            );
            return None;
        }
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http.get(format!("{url}/status")).send().await;
            if let Ok(response) = ready {
                let status: Value = response.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1200,1000",
                         format!("--user-data-dir={}", profile.path().display())],
            },
        }}});
        let created: Value = http
            .post(format!("{url}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Some(Self {
            http,
            session,
            url,
            process,
            _profile: profile,
        })
    }

    /// One WebDriver command; its `value`.
    async fn command(&self, post: Option<Value>, path: &str) -> Value {
        let url = format!("{}/session/{}{path}", self.url, self.session);
        let request = match post {
            Some(body) => self.http.post(url).json(&body),
            None => self.http.get(url),
        };
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.command(Some(json!({ "url": url })), "/url").await;
    }

    /// The element `css` selects, waiting (boundedly) for it to appear.
    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self
                .command(
                    Some(json!({ "using": "css selector", "value": css })),
                    "/element",
                )
                .await;
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}: {found}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        let text = self
            .command(None, &format!("/element/{element}/text"))
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(Some(json!({})), &format!("/element/{element}/click"))
            .await;
    }

    /// Waits (boundedly) until the text of `css` contains `wanted`; returns that text.
    async fn wait_for_text(&self, css: &str, wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text(css).await;
            if text.contains(wanted) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed {wanted:?}: {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self) -> Vec<u8> {
        let encoded = self.command(None, "/screenshot").await;
        decode_base64(encoded.as_str().unwrap())
    }
}

/// Ends the browser session and chromedriver, also when an assertion failed: a plain
/// blocking `DELETE` (no runtime needed in `drop`), then the process is killed.
impl Drop for Driver {
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let address = self.url.trim_start_matches("http://");
        if let Ok(mut connection) = std::net::TcpStream::connect(address) {
            let _ = connection.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n",
                self.session
            );
            if connection.write_all(request.as_bytes()).is_ok() {
                let _ = connection.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Standard base64 (what WebDriver screenshots are sent in).
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .map(value)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |bits, (i, d)| bits | u32::from(*d) << (18 - 6 * i));
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_from_a_stream_to_an_event_to_its_cause_and_its_trace_and_tailing_live() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db"))
        .await
        .unwrap();
    let mut out = std::io::sink();
    demo::cart::run(store.clone(), &mut out).await.unwrap();
    demo::orders::run(store.clone(), &mut out).await.unwrap();
    let library = demo::library::run(store.clone(), &mut out).await.unwrap();
    demo::onboarding::run(store.clone(), &mut out)
        .await
        .unwrap();
    let router = HttpFeed::new(store.clone())
        .with_subscriptions(store.clone(), [demo::library::SUBSCRIPTION])
        .router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // The home page lists the streams and the subscription with its checkpoint.
    driver.go(&format!("{base}/browse")).await;
    let subscriptions = driver.text("#subscriptions").await;
    assert!(
        subscriptions.contains(demo::library::SUBSCRIPTION),
        "{subscriptions}"
    );
    // From a member's stream (registered, then a loan recorded by the subscription)...
    let member = format!("Member-{}", library.ben_id);
    driver
        .click(&format!("#streams a.stream-link[href$='/{member}']"))
        .await;
    let stream = driver.text("#events").await;
    assert!(
        stream.contains("MemberRegistered") && stream.contains("LoanRecorded"),
        "{stream}"
    );
    // ...to the loan event...
    driver.click("#events tr:nth-child(3) a.event-link").await;
    assert_eq!(driver.text("#event-type").await, "LoanRecorded");
    assert_eq!(driver.text("#stream-link").await, member);
    assert!(driver.text("#payload").await.contains(&library.ben_id));
    if let Ok(path) = std::env::var("CQRS_SCREENSHOT") {
        std::fs::write(path, driver.screenshot().await).unwrap();
    }
    // ...to the event that caused it: the book lent out, which lists the loan as caused.
    driver.click("#causation-link").await;
    assert_eq!(driver.text("#event-type").await, "BookLentOut");
    assert!(driver
        .text("#causation")
        .await
        .contains("a command from outside started it"));
    assert!(driver.text("#caused").await.contains("LoanRecorded"));
    // The correlation's tree: the loan sits under the lending.
    driver.click("#correlation-link").await;
    let nested = driver.text("#trace > li > ul > li").await;
    assert!(nested.contains("LoanRecorded"), "{nested}");
    assert!(driver.text("#trace").await.starts_with("BookLentOut"));

    // The live tail shows new events, and none while paused, until resumed.
    driver.go(&format!("{base}/browse/tail")).await;
    driver.wait_for_text("#tail-status", "live").await;
    let append = |tag: &'static str| {
        let store = store.clone();
        async move {
            store
                .append("Probe-1", ExpectedVersion::Any, vec![tagged_event(tag)])
                .await
                .unwrap()
                .events[0]
                .position
        }
    };
    let first = append("one").await;
    driver
        .wait_for_text("#tail-rows", &format!("{first} Probe-1"))
        .await;
    driver.click("#tail-toggle").await;
    driver
        .wait_for_text("#tail-status", &format!("paused after position {first}"))
        .await;
    let second = append("two").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !driver
            .text("#tail-rows")
            .await
            .contains(&format!("{second} Probe-1")),
        "paused: nothing new shown"
    );
    driver.click("#tail-toggle").await;
    driver
        .wait_for_text("#tail-rows", &format!("{second} Probe-1"))
        .await;
}
