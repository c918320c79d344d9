//! Bank accounts and transfers between them: work that spans aggregates.
//!
//! An [`Account`] is opened, takes deposits and withdrawals, and never goes below minus its
//! overdraft limit. A transfer moves money between two accounts, which are two aggregates,
//! so two transactions: the [`Transfer`] aggregate records the request and how it ended, and
//! the [`TransferProcess`] (a process manager) hears the events of both aggregate types and
//! drives the steps: debit the source; once debited, credit the target; if the target
//! refuses the credit (closed, never opened), refund the source (the compensation).
//!
//! The process runs as a [`Reactor`] in a subscription: the events of each reaction's
//! commands commit together with the subscription's checkpoint, so a crash never debits,
//! credits or refunds twice, and the accounts keep no list of transfers they applied.

use cqrs_core::reaction::{Reaction, Reactor};
use cqrs_core::{
    aggregate_id, async_trait, Aggregate, DomainEvent, EventEnvelope, EventStore, HandlerError,
    Repository, RepositoryError, Sources,
};
use serde::{Deserialize, Serialize};

/// What happened to an account. Amounts are in cents, always positive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum AccountEvent {
    /// The account was opened; its balance may go down to minus `overdraft_limit`.
    Opened {
        /// How far below zero the balance may go.
        overdraft_limit: i64,
    },
    /// Money was paid in.
    Deposited {
        /// How much.
        amount: i64,
    },
    /// Money was paid out.
    Withdrawn {
        /// How much.
        amount: i64,
    },
    /// The first step of a transfer: money left for another account.
    DebitedForTransfer {
        /// The transfer.
        transfer_id: String,
        /// How much.
        amount: i64,
    },
    /// The second step of a transfer: money arrived from another account.
    CreditedByTransfer {
        /// The transfer.
        transfer_id: String,
        /// How much.
        amount: i64,
    },
    /// The compensation of a debit whose credit was refused: the money came back.
    TransferRefunded {
        /// The transfer.
        transfer_id: String,
        /// How much.
        amount: i64,
    },
    /// The account was closed: it takes no more money in (refunds excepted) or out.
    Closed,
}

/// What can be asked of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    /// Open it with this overdraft limit (0 or more).
    Open {
        /// How far below zero the balance may go.
        overdraft_limit: i64,
    },
    /// Pay money in.
    Deposit {
        /// How much (more than 0).
        amount: i64,
    },
    /// Pay money out, within the overdraft limit.
    Withdraw {
        /// How much (more than 0).
        amount: i64,
    },
    /// Take the money of a transfer out, within the overdraft limit.
    DebitForTransfer {
        /// The transfer.
        transfer_id: String,
        /// How much (more than 0).
        amount: i64,
    },
    /// Take the money of a transfer in.
    CreditByTransfer {
        /// The transfer.
        transfer_id: String,
        /// How much (more than 0).
        amount: i64,
    },
    /// Give back the money of a transfer whose credit was refused (never refused by an
    /// opened account, closed or not: the money is the account's).
    RefundTransfer {
        /// The transfer.
        transfer_id: String,
        /// How much (more than 0).
        amount: i64,
    },
    /// Close it; only an empty account can be closed.
    Close,
}

/// Why an account refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Opened once only.
    #[error("the account is already open")]
    AlreadyOpen,
    /// Never opened.
    #[error("the account was never opened")]
    NotOpen,
    /// Closed.
    #[error("the account is closed")]
    Closed,
    /// An amount or limit out of range.
    #[error("the amount {0} is not positive")]
    NotPositive(i64),
    /// Taking `amount` would go below minus the overdraft limit.
    #[error("{amount} would take the balance {balance} below the overdraft limit -{limit}")]
    Overdraft {
        /// The balance now.
        balance: i64,
        /// The amount asked.
        amount: i64,
        /// The overdraft limit.
        limit: i64,
    },
    /// Only an empty account is closed.
    #[error("the balance is {0}, not 0")]
    NotEmpty(i64),
}

