//! The user onboarding story: `UserCreated` on one aggregate makes a subscription run
//! the "create onboarding tasks" use case on two `Task` aggregates, each in its own
//! transaction, all under the request's correlation id, so the trace follows the request end
//! to end.

use super::{describe, session_tag, DemoError, Output};
use crate::onboarding::{
    onboarding_task_id, Task, TaskCommand, User, UserCommand, UserEvent, ONBOARDING_TASKS,
};
use cqrs_core::async_trait;
use cqrs_core::{
    stream_id, CheckpointStore, EventEnvelope, EventHandler, EventOf, EventStore, HandlerConsumer,
    HandlerError, Metadata, RecordedEvent, Repository, Subscription,
};
use uuid::Uuid;

/// The subscription's name, the key of its checkpoint.
pub const SUBSCRIPTION: &str = "onboarding-tasks";

/// The use case "create onboarding tasks", run for every new user.
pub struct CreateOnboardingTasks<S: EventStore> {
    tasks: Repository<Task, S>,
}

#[async_trait]
impl<S: EventStore> EventHandler for CreateOnboardingTasks<S> {
    type Aggregate = User;

    fn name(&self) -> &str {
        "create-onboarding-tasks"
    }

    async fn handle(&self, event: &EventOf<Self>) -> Result<(), HandlerError> {
        let UserEvent::UserCreated { user_id, .. } = &event.event;
        for (index, title) in ONBOARDING_TASKS.iter().enumerate() {
            let command = TaskCommand::Create {
                task_id: onboarding_task_id(user_id, index),
                assignee: user_id.clone(),
                title: (*title).to_owned(),
            };
            // Task creation is idempotent, so a redelivered UserCreated changes nothing.
            self.tasks
                .execute_with(
                    &onboarding_task_id(user_id, index),
                    command,
                    Metadata::caused_by(event),
                )
                .await?;
        }
        Ok(())
    }
}

/// What the onboarding demo did, for the caller to check or show.
#[derive(Debug)]
pub struct OnboardingDemo {
    /// The user signed up.
    pub user_id: String,
    /// The request's correlation id, on every event of the story.
    pub correlation_id: Uuid,
    /// The `UserCreated` event as committed.
    pub user_created: EventEnvelope<UserEvent>,
    /// The tasks' events as stored, in the order of [`ONBOARDING_TASKS`].
    pub task_events: Vec<RecordedEvent>,
    /// Each onboarding task as its repository loads it.
    pub tasks: Vec<Task>,
    /// The subscription's checkpoint when it was stopped.
    pub checkpoint: u64,
}

/// Runs the onboarding story on `store`, printing each step to `out`. With a `tracing`
/// subscriber installed (the `onboarding` binary installs one), the spans of every command
/// and handler print too, each carrying the correlation id.
pub async fn run<S: EventStore + CheckpointStore + Clone>(
    store: S,
    out: Output<'_>,
) -> Result<OnboardingDemo, DemoError> {
    let correlation_id = Uuid::new_v4();
    let user_id = format!("ada{}", session_tag(correlation_id));
    writeln!(
        out,
        "== Onboarding demo: request correlation_id={correlation_id}"
    )?;
    let tasks = Repository::<Task, _>::new(store.clone());
    let consumer = HandlerConsumer::new(
        CreateOnboardingTasks {
            tasks: tasks.clone(),
        },
        store.clone(),
    );
    let mut running = Subscription::new(SUBSCRIPTION, store.clone(), consumer).start();
    writeln!(
        out,
        "-- subscription `{SUBSCRIPTION}` started: it turns UserCreated into tasks"
    )?;

    let users = Repository::<User, _>::new(store.clone());
    writeln!(out, "> User-{user_id}: Create")?;
    let committed = users
        .execute_with(
            &user_id,
            UserCommand::Create {
                user_id: user_id.clone(),
                email: format!("{user_id}@example.org"),
                name: "Ada".to_owned(),
            },
            Metadata::new().with_correlation_id(correlation_id),
        )
        .await?;
    let user_created = committed
        .events
        .into_iter()
        .next()
        .ok_or("creating a user recorded no event")?;
    writeln!(
        out,
        "    committed UserCreated version={} position={} event_id={}",
        user_created.version, user_created.position, user_created.event_id
    )?;
    writeln!(
        out,
        "-- the command returned; the tasks are created after, in their own transactions"
    )?;
    running.wait_for(user_created.position).await?;

    let mut task_events = Vec::new();
    let mut loaded = Vec::new();
    writeln!(out, "-- tasks created by the subscription:")?;
    for index in 0..ONBOARDING_TASKS.len() {
        let task_id = onboarding_task_id(&user_id, index);
        let task = tasks.load(&task_id).await?.state;
        let events = store
            .read_stream(&stream_id::<Task>(&task_id), 1, 16)
            .await?;
        for event in &events {
            writeln!(
                out,
                "    Task-{task_id}: {} correlation_id={} causation_id={} ({task})",
                event.event_type,
                describe(event.metadata.correlation_id),
                describe(event.metadata.causation_id),
            )?;
        }
        task_events.extend(events);
        loaded.push(task);
    }
    writeln!(
        out,
        "    every task event carries the request's correlation id; its causation id is \
         the UserCreated event ({})",
        user_created.event_id
    )?;
    running.stop().await?;
    let checkpoint = store.load_checkpoint(SUBSCRIPTION).await?;
    writeln!(out, "-- subscription stopped at checkpoint {checkpoint}\n")?;
    Ok(OnboardingDemo {
        user_id,
        correlation_id,
        user_created,
        task_events,
        tasks: loaded,
        checkpoint,
    })
}
