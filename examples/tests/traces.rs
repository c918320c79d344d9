//! The trace of one request: the onboarding story's spans, captured from `tracing`, show the
//! user's command and the tasks its subscription created under one correlation id, with the
//! user's event as their cause. (One test per file: it installs a process-wide subscriber.)

use cqrs_examples::demo;
use cqrs_sqlite::SqliteStore;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Collects everything the fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_can_be_followed_end_to_end_in_the_trace() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("onboarding.db"))
        .await
        .unwrap();
    let report = demo::onboarding::run(store, &mut Vec::new()).await.unwrap();

    let trace = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let correlation = format!("correlation_id={}", report.correlation_id);
    let cause = format!("causation_id={}", report.user_created.event_id);
    let committed: Vec<&str> = trace.lines().filter(|l| l.contains("committed")).collect();
    let user_line = format!("stream=User-{} ", report.user_id);
    let user: Vec<_> = committed
        .iter()
        .filter(|l| l.contains(&format!("execute{{aggregate=\"User\" {user_line}")))
        .collect();
    assert_eq!(user.len(), 1, "{trace}");
    assert!(
        user[0].contains(&correlation) && user[0].contains("version=1"),
        "{trace}"
    );
    for index in 0..2 {
        let task_line = format!(
            "stream=Task-{} ",
            cqrs_examples::onboarding::onboarding_task_id(&report.user_id, index)
        );
        let task: Vec<_> = committed
            .iter()
            .filter(|l| l.contains(&task_line))
            .collect();
        assert_eq!(task.len(), 1, "{trace}");
        // Inside the subscription's handle span of the user's event, under the same request.
        assert!(
            task[0].contains("subscription{name=onboarding-tasks}"),
            "{trace}"
        );
        assert!(task[0].contains(&user_line), "{trace}");
        assert_eq!(task[0].matches(&correlation).count(), 2, "{trace}");
        assert!(task[0].contains(&cause), "{trace}");
    }
}