/// An account as its events made it.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    open: bool,
    closed: bool,
    balance: i64,
    overdraft_limit: i64,
}

impl Account {
    /// The balance in cents (negative in overdraft).
    pub fn balance(&self) -> i64 {
        self.balance
    }

    /// Whether it was opened and is not closed.
    pub fn is_open(&self) -> bool {
        self.open && !self.closed
    }

    fn takes_money(&self) -> Result<(), AccountError> {
        match (self.open, self.closed) {
            (false, _) => Err(AccountError::NotOpen),
            (true, true) => Err(AccountError::Closed),
            (true, false) => Ok(()),
        }
    }

    fn can_pay(&self, amount: i64) -> Result<(), AccountError> {
        self.takes_money()?;
        let within = self
            .balance
            .checked_sub(amount)
            .is_some_and(|after| after >= -self.overdraft_limit);
        if within {
            Ok(())
        } else {
            Err(AccountError::Overdraft {
                balance: self.balance,
                amount,
                limit: self.overdraft_limit,
            })
        }
    }
}

fn positive(amount: i64) -> Result<i64, AccountError> {
    if amount > 0 {
        Ok(amount)
    } else {
        Err(AccountError::NotPositive(amount))
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn handle(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        let event = match command {
            AccountCommand::Open { overdraft_limit } => {
                if self.open {
                    return Err(AccountError::AlreadyOpen);
                }
                if overdraft_limit < 0 {
                    return Err(AccountError::NotPositive(overdraft_limit));
                }
                AccountEvent::Opened { overdraft_limit }
            }
            AccountCommand::Deposit { amount } => {
                self.takes_money()?;
                AccountEvent::Deposited {
                    amount: positive(amount)?,
                }
            }
            AccountCommand::Withdraw { amount } => {
                self.can_pay(positive(amount)?)?;
                AccountEvent::Withdrawn { amount }
            }
            AccountCommand::DebitForTransfer {
                transfer_id,
                amount,
            } => {
                self.can_pay(positive(amount)?)?;
                AccountEvent::DebitedForTransfer {
                    transfer_id,
                    amount,
                }
            }
            AccountCommand::CreditByTransfer {
                transfer_id,
                amount,
            } => {
                self.takes_money()?;
                AccountEvent::CreditedByTransfer {
                    transfer_id,
                    amount: positive(amount)?,
                }
            }
            AccountCommand::RefundTransfer {
                transfer_id,
                amount,
            } => {
                if !self.open {
                    return Err(AccountError::NotOpen);
                }
                AccountEvent::TransferRefunded {
                    transfer_id,
                    amount: positive(amount)?,
                }
            }
            AccountCommand::Close => {
                self.takes_money()?;
                if self.balance != 0 {
                    return Err(AccountError::NotEmpty(self.balance));
                }
                AccountEvent::Closed
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { overdraft_limit } => {
                self.open = true;
                self.overdraft_limit = *overdraft_limit;
            }
            AccountEvent::Deposited { amount }
            | AccountEvent::CreditedByTransfer { amount, .. }
            | AccountEvent::TransferRefunded { amount, .. } => self.balance += amount,
            AccountEvent::Withdrawn { amount }
            | AccountEvent::DebitedForTransfer { amount, .. } => {
                self.balance -= amount;
            }
            AccountEvent::Closed => self.closed = true,
        }
    }
}

/// What happened to a transfer: the process manager's own stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum TransferEvent {
    /// Someone asked to move `amount` from `from` to `to` (account ids).
    Requested {
        /// The transfer.
        transfer_id: String,
        /// The account debited.
        from: String,
        /// The account credited.
        to: String,
        /// How much.
        amount: i64,
    },
    /// The money arrived.
    Completed {
        /// The transfer.
        transfer_id: String,
    },
    /// The source refused the debit: nothing moved.
    Rejected {
        /// The transfer.
        transfer_id: String,
        /// The source's refusal.
        reason: String,
    },
    /// The target refused the credit: the source was refunded.
    Compensated {
        /// The transfer.
        transfer_id: String,
        /// The target's refusal.
        reason: String,
    },
}

/// What can be asked of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferCommand {
    /// Ask for a transfer (the user's command).
    Request {
        /// The transfer: the id of its stream.
        transfer_id: String,
        /// The account debited.
        from: String,
        /// The account credited.
        to: String,
        /// How much (more than 0).
        amount: i64,
    },
    /// Record that the money arrived (the process's command).
    Complete,
    /// Record that the source refused the debit (the process's command).
    Reject {
        /// The source's refusal.
        reason: String,
    },
    /// Record that the target refused the credit and the source was refunded.
    Compensate {
        /// The target's refusal.
        reason: String,
    },
}

