//! The bank's money property: for any sequence of deposits, withdrawals and transfers, with
//! the transfer process delivering some events, restarted, and given events again at random
//! points, once it has settled the balances sum to deposits minus withdrawals, every
//! transfer has ended (completed, rejected, or compensated), and no step ran twice.

use cqrs_core::testing::properties::block_on;
use cqrs_core::testing::proptest::prelude::*;
use cqrs_core::{
    Aggregate, CheckpointStore, Consumer, EventStore, LogRead, ReactorConsumer, RecordedEvent,
    Repository, RepositoryError,
};
use cqrs_examples::bank::{
    Account, AccountCommand, AccountEvent, Transfer, TransferCommand, TransferProcess,
    TransferStatus, TRANSFER_PROCESS,
};
use cqrs_examples::demo::bank::{settle, transfer_ids};
use cqrs_memory::MemoryStore;
use std::collections::BTreeMap;

/// `a`, `b` and `c` are open (overdraft limits 0, 100, 50), `d` is closed, `z` never opened.
const ACCOUNTS: [&str; 5] = ["a", "b", "c", "d", "z"];

#[derive(Debug, Clone)]
enum Op {
    Deposit(usize, i64),
    Withdraw(usize, i64),
    Transfer(usize, usize, i64),
    /// The process handles the next `n` events it takes.
    Deliver(usize),
    /// The process is given the last event it handled again (a redelivery).
    Redeliver,
    /// The process stops and a new one starts, from the stored checkpoint.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    let account = 0..ACCOUNTS.len();
    let amount = -5i64..200;
    prop_oneof![
        2 => (account.clone(), amount.clone()).prop_map(|(a, n)| Op::Deposit(a, n)),
        1 => (account.clone(), amount.clone()).prop_map(|(a, n)| Op::Withdraw(a, n)),
        3 => (account.clone(), account, amount).prop_map(|(f, t, n)| Op::Transfer(f, t, n)),
        2 => (1usize..6).prop_map(Op::Deliver),
        1 => Just(Op::Redeliver),
        1 => Just(Op::Restart),
    ]
}

/// The taken command's amount, or 0 for a refusal; any other failure fails the test.
fn taken<A: Aggregate>(outcome: Result<impl Sized, RepositoryError<A::Error>>, amount: i64) -> i64 {
    match outcome {
        Ok(_) => amount,
        Err(RepositoryError::Domain(_)) => 0,
        Err(other) => panic!("a command failed: {other}"),
    }
}

fn consumer(store: &MemoryStore) -> ReactorConsumer<TransferProcess<MemoryStore>, MemoryStore> {
    ReactorConsumer::new(TransferProcess::new(store.clone()), store.clone())
}

async fn run(ops: Vec<Op>) {
    let store = MemoryStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    let transfers = Repository::<Transfer, _>::new(store.clone());
    for (id, limit) in [("a", 0), ("b", 100), ("c", 50), ("d", 0)] {
        let open = AccountCommand::Open {
            overdraft_limit: limit,
        };
        accounts.execute(id, open).await.unwrap();
    }
    accounts.execute("d", AccountCommand::Close).await.unwrap();

    let mut paid_in = 0;
    let mut process = consumer(&store);
    let mut last_delivered: Option<RecordedEvent> = None;
    for (index, op) in ops.into_iter().enumerate() {
        match op {
            Op::Deposit(account, amount) => {
                let deposit = AccountCommand::Deposit { amount };
                paid_in +=
                    taken::<Account>(accounts.execute(ACCOUNTS[account], deposit).await, amount);
            }
            Op::Withdraw(account, amount) => {
                let withdraw = AccountCommand::Withdraw { amount };
                paid_in -=
                    taken::<Account>(accounts.execute(ACCOUNTS[account], withdraw).await, amount);
            }
            Op::Transfer(from, to, amount) => {
                let request = TransferCommand::Request {
                    transfer_id: format!("t{index}"),
                    from: ACCOUNTS[from].to_owned(),
                    to: ACCOUNTS[to].to_owned(),
                    amount,
                };
                taken::<Transfer>(transfers.execute(&format!("t{index}"), request).await, 0);
            }
            Op::Deliver(count) => {
                let checkpoint = store.load_checkpoint(TRANSFER_PROCESS).await.unwrap();
                let read = LogRead::forward(checkpoint + 1, count).matching(process.filter());
                for event in store.read_log(&read).await.unwrap() {
                    process.consume(TRANSFER_PROCESS, &event).await.unwrap();
                    last_delivered = Some(event);
                }
            }
            Op::Redeliver => {
                if let Some(event) = &last_delivered {
                    process.consume(TRANSFER_PROCESS, event).await.unwrap();
                }
            }
            Op::Restart => process = consumer(&store),
        }
    }
    settle(store.clone()).await.unwrap();

    // The money adds up: transfers only move it, compensations give it back.
    let mut total = 0;
    for id in ACCOUNTS {
        total += accounts.load(id).await.unwrap().state.balance();
    }
    assert_eq!(
        total, paid_in,
        "the balances do not sum to deposits - withdrawals"
    );

    // Every step happened at most once, and every transfer ended by its steps.
    let mut steps: BTreeMap<String, [u32; 3]> = BTreeMap::new();
    for event in store.read_all(1, usize::MAX).await.unwrap() {
        if !cqrs_core::is_stream_of::<Account>(&event.stream_id) {
            continue;
        }
        let (transfer_id, step) =
            match cqrs_core::codec::decode::<AccountEvent>(&event, &Default::default()).unwrap() {
                AccountEvent::DebitedForTransfer { transfer_id, .. } => (transfer_id, 0),
                AccountEvent::CreditedByTransfer { transfer_id, .. } => (transfer_id, 1),
                AccountEvent::TransferRefunded { transfer_id, .. } => (transfer_id, 2),
                _ => continue,
            };
        steps.entry(transfer_id).or_default()[step] += 1;
    }
    for id in transfer_ids(&store).await.unwrap() {
        let status = transfers.load(&id).await.unwrap().state.status();
        let done = steps.get(&id).copied().unwrap_or_default();
        let expected = match status {
            TransferStatus::Completed => [1, 1, 0],
            TransferStatus::Compensated => [1, 0, 1],
            TransferStatus::Rejected => [0, 0, 0],
            other => panic!("transfer {id} did not end: {other:?}"),
        };
        assert_eq!(
            done, expected,
            "transfer {id} ({status:?}): [debits, credits, refunds]"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn money_adds_up_and_every_transfer_ends_once(ops in prop::collection::vec(op(), 0..40)) {
        block_on(run(ops));
    }
}
