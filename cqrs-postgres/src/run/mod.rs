//! How the store runs: its connections (a pool whose connections are driven on the
//! runtime that connected), the appender task that commits concurrent appends together,
//! and the listener that turns `NOTIFY` and polls into the append signal. These run the
//! SQL of [`crate::sql`] without knowing the schema.

pub(crate) mod appender;
pub(crate) mod connections;
pub(crate) mod listener;