/// Why a transfer refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// A transfer is requested once.
    #[error("transfer {0} was requested already")]
    AlreadyRequested(String),
    /// Only a requested transfer ends.
    #[error("transfer {0} was never requested")]
    NotRequested(String),
    /// A transfer ends once.
    #[error("transfer {0} has ended already")]
    AlreadyEnded(String),
    /// From an account to itself.
    #[error("transfer {0} goes from an account to itself")]
    SameAccount(String),
    /// An amount out of range.
    #[error("transfer {0}: the amount {1} is not positive")]
    NotPositive(String, i64),
}

/// Where a transfer stands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferStatus {
    /// Not requested.
    #[default]
    None,
    /// Requested, not ended yet: money may be in flight.
    Requested,
    /// The money arrived.
    Completed,
    /// The debit was refused; nothing moved.
    Rejected,
    /// The credit was refused; the money went back.
    Compensated,
}

/// A transfer as its events made it: the process manager's state.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    id: String,
    status: TransferStatus,
    from: String,
    to: String,
    amount: i64,
}

impl Transfer {
    /// Where it stands.
    pub fn status(&self) -> TransferStatus {
        self.status
    }

    /// The account debited.
    pub fn from(&self) -> &str {
        &self.from
    }

    /// The account credited.
    pub fn to(&self) -> &str {
        &self.to
    }

    /// How much.
    pub fn amount(&self) -> i64 {
        self.amount
    }

    fn ends(&self, event: TransferEvent) -> Result<Vec<TransferEvent>, TransferError> {
        match self.status {
            TransferStatus::Requested => Ok(vec![event]),
            TransferStatus::None => Err(TransferError::NotRequested(self.id.clone())),
            _ => Err(TransferError::AlreadyEnded(self.id.clone())),
        }
    }
}

impl Aggregate for Transfer {
    const TYPE: &'static str = "Transfer";
    type Command = TransferCommand;
    type Event = TransferEvent;
    type Error = TransferError;

    fn handle(&self, command: TransferCommand) -> Result<Vec<TransferEvent>, TransferError> {
        let id = self.id.clone();
        match command {
            TransferCommand::Request { transfer_id, .. } if self.status != TransferStatus::None => {
                Err(TransferError::AlreadyRequested(transfer_id))
            }
            TransferCommand::Request {
                transfer_id,
                from,
                to,
                amount,
            } => {
                if from == to {
                    return Err(TransferError::SameAccount(transfer_id));
                }
                if amount <= 0 {
                    return Err(TransferError::NotPositive(transfer_id, amount));
                }
                Ok(vec![TransferEvent::Requested {
                    transfer_id,
                    from,
                    to,
                    amount,
                }])
            }
            TransferCommand::Complete => self.ends(TransferEvent::Completed { transfer_id: id }),
            TransferCommand::Reject { reason } => self.ends(TransferEvent::Rejected {
                transfer_id: id,
                reason,
            }),
            TransferCommand::Compensate { reason } => self.ends(TransferEvent::Compensated {
                transfer_id: id,
                reason,
            }),
        }
    }

    fn apply(&mut self, event: &TransferEvent) {
        match event {
            TransferEvent::Requested {
                transfer_id,
                from,
                to,
                amount,
            } => {
                self.id = transfer_id.clone();
                self.status = TransferStatus::Requested;
                self.from = from.clone();
                self.to = to.clone();
                self.amount = *amount;
            }
            TransferEvent::Completed { .. } => self.status = TransferStatus::Completed,
            TransferEvent::Rejected { .. } => self.status = TransferStatus::Rejected,
            TransferEvent::Compensated { .. } => self.status = TransferStatus::Compensated,
        }
    }
}

