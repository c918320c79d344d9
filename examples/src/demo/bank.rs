//! The bank story: accounts, a refused withdrawal, and transfers driven by the transfer
//! process (a process manager across the `Account` and `Transfer` aggregates, exactly once):
//! one completes, one is rejected by the overdraft rule, two are compensated (a closed
//! target, a target never opened).

use super::{run_command, session_tag, DemoError, Output, USER_KEY};
use crate::bank::{
    Account, AccountCommand, Transfer, TransferCommand, TransferProcess, TransferStatus,
    TRANSFER_PROCESS,
};
use cqrs_core::{
    EventFilter, EventStore, LogRead, Metadata, ReactorConsumer, Repository, Subscription,
    SubscriptionError, TrackingStore,
};
use uuid::Uuid;

/// What the bank demo did, for the caller to check or show.
#[derive(Debug)]
pub struct BankDemo {
    /// Each account's id and final balance, in cents.
    pub balances: Vec<(String, i64)>,
    /// Deposits minus withdrawals that were taken, in cents: what the balances sum to.
    pub paid_in: i64,
    /// Each transfer's id and how it ended.
    pub transfers: Vec<(String, TransferStatus)>,
}

/// Runs the transfer process on `store` until it has reacted to every event there is, its
/// reactions' events included, and returns the subscription's checkpoint. Safe to run again,
/// or after a crash: it resumes from its checkpoint, and no reaction runs twice.
pub async fn settle<S: TrackingStore + Clone>(store: S) -> Result<u64, SubscriptionError> {
    let consumer = ReactorConsumer::new(TransferProcess::new(store.clone()), store.clone());
    let process = Subscription::new(TRANSFER_PROCESS, store, consumer);
    let mut checkpoint = process.catch_up().await?;
    loop {
        // A catch-up reads to the end of the log; the reactions may have added more.
        let reached = process.catch_up().await?;
        if reached == checkpoint {
            return Ok(checkpoint);
        }
        checkpoint = reached;
    }
}

/// The ids of every transfer requested in `store`, in order.
pub async fn transfer_ids<S: EventStore>(store: &S) -> Result<Vec<String>, DemoError> {
    let mut ids = Vec::new();
    let mut from = 1;
    let transfers = EventFilter::all()
        .with_aggregate::<Transfer>()
        .with_event_types(["Requested"]);
    loop {
        let page = store
            .read_log(&LogRead::forward(from, 1_000).matching(transfers.clone()))
            .await?;
        for event in &page {
            if let Some(id) = cqrs_core::aggregate_id::<Transfer>(&event.stream_id) {
                ids.push(id.to_owned());
            }
        }
        match page.last() {
            Some(last) if page.len() == 1_000 => from = last.position + 1,
            _ => return Ok(ids),
        }
    }
}

/// Runs the bank story on `store`, printing each step to `out`.
pub async fn run<S: TrackingStore + Clone>(
    store: S,
    out: Output<'_>,
) -> Result<BankDemo, DemoError> {
    let tag = session_tag(Uuid::new_v4());
    let metadata = Metadata::new().with(USER_KEY, "teller");
    let accounts = Repository::<Account, _>::new(store.clone());
    let transfers = Repository::<Transfer, _>::new(store.clone());
    let [alice, bob, carol, dave] =
        ["alice", "bob", "carol", "dave"].map(|name| format!("{name}.{tag}"));
    writeln!(
        out,
        "== Bank demo: accounts, and transfers run by a process manager"
    )?;
    let mut paid_in = 0;
    for (id, limit) in [(&alice, 100), (&bob, 0), (&carol, 0)] {
        let open = AccountCommand::Open {
            overdraft_limit: limit,
        };
        run_command(&accounts, id, open, &metadata, out).await??;
    }
    for (id, amount) in [(&alice, 500), (&bob, 50)] {
        let deposit = AccountCommand::Deposit { amount };
        if run_command(&accounts, id, deposit, &metadata, out)
            .await?
            .is_ok()
        {
            paid_in += amount;
        }
    }
    // Refused: bob may not go below 0.
    let withdraw = AccountCommand::Withdraw { amount: 80 };
    if run_command(&accounts, &bob, withdraw, &metadata, out)
        .await?
        .is_ok()
    {
        paid_in -= 80;
    }
    run_command(&accounts, &carol, AccountCommand::Close, &metadata, out).await??;

    let requests = [
        ("t1", &alice, &bob, 200),   // completes
        ("t2", &bob, &alice, 1_000), // rejected: bob's overdraft limit is 0
        ("t3", &alice, &carol, 100), // compensated: carol's account is closed
        ("t4", &bob, &dave, 30),     // compensated: dave never opened one
    ];
    let mut ids = Vec::new();
    for (name, from, to, amount) in requests {
        let id = format!("{name}.{tag}");
        let request = TransferCommand::Request {
            transfer_id: id.clone(),
            from: from.clone(),
            to: to.clone(),
            amount,
        };
        run_command(&transfers, &id, request, &metadata, out).await??;
        ids.push(id);
    }
    writeln!(
        out,
        "-- the transfer process reacts to Transfer and Account events, one reaction per \
         event, each committed with its checkpoint"
    )?;
    let checkpoint = settle(store.clone()).await?;
    writeln!(
        out,
        "-- process `{TRANSFER_PROCESS}` caught up at position {checkpoint}"
    )?;

    let mut ended = Vec::new();
    for id in &ids {
        let transfer = transfers.load(id).await?.state;
        writeln!(
            out,
            "    Transfer-{id}: {} -> {} {}: {:?}",
            transfer.from(),
            transfer.to(),
            transfer.amount(),
            transfer.status()
        )?;
        ended.push((id.clone(), transfer.status()));
    }
    let mut balances = Vec::new();
    for id in [&alice, &bob, &carol, &dave] {
        let account = accounts.load(id).await?.state;
        writeln!(out, "    Account-{id}: balance {}", account.balance())?;
        balances.push((id.clone(), account.balance()));
    }
    let total: i64 = balances.iter().map(|(_, balance)| balance).sum();
    writeln!(
        out,
        "    sum of balances {total} = deposits - withdrawals {paid_in}\n"
    )?;
    Ok(BankDemo {
        balances,
        paid_in,
        transfers: ended,
    })
}
