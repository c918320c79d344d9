//! The read-model contrast (orders) and the onboarding story, run on SQLite and checked on
//! what they report: which dispatch mode left what behind, and the ids tying the onboarding
//! tasks to the request that caused them.

use cqrs_core::{stream_id, DomainEvent, EventStore, LogRead};
use cqrs_examples::demo;
use cqrs_examples::onboarding::{onboarding_task_id, ONBOARDING_TASKS};
use cqrs_examples::order::OrderStatus;
use cqrs_sqlite::SqliteStore;

async fn store(dir: &tempfile::TempDir, name: &str) -> SqliteStore {
    SqliteStore::open(dir.path().join(name)).await.unwrap()
}

#[tokio::test]
async fn after_commit_failure_leaves_the_read_model_behind_inline_failure_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, "orders.db").await;
    let mut out = Vec::new();
    let report = demo::read_models::run(store.clone(), &mut out)
        .await
        .unwrap();

    // After commit: the events are stored, the read model missed the completion.
    assert_eq!(report.after_commit_version, 2);
    assert_eq!(report.after_commit_state, OrderStatus::Completed);
    assert_eq!(report.after_commit_model, Some(OrderStatus::Placed));
    let order = stream_id::<cqrs_examples::order::Order>(&report.after_commit_order);
    assert_eq!(store.stream_version(&order).await.unwrap(), Some(2));

    // Inline: the failed append left neither the event nor the row.
    assert_eq!(report.inline_version_after_failure, 1);
    assert_eq!(report.inline_model_after_failure.as_deref(), Some("placed"));
    assert_eq!(
        report.inline_model_after_retry.as_deref(),
        Some("completed")
    );
    let order = stream_id::<cqrs_examples::order::Order>(&report.inline_order);
    assert_eq!(store.stream_version(&order).await.unwrap(), Some(2));

    let printed = String::from_utf8(out).unwrap();
    assert!(printed.contains("INCONSISTENT"), "{printed}");
    assert!(printed.contains("ROLLED BACK"), "{printed}");
}

#[tokio::test]
async fn onboarding_tasks_carry_the_requests_correlation_and_the_users_event_as_cause() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, "onboarding.db").await;
    for _ in 0..2 {
        // Twice on one file: the second run's subscription resumes from the checkpoint.
        let report = demo::onboarding::run(store.clone(), &mut Vec::new())
            .await
            .unwrap();
        assert_eq!(report.task_events.len(), ONBOARDING_TASKS.len());
        for (index, event) in report.task_events.iter().enumerate() {
            assert_eq!(
                event.stream_id,
                format!("Task-{}", onboarding_task_id(&report.user_id, index))
            );
            assert_eq!(event.event_type, "TaskCreated");
            assert_eq!(event.metadata.correlation_id, Some(report.correlation_id));
            assert_eq!(
                event.metadata.causation_id,
                Some(report.user_created.event_id)
            );
        }
        assert_eq!(
            report.user_created.metadata.correlation_id,
            Some(report.correlation_id)
        );
        assert_eq!(report.user_created.event.event_type(), "UserCreated");
        let titles: Vec<_> = report.tasks.iter().map(|task| task.title()).collect();
        assert_eq!(titles, ONBOARDING_TASKS);
        assert!(report.tasks.iter().all(|t| t.assignee() == report.user_id));
        // The subscription reads only `User` events: its checkpoint is the last of them,
        // before the tasks its handler created.
        assert_eq!(report.checkpoint, report.user_created.position);
        let newest = store
            .read_log(&LogRead::backward(u64::MAX, 1))
            .await
            .unwrap();
        assert_eq!(newest[0].event_type, "TaskCreated");
        assert!(newest[0].position > report.checkpoint);
    }
}