/// What the transfer process hears: the events of both aggregate types, each typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankEvent {
    /// An account's event.
    Account(AccountEvent),
    /// A transfer's event.
    Transfer(TransferEvent),
}

/// The subscription name the transfer process runs under: its checkpoint's key.
pub const TRANSFER_PROCESS: &str = "transfer-process";

/// The process manager of transfers: debit the source when a transfer is requested; credit
/// the target once the source is debited, and complete the transfer; refund the source and
/// record the compensation if the target refuses; record the rejection if the source
/// refuses the debit.
///
/// Its state is the transfer's own stream (loaded for the target and the amount); every
/// command carries `Metadata::caused_by` the event it reacts to.
pub struct TransferProcess<S: EventStore> {
    accounts: Repository<Account, S>,
    transfers: Repository<Transfer, S>,
}

impl<S: EventStore + Clone> TransferProcess<S> {
    /// The process, commanding accounts and transfers of `store`.
    pub fn new(store: S) -> Self {
        Self {
            accounts: Repository::new(store.clone()),
            transfers: Repository::new(store),
        }
    }
}

#[async_trait]
impl<S: EventStore> Reactor for TransferProcess<S> {
    type Event = BankEvent;

    fn name(&self) -> &str {
        TRANSFER_PROCESS
    }

    fn sources(&self) -> Sources<BankEvent> {
        Sources::new()
            .with::<Account>(BankEvent::Account)
            .with::<Transfer>(BankEvent::Transfer)
    }

    async fn react(
        &self,
        event: &EventEnvelope<BankEvent>,
        reaction: &mut Reaction,
    ) -> Result<(), HandlerError> {
        match &event.event {
            BankEvent::Transfer(TransferEvent::Requested {
                transfer_id,
                from,
                amount,
                ..
            }) => {
                let debit = AccountCommand::DebitForTransfer {
                    transfer_id: transfer_id.clone(),
                    amount: *amount,
                };
                if let Some(refusal) = refused(reaction.execute(&self.accounts, from, debit).await)?
                {
                    let reject = TransferCommand::Reject { reason: refusal };
                    reaction
                        .execute(&self.transfers, transfer_id, reject)
                        .await?;
                }
            }
            BankEvent::Account(AccountEvent::DebitedForTransfer {
                transfer_id,
                amount,
            }) => {
                // The process's own state: the transfer, rebuilt from its stream.
                let transfer = self.transfers.load(transfer_id).await?.state;
                let from = aggregate_id::<Account>(&event.stream_id).unwrap_or_default();
                let credit = AccountCommand::CreditByTransfer {
                    transfer_id: transfer_id.clone(),
                    amount: *amount,
                };
                let credited = reaction
                    .execute(&self.accounts, transfer.to(), credit)
                    .await;
                match refused(credited)? {
                    None => {
                        let complete = TransferCommand::Complete;
                        reaction
                            .execute(&self.transfers, transfer_id, complete)
                            .await?;
                    }
                    Some(refusal) => {
                        let refund = AccountCommand::RefundTransfer {
                            transfer_id: transfer_id.clone(),
                            amount: *amount,
                        };
                        reaction.execute(&self.accounts, from, refund).await?;
                        let compensate = TransferCommand::Compensate { reason: refusal };
                        reaction
                            .execute(&self.transfers, transfer_id, compensate)
                            .await?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A refusal as its message (`Some`), success as `None`; any other failure as the error.
fn refused<T, E: std::error::Error + Send + Sync + 'static>(
    outcome: Result<T, RepositoryError<E>>,
) -> Result<Option<String>, HandlerError> {
    match outcome {
        Ok(_) => Ok(None),
        Err(RepositoryError::Domain(refusal)) => Ok(Some(refusal.to_string())),
        Err(other) => Err(other.into()),
    }
}
