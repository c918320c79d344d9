//! Exactly once through crashes: the `bank --settle` process runs the transfer process
//! manager on a SQLite file and is killed (SIGKILL) at random moments, then restarted;
//! after the last run every transfer has ended, each debit, credit and refund happened
//! exactly once, and the money adds up.

use cqrs_core::codec::decode;
use cqrs_core::{is_stream_of, EventStore, Repository, Upcasters};
use cqrs_examples::bank::{
    Account, AccountCommand, AccountEvent, Transfer, TransferCommand, TransferStatus,
};
use cqrs_examples::demo::bank::transfer_ids;
use cqrs_sqlite::SqliteStore;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const TRANSFERS: usize = 1_200;
const KILLS: usize = 40;

/// A small pseudo-random sequence (xorshift), seeded from a fresh UUID and printed, so a
/// failing run can be told apart.
struct Random(u64);

impl Random {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn settle_process(dir: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_bank"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--settle")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bank binary starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_manager_killed_at_random_moments_reacts_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("bank.db")).await.unwrap();
    let accounts = Repository::<Account, _>::new(store.clone());
    let transfers = Repository::<Transfer, _>::new(store.clone());
    let names = ["a", "b", "c", "closed", "never"];
    for (id, limit) in [("a", 0), ("b", 100), ("c", 50), ("closed", 0)] {
        let open = AccountCommand::Open {
            overdraft_limit: limit,
        };
        accounts.execute(id, open).await.unwrap();
    }
    accounts
        .execute("closed", AccountCommand::Close)
        .await
        .unwrap();
    let seed = u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap()) | 1;
    println!("seed {seed}");
    let mut random = Random(seed);
    let mut paid_in = 0;
    let mut killed_mid_run = 0;
    for round in 0..KILLS {
        // Money in, and transfers requested, for this round's process to settle...
        for (id, amount) in [("a", 400), ("b", 200), ("c", 100)] {
            let deposit = AccountCommand::Deposit { amount };
            accounts.execute(id, deposit).await.unwrap();
            paid_in += amount;
        }
        for index in 0..TRANSFERS / KILLS {
            let from = names[usize::try_from(random.next(3)).unwrap()];
            let to = names[usize::try_from(random.next(5)).unwrap()];
            let amount = i64::try_from(random.next(150)).unwrap() + 1;
            let transfer_id = format!("t{round}.{index}");
            let request = TransferCommand::Request {
                transfer_id: transfer_id.clone(),
                from: from.into(),
                to: to.into(),
                amount,
            };
            // From an account to itself is refused at the request: nothing to settle.
            let _ = transfers.execute(&transfer_id, request).await;
        }
        // ...which is killed while it runs, at a random moment, and started again next
        // round from where it got to.
        let mut child = settle_process(dir.path());
        std::thread::sleep(Duration::from_millis(2 + random.next(60)));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().unwrap(); // SIGKILL: no destructor, no flush, no rollback of its own
        child.wait().unwrap();
    }
    let last = settle_process(dir.path()).wait_with_output().unwrap();
    assert!(
        last.status.success(),
        "the last run failed: {}",
        String::from_utf8_lossy(&last.stderr)
    );
    println!("killed mid-run {killed_mid_run} of {KILLS} times");

    // Every transfer ended, by exactly its steps, each taken once.
    let mut steps: BTreeMap<String, [u32; 3]> = BTreeMap::new();
    let upcasters = Upcasters::new();
    for event in store.read_all(1, usize::MAX).await.unwrap() {
        if !is_stream_of::<Account>(&event.stream_id) {
            continue;
        }
        let (transfer_id, step) = match decode::<AccountEvent>(&event, &upcasters).unwrap() {
            AccountEvent::DebitedForTransfer { transfer_id, .. } => (transfer_id, 0),
            AccountEvent::CreditedByTransfer { transfer_id, .. } => (transfer_id, 1),
            AccountEvent::TransferRefunded { transfer_id, .. } => (transfer_id, 2),
            _ => continue,
        };
        steps.entry(transfer_id).or_default()[step] += 1;
    }
    let ids = transfer_ids(&store).await.unwrap();
    assert!(
        ids.len() > TRANSFERS / 2,
        "{} transfers requested",
        ids.len()
    );
    let mut ended: BTreeMap<String, usize> = BTreeMap::new();
    for id in ids {
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
        *ended.entry(format!("{status:?}")).or_default() += 1;
    }
    println!("transfers: {ended:?}");
    assert_eq!(ended.len(), 3, "every ending occurred: {ended:?}");
    let mut total = 0;
    for id in names {
        total += accounts.load(id).await.unwrap().state.balance();
    }
    assert_eq!(total, paid_in);
}
