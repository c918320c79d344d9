//! The relay against a model of a JetStream stream (sequences, a deduplication window on a
//! simulated clock, expected-last-sequence checks, lost acknowledgements, timeouts, a payload
//! limit), crashed at every kind of step: whatever happens, every event of the log ends up in
//! the stream exactly once, in position order (so each stream in version order), except
//! those refused for good and skipped by the operator, and the checkpoint is never ahead of
//! what the stream holds.

mod support;

use cqrs_core::{CheckpointStore, EventStore, ExpectedVersion, Lag, LogRead};
use cqrs_memory::MemoryStore;
use cqrs_nats::broker::{Ack, AckFuture, Broker, Failure, Outgoing, PublishFailure, Tip, TipError};
use cqrs_nats::message::{self, MSG_ID};
use cqrs_nats::relay::RelayError;
use cqrs_nats::{skip_refused_on, Relay, RelayConfig};
use proptest::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Large enough for a skip record, which the relay publishes too.
const MAX_PAYLOAD: usize = 512;
const WINDOW: u64 = 3;

/// What the model does to one broker call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Behaves.
    None,
    /// Stores the message, but its acknowledgement is lost (a timeout to the relay).
    LoseAck,
    /// Does not store it: a timeout.
    Timeout,
    /// The relay's process dies here: the call never returns.
    Crash,
}

#[derive(Default)]
struct State {
    /// (sequence, position, event id) of each stored message.
    messages: Vec<(u64, u64, String)>,
    /// Message id -> (sequence, clock when stored).
    dedup: HashMap<String, (u64, u64)>,
    clock: u64,
    faults: VecDeque<Fault>,
}

#[derive(Clone, Default)]
struct Model {
    state: Arc<Mutex<State>>,
    crashed: Arc<Notify>,
}

impl Model {
    fn fault(&self) -> Fault {
        self.state
            .lock()
            .unwrap()
            .faults
            .pop_front()
            .unwrap_or(Fault::None)
    }

    fn crash<T: Send + 'static>(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>> {
        self.crashed.notify_one();
        Box::pin(std::future::pending())
    }

    fn failure(failure: Failure, why: &str) -> PublishFailure {
        PublishFailure {
            failure,
            source: why.into(),
        }
    }

    fn positions(&self) -> Vec<u64> {
        let state = self.state.lock().unwrap();
        state
            .messages
            .iter()
            .map(|(_, position, _)| *position)
            .collect()
    }
}

#[cqrs_core::async_trait]
impl Broker for Model {
    async fn tip(&self) -> Result<Tip, TipError> {
        match self.fault() {
            Fault::Crash => return self.crash().await,
            Fault::Timeout | Fault::LoseAck => {
                return Err(TipError::Unreachable {
                    stream: "model".into(),
                    source: "timed out".into(),
                })
            }
            Fault::None => {}
        }
        let state = self.state.lock().unwrap();
        Ok(state
            .messages
            .last()
            .map_or(Tip::default(), |(sequence, position, id)| Tip {
                sequence: *sequence,
                position: *position,
                event_id: id.parse().unwrap(),
            }))
    }

    async fn publish(&self, outgoing: Outgoing) -> Result<AckFuture, PublishFailure> {
        let fault = self.fault();
        if fault == Fault::Crash {
            return Ok(self.crash());
        }
        if outgoing.payload.len() > MAX_PAYLOAD {
            return Err(Self::failure(Failure::Refused, "maximum payload exceeded"));
        }
        if fault == Fault::Timeout {
            return Ok(Box::pin(async {
                Err(Self::failure(Failure::Transient, "timed out"))
            }));
        }
        let id = outgoing.headers.get(MSG_ID).unwrap().as_str().to_owned();
        let position = message::position(&outgoing.headers, 0).unwrap();
        let mut state = self.state.lock().unwrap();
        state.clock += 1;
        let now = state.clock;
        let last = state
            .messages
            .last()
            .map_or(0, |(sequence, _, _)| *sequence);
        let outcome = match state.dedup.get(&id) {
            Some((sequence, at)) if now - at <= WINDOW => Ok(Ack {
                sequence: *sequence,
                duplicate: true,
            }),
            _ if outgoing.expected_last_sequence != last => {
                Err(Self::failure(Failure::Moved, "wrong last sequence"))
            }
            _ => {
                let sequence = last + 1;
                state.messages.push((sequence, position, id.clone()));
                state.dedup.insert(id, (sequence, now));
                Ok(Ack {
                    sequence,
                    duplicate: false,
                })
            }
        };
        let outcome = match (fault, outcome) {
            (Fault::LoseAck, _) => Err(Self::failure(Failure::Transient, "ack lost")),
            (_, outcome) => outcome,
        };
        Ok(Box::pin(async move { outcome }))
    }
}

