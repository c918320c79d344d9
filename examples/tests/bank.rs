//! The transfer process manager: given/when/then for each step and its compensation, the
//! bank demo on both stores, and a redelivered event that must not run its commands twice.

use cqrs_core::testing::reactor::{command, refused_command, ReactorFixture};
use cqrs_core::{
    Consumer, EventStore, LogRead, Metadata, ReactorConsumer, Repository, TrackingStore,
};
use cqrs_examples::bank::{
    Account, AccountCommand, AccountEvent, Transfer, TransferCommand, TransferEvent,
    TransferProcess, TransferStatus, TRANSFER_PROCESS,
};
use cqrs_examples::demo;
use cqrs_memory::MemoryStore;
use cqrs_sqlite::SqliteStore;

fn opened(limit: i64) -> AccountEvent {
    AccountEvent::Opened {
        overdraft_limit: limit,
    }
}

fn requested(from: &str, to: &str, amount: i64) -> TransferEvent {
    TransferEvent::Requested {
        transfer_id: "t".into(),
        from: from.into(),
        to: to.into(),
        amount,
    }
}

fn fixture() -> ReactorFixture<TransferProcess<MemoryStore>, MemoryStore> {
    let store = MemoryStore::new();
    ReactorFixture::new(TransferProcess::new(store.clone()), store)
}

#[tokio::test]
async fn a_requested_transfer_debits_the_source() {
    fixture()
        .given::<Account>("a", [opened(0), AccountEvent::Deposited { amount: 50 }])
        .when::<Transfer>("t", requested("a", "b", 30))
        .await
        .then_expect_commands(vec![command::<Account>(
            "a",
            AccountCommand::DebitForTransfer {
                transfer_id: "t".into(),
                amount: 30,
            },
        )]);
}

#[tokio::test]
async fn a_debit_past_the_overdraft_limit_rejects_the_transfer() {
    fixture()
        .given::<Account>("a", [opened(10), AccountEvent::Deposited { amount: 50 }])
        .when::<Transfer>("t", requested("a", "b", 61))
        .await
        .then_expect_commands(vec![
            refused_command::<Account>(
                "a",
                AccountCommand::DebitForTransfer {
                    transfer_id: "t".into(),
                    amount: 61,
                },
            ),
            command::<Transfer>(
                "t",
                TransferCommand::Reject {
                    reason: "61 would take the balance 50 below the overdraft limit -10".into(),
                },
            ),
        ]);
}

#[tokio::test]
async fn a_debited_source_credits_the_target_and_completes_the_transfer() {
    fixture()
        .given::<Account>("a", [opened(0), AccountEvent::Deposited { amount: 50 }])
        .given::<Account>("b", [opened(0)])
        .given::<Transfer>("t", [requested("a", "b", 30)])
        .when::<Account>(
            "a",
            AccountEvent::DebitedForTransfer {
                transfer_id: "t".into(),
                amount: 30,
            },
        )
        .await
        .then_expect_commands(vec![
            command::<Account>(
                "b",
                AccountCommand::CreditByTransfer {
                    transfer_id: "t".into(),
                    amount: 30,
                },
            ),
            command::<Transfer>("t", TransferCommand::Complete),
        ]);
}

#[tokio::test]
async fn a_refused_credit_refunds_the_source_and_compensates_the_transfer() {
    fixture()
        .given::<Account>("a", [opened(0), AccountEvent::Deposited { amount: 50 }])
        .given::<Account>("b", [opened(0), AccountEvent::Closed])
        .given::<Transfer>("t", [requested("a", "b", 30)])
        .when::<Account>(
            "a",
            AccountEvent::DebitedForTransfer {
                transfer_id: "t".into(),
                amount: 30,
            },
        )
        .await
        .then_expect_commands(vec![
            refused_command::<Account>(
                "b",
                AccountCommand::CreditByTransfer {
                    transfer_id: "t".into(),
                    amount: 30,
                },
            ),
            command::<Account>(
                "a",
                AccountCommand::RefundTransfer {
                    transfer_id: "t".into(),
                    amount: 30,
                },
            ),
            command::<Transfer>(
                "t",
                TransferCommand::Compensate {
                    reason: "the account is closed".into(),
                },
            ),
        ]);
}

#[tokio::test]
async fn events_the_process_does_not_act_on_issue_nothing() {
    fixture()
        .when::<Account>("a", opened(0))
        .await
        .then_expect_no_commands();
}

/// The demo's four transfers end as its comments say, and the money adds up.
async fn check_demo<S: TrackingStore + Clone>(store: S) {
    let outcome = demo::bank::run(store, &mut std::io::sink()).await.unwrap();
    let statuses: Vec<TransferStatus> = outcome.transfers.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        statuses,
        [
            TransferStatus::Completed,
            TransferStatus::Rejected,
            TransferStatus::Compensated,
            TransferStatus::Compensated
        ]
    );
    let balances: Vec<i64> = outcome.balances.iter().map(|(_, b)| *b).collect();
    assert_eq!(balances, [300, 250, 0, 0]);
    assert_eq!(balances.iter().sum::<i64>(), outcome.paid_in);
}

#[tokio::test]
async fn the_bank_demo_on_memory() {
    check_demo(MemoryStore::new()).await;
}

#[tokio::test]
async fn the_bank_demo_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    check_demo(SqliteStore::open(dir.path().join("bank.db")).await.unwrap()).await;
}

#[tokio::test]
async fn a_redelivered_event_does_not_run_its_commands_again() {
    let store = MemoryStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    accounts
        .execute("a", AccountCommand::Open { overdraft_limit: 0 })
        .await
        .unwrap();
    accounts
        .execute("a", AccountCommand::Deposit { amount: 40 })
        .await
        .unwrap();
    let request = TransferCommand::Request {
        transfer_id: "t".into(),
        from: "a".into(),
        to: "b".into(),
        amount: 10,
    };
    let committed = Repository::<Transfer, _>::new(store.clone())
        .execute_with("t", request, Metadata::new())
        .await
        .unwrap();
    let requested = store
        .read_log(&LogRead::forward(committed.events[0].position, 1))
        .await
        .unwrap()
        .remove(0);
    // Two consumers, as after a restart or in two processes: each is given the event.
    for _ in 0..2 {
        let consumer = ReactorConsumer::new(TransferProcess::new(store.clone()), store.clone());
        consumer
            .consume(TRANSFER_PROCESS, &requested)
            .await
            .unwrap();
    }
    let account = accounts.load("a").await.unwrap();
    assert_eq!(
        (account.version, account.state.balance()),
        (3, 30),
        "debited once"
    );
    let debit = store
        .read_stream("Account-a", 3, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(debit.metadata.causation_id, Some(requested.event_id));
    assert_eq!(
        debit.metadata.correlation_id,
        requested.metadata.correlation_id
    );
}
