//! The listener: what moves the append signal for writes of other processes. A connection
//! of its own `LISTEN`s on the store's channel, and each notification advances the signal;
//! the end of the log is also polled every poll interval, and at once after every
//! (re)connect, since a notification sent while disconnected is lost. The signal is only
//! ever a wake-up: subscriptions read the log for what is there, and poll on their own.

use crate::run::appender::advance;
use crate::sql::events::{head, EventReads};
use crate::sql::quote_identifier;
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

/// What the listener needs.
pub(crate) struct Listener {
    pub(crate) config: Config,
    pub(crate) pool: Pool,
    pub(crate) reads: Arc<EventReads>,
    /// The channel to `LISTEN` on; `None`: `NOTIFY` is off, polling only.
    pub(crate) channel: Option<String>,
    pub(crate) poll_interval: Duration,
    pub(crate) appended: Arc<watch::Sender<u64>>,
}

impl Listener {
    /// Runs the listener on `runtime` until the returned task is aborted.
    pub(crate) fn start(self, runtime: &Handle) -> JoinHandle<()> {
        let runtime_for_task = runtime.clone();
        runtime.spawn(self.run(runtime_for_task))
    }

    async fn run(self, runtime: Handle) {
        loop {
            let listening = match &self.channel {
                Some(channel) => match listen(&self.config, &runtime, channel).await {
                    Ok(listening) => Some(listening),
                    Err(error) => {
                        tracing::warn!(%error, "LISTEN failed; polling until it reconnects");
                        None
                    }
                },
                None => None,
            };
            self.poll().await;
            match listening {
                Some((_client, mut notifications)) => loop {
                    tokio::select! {
                        notification = notifications.recv() => match notification {
                            Some(position) => advance(&self.appended, position),
                            // The connection is gone: connect again, and poll.
                            None => break,
                        },
                        () = tokio::time::sleep(self.poll_interval) => self.poll().await,
                    }
                },
                None => tokio::time::sleep(self.poll_interval).await,
            }
        }
    }

    /// Reads the end of the log and advances the signal to it.
    async fn poll(&self) {
        let client = match self.pool.get().await {
            Ok(client) => client,
            Err(error) => {
                tracing::debug!(%error, "no connection to poll the log's end");
                return;
            }
        };
        match head(&client, &self.reads).await {
            Ok(position) => advance(&self.appended, position),
            Err(error) => tracing::debug!(%error, "polling the log's end failed"),
        }
    }
}

/// A connection listening on `channel`, and the positions its notifications carry; the
/// receiver ends when the connection does. Keep the client: dropping it closes the
/// connection.
async fn listen(
    config: &Config,
    runtime: &Handle,
    channel: &str,
) -> Result<(Client, mpsc::UnboundedReceiver<u64>), tokio_postgres::Error> {
    // Driven here, not by a plain driver task, so that its notifications are received.
    let (client, mut connection) = config.connect(NoTls).await?;
    let (sender, receiver) = mpsc::unbounded_channel();
    runtime.spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(notification)) => {
                    // Another application's payload on the channel is no position: ignored.
                    if let Ok(position) = notification.payload().parse::<u64>() {
                        if sender.send(position).is_err() {
                            break;
                        }
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "the LISTEN connection failed");
                    break;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {}", quote_identifier(channel)))
        .await?;
    Ok((client, receiver))
}