fn config() -> RelayConfig {
    let mut config = RelayConfig::new("relay", "model", "orders");
    config.page = 4;
    config.max_in_flight = 3;
    config.first_backoff = Duration::from_millis(1);
    config.max_backoff = Duration::from_millis(2);
    config
}

/// How one life of the relay ended.
enum Ended {
    Crashed,
    Refused(u64, uuid::Uuid),
    CaughtUp,
}

async fn one_life(store: &MemoryStore, model: &Model) -> Ended {
    let head = store
        .read_log(&LogRead::backward(u64::MAX, 1))
        .await
        .unwrap()
        .first()
        .map_or(0, |event| event.position);
    let relay = Relay::with_broker(store.clone(), model.clone(), config());
    let (stop, stopped) = watch::channel(false);
    let (lag, mut lags) = watch::channel(Lag {
        head: 0,
        checkpoint: 0,
    });
    let mut task = tokio::spawn(async move { relay.run(stopped, lag).await });
    let ended = tokio::select! {
        () = model.crashed.notified() => {
            task.abort();
            Ended::Crashed
        }
        outcome = &mut task => refused(outcome.unwrap()),
        _ = lags.wait_for(|lag| lag.checkpoint >= head) => {
            stop.send_replace(true);
            // The page in hand is finished first, and may meet a crash or a refusal.
            tokio::select! {
                () = model.crashed.notified() => {
                    task.abort();
                    Ended::Crashed
                }
                outcome = &mut task => match outcome.unwrap() {
                    Ok(()) => Ended::CaughtUp,
                    other => refused(other),
                },
            }
        }
    };
    ended
}

fn refused(outcome: Result<(), RelayError>) -> Ended {
    match outcome {
        Err(RelayError::Refused {
            position, event_id, ..
        }) => Ended::Refused(position, event_id),
        other => panic!("the relay ended on its own: {other:?}"),
    }
}

fn scenario() -> impl Strategy<Value = (Vec<Vec<(u8, bool)>>, Vec<Fault>)> {
    let event = (0u8..3, prop::bool::weighted(0.08));
    let chunks = prop::collection::vec(prop::collection::vec(event, 0..8), 1..6);
    let fault = prop_oneof![
        6 => Just(Fault::None),
        1 => Just(Fault::LoseAck),
        1 => Just(Fault::Timeout),
        1 => Just(Fault::Crash),
    ];
    (chunks, prop::collection::vec(fault, 0..60))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_event_lost_none_duplicated_order_kept_checkpoint_never_ahead(
        (chunks, faults) in scenario()
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = MemoryStore::new();
            let model = Model::default();
            model.state.lock().unwrap().faults = faults.into();
            let mut skipped = Vec::new();
            let mut chunks = chunks.into_iter();
            loop {
                let chunk = chunks.next();
                for (stream, huge) in chunk.iter().flatten() {
                    let payload = if *huge { format!("\"{}\"", "x".repeat(MAX_PAYLOAD)) } else { "1".to_owned() };
                    let event = support::event("Added", payload);
                    store.append(&format!("Order-{stream}"), ExpectedVersion::Any, vec![event]).await.unwrap();
                }
                let ended = one_life(&store, &model).await;
                // The checkpoint is never ahead of what the stream holds.
                let checkpoint = store.load_checkpoint("relay").await.unwrap();
                let held = model.positions();
                for event in store.read_log(&LogRead::forward(0, usize::MAX)).await.unwrap() {
                    if event.position <= checkpoint && !skipped.contains(&event.position) {
                        prop_assert!(held.contains(&event.position), "position {} at checkpoint {checkpoint}, held {held:?}", event.position);
                    }
                }
                match ended {
                    Ended::Refused(position, event_id) => {
                        // The operator's call meets a healthy broker: the faults wait for the relay.
                        let faults = std::mem::take(&mut model.state.lock().unwrap().faults);
                        skip_refused_on(&store, &model, &config(), position, event_id, "too large").await.unwrap();
                        model.state.lock().unwrap().faults = faults;
                        skipped.push(position);
                    }
                    Ended::Crashed => {}
                    Ended::CaughtUp if chunk.is_none() => break,
                    Ended::CaughtUp => {}
                }
            }
            let log = store.read_log(&LogRead::forward(0, usize::MAX)).await.unwrap();
            let expected: Vec<u64> = log.iter().map(|e| e.position).filter(|p| !skipped.contains(p)).collect();
            prop_assert_eq!(model.positions(), expected);
            let sequences: Vec<u64> = model.state.lock().unwrap().messages.iter().map(|m| m.0).collect();
            prop_assert_eq!(sequences, (1..=u64::try_from(log.len() - skipped.len()).unwrap()).collect::<Vec<_>>());
            Ok(())
        })?;
    }
}
