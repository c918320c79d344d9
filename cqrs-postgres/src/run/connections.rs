//! Connections: the URL read into a driver configuration, and a pool whose connections are
//! driven by tasks on the runtime the store was connected on, so that a store shared by
//! several runtimes (a thread each, as in tests) keeps working when one of them ends.

use crate::error::PostgresError;
use crate::options::PostgresOptions;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::future::BoxFuture;
use std::str::FromStr;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, NoTls};

/// Reads the URL of `options`, with its connect timeout.
pub(crate) fn config(options: &PostgresOptions) -> Result<Config, PostgresError> {
    let mut config = Config::from_str(&options.url).map_err(|error| PostgresError::InvalidUrl {
        reason: error.to_string(),
    })?;
    config.connect_timeout(options.connect_timeout);
    if config.get_application_name().is_none() {
        config.application_name("cqrs-postgres");
    }
    Ok(config)
}

/// Host, port and database of `config`, for error messages (never the password).
pub(crate) fn target(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "{}:{} database {}",
        if hosts.is_empty() {
            "localhost".to_owned()
        } else {
            hosts.join(",")
        },
        if ports.is_empty() {
            "5432".to_owned()
        } else {
            ports.join(",")
        },
        config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("(default)"),
    )
}

/// Opens one connection on `runtime`, its driver spawned there: its socket belongs to that
/// runtime's I/O driver, not to the caller's (which may be a short-lived one).
pub(crate) async fn connect(
    config: &Config,
    runtime: &Handle,
) -> Result<(Client, JoinHandle<()>), tokio_postgres::Error> {
    match runtime.spawn(open(config.clone(), runtime.clone())).await {
        Ok(opened) => opened,
        // The store's runtime is shutting down: open it on the caller's, so that the
        // caller still gets a connection or the server's own error.
        Err(_) => open(config.clone(), Handle::current()).await,
    }
}

async fn open(
    config: Config,
    runtime: Handle,
) -> Result<(Client, JoinHandle<()>), tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    let driver = runtime.spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "a PostgreSQL connection failed");
        }
    });
    Ok((client, driver))
}

/// Makes the pool's connections with [`connect`].
struct OnRuntime(Handle);

impl deadpool_postgres::Connect for OnRuntime {
    fn connect(
        &self,
        config: &Config,
    ) -> BoxFuture<'_, Result<(Client, JoinHandle<()>), tokio_postgres::Error>> {
        let config = config.clone();
        Box::pin(async move { connect(&config, &self.0).await })
    }
}

/// A pool of up to `options.pool_size` connections driven on `runtime`.
pub(crate) fn pool(
    config: Config,
    options: &PostgresOptions,
    runtime: Handle,
) -> Result<Pool, PostgresError> {
    let manager = Manager::from_connect(
        config.clone(),
        OnRuntime(runtime),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.pool_size)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(options.connect_timeout))
        .build()
        .map_err(|error| PostgresError::Connect {
            target: target(&config),
            reason: error.to_string(),
        })
}
