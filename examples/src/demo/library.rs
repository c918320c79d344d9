//! The library lending story: a book lent out records `BookLentOut`, and a subscription
//! then updates the borrowing member's list in a transaction of its own (eventual
//! consistency), while the `Book` aggregate alone refuses a second borrower.

use super::{describe, run_command, session_tag, DemoError, Output, USER_KEY};
use crate::library::{Book, BookCommand, BookError, BookEvent, Member, MemberCommand};
use cqrs_core::async_trait;
use cqrs_core::{
    stream_id, CheckpointStore, Committed, DomainEvent, EventEnvelope, EventHandler, EventOf,
    EventStore, HandlerConsumer, HandlerError, Metadata, RecordedEvent, Repository,
    RunningSubscription, Subscription,
};
use uuid::Uuid;

/// The subscription's name, which is also the key of its checkpoint in the store.
pub const SUBSCRIPTION: &str = "member-loans";

/// The value of [`USER_KEY`] on the commands the librarian gives (registrations, new books).
pub const LIBRARIAN: &str = "librarian";

/// Events read per page of a member's stream.
const PAGE: usize = 256;

/// Keeps each member's list of borrowed books in step with the books: on `BookLentOut` it
/// records the loan on the borrowing [`Member`], on `BookReturned` it ends it. Each is a
/// command of its own on another aggregate, caused by the book event.
#[derive(Clone)]
pub struct MemberLoans<S: EventStore> {
    members: Repository<Member, S>,
}

impl<S: EventStore + Clone> MemberLoans<S> {
    /// A handler that executes its commands on the members of `store`.
    pub fn new(store: S) -> Self {
        Self {
            members: Repository::new(store),
        }
    }

    async fn react(&self, event: &EventEnvelope<BookEvent>) -> Result<(), HandlerError> {
        let (member_id, command) = match &event.event {
            BookEvent::BookAdded { .. } => return Ok(()),
            BookEvent::BookLentOut { book_id, member_id } => (
                member_id,
                MemberCommand::RecordLoan {
                    member_id: member_id.clone(),
                    book_id: book_id.clone(),
                },
            ),
            BookEvent::BookReturned { book_id, member_id } => (
                member_id,
                MemberCommand::EndLoan {
                    member_id: member_id.clone(),
                    book_id: book_id.clone(),
                },
            ),
        };
        self.members
            .execute_with(member_id, command, Metadata::caused_by(event))
            .await?;
        Ok(())
    }
}

#[async_trait]
impl<S: EventStore + Clone> EventHandler for MemberLoans<S> {
    type Aggregate = Book;

    fn name(&self) -> &str {
        SUBSCRIPTION
    }

    async fn handle(&self, event: &EventOf<Self>) -> Result<(), HandlerError> {
        self.react(event).await
    }
}

/// What the library demo did, for the caller to check or show.
#[derive(Debug)]
pub struct LibraryDemo {
    /// The one book of the session ("Dune").
    pub book_id: String,
    /// Ann, who borrows the book first and returns it.
    pub ann_id: String,
    /// Ben, who is refused while Ann holds the book, then borrows it.
    pub ben_id: String,
    /// The session's tag, part of every id so that runs on one database do not collide.
    pub tag: String,
    /// Why the book refused Ben while Ann held it.
    pub refused: BookError,
    /// Ann once the subscription handled her loan.
    pub ann_after_borrow: Member,
    /// Ann once the subscription handled her return.
    pub ann_after_return: Member,
    /// Ben at the end, once the subscription handled his loan.
    pub ben_at_end: Member,
    /// Every event the book committed, in order: added, lent to Ann, returned, lent to Ben.
    pub book_events: Vec<EventEnvelope<BookEvent>>,
    /// The members' events as stored, with their metadata: Ann's stream, then Ben's.
    pub member_events: Vec<RecordedEvent>,
    /// The subscription's stored checkpoint when the session started it.
    pub start_checkpoint: u64,
    /// The subscription's stored checkpoint once it was stopped.
    pub final_checkpoint: u64,
}

/// Runs the library story on `store`, printing each step to `out`.
pub async fn run<S: EventStore + CheckpointStore + Clone>(
    store: S,
    out: Output<'_>,
) -> Result<LibraryDemo, DemoError> {
    let session = Uuid::new_v4();
    let tag = session_tag(session);
    let book_id = format!("{tag}-dune");
    let ann_id = format!("{tag}-ann");
    let ben_id = format!("{tag}-ben");
    writeln!(out, "== Library demo: session {tag}")?;

    // Each request has its own correlation id; the member commands the subscription issues
    // in reaction carry it on, with the book event's id as their causation id.
    let request = |user: &str| {
        Metadata::new()
            .with_correlation_id(Uuid::new_v4())
            .with(USER_KEY, user)
    };

    let start_checkpoint = store.load_checkpoint(SUBSCRIPTION).await?;
    let mut subscription = Subscription::new(
        SUBSCRIPTION,
        store.clone(),
        HandlerConsumer::new(MemberLoans::new(store.clone()), store.clone()),
    )
    .start();
    writeln!(
        out,
        "-- started subscription {SUBSCRIPTION:?} on Book events, from checkpoint \
         {start_checkpoint}: it updates members' lists after each book commit, in its own \
         transaction"
    )?;

    let books = Repository::<Book, S>::new(store.clone());
    let members = Repository::<Member, S>::new(store.clone());
    let mut book_events = Vec::new();

    writeln!(
        out,
        "-- the librarian registers Ann and Ben and adds \"Dune\":"
    )?;
    for (member_id, name) in [(&ann_id, "Ann"), (&ben_id, "Ben")] {
        let register = MemberCommand::Register {
            member_id: member_id.clone(),
            name: name.to_owned(),
        };
        accepted(run_command(&members, member_id, register, &request(LIBRARIAN), out).await?)?;
    }
    let add = BookCommand::AddBook {
        book_id: book_id.clone(),
        title: "Dune".to_owned(),
    };
    book_events.extend(
        accepted(run_command(&books, &book_id, add, &request(LIBRARIAN), out).await?)?.events,
    );

    writeln!(out, "-- Ann borrows Dune:")?;
    let lend_to_ann = lend(&book_id, &ann_id);
    let committed =
        accepted(run_command(&books, &book_id, lend_to_ann, &request("ann"), out).await?)?;
    let ann_after_borrow =
        wait_and_load(&mut subscription, &members, &committed, &ann_id, "Ann", out).await?;
    book_events.extend(committed.events);

    writeln!(out, "-- Ben asks for the same book while Ann holds it:")?;
    let lend_to_ben = lend(&book_id, &ben_id);
    let refused = match run_command(&books, &book_id, lend_to_ben, &request("ben"), out).await? {
        Ok(_) => return Err("the book lent itself to Ben while Ann held it".into()),
        Err(error) => error,
    };
    writeln!(
        out,
        "    the Book aggregate refused it on its own: one copy, one borrower; nothing was \
         appended, so no member event follows"
    )?;

    writeln!(out, "-- Ann returns Dune:")?;
    let give_back = BookCommand::Return {
        book_id: book_id.clone(),
        member_id: ann_id.clone(),
    };
    let committed =
        accepted(run_command(&books, &book_id, give_back, &request("ann"), out).await?)?;
    let ann_after_return =
        wait_and_load(&mut subscription, &members, &committed, &ann_id, "Ann", out).await?;
    book_events.extend(committed.events);

    writeln!(out, "-- Ben borrows Dune now that it is back on the shelf:")?;
    let lend_to_ben = lend(&book_id, &ben_id);
    let committed =
        accepted(run_command(&books, &book_id, lend_to_ben, &request("ben"), out).await?)?;
    let ben_at_end =
        wait_and_load(&mut subscription, &members, &committed, &ben_id, "Ben", out).await?;
    book_events.extend(committed.events);

    writeln!(out, "-- read model, the members' lists:")?;
    let ann_now = members.load(&ann_id).await?;
    writeln!(out, "    Member-{ann_id}: {}", ann_now.state)?;
    writeln!(out, "    Member-{ben_id}: {ben_at_end}")?;

    writeln!(
        out,
        "-- member events as stored; each loan event's causation id is the id of the Book \
         event the subscription reacted to, and its correlation id is that request's:"
    )?;
    let mut member_events = Vec::new();
    for member_id in [&ann_id, &ben_id] {
        member_events.extend(
            store
                .read_stream(&stream_id::<Member>(member_id), 0, PAGE)
                .await?,
        );
    }
    print_member_events(out, &member_events, &book_events)?;

    subscription.stop().await?;
    let final_checkpoint = store.load_checkpoint(SUBSCRIPTION).await?;
    writeln!(
        out,
        "-- stopped subscription {SUBSCRIPTION:?}; its checkpoint in the store: \
         {final_checkpoint} (last book event at position {})",
        book_events.last().map_or(0, |event| event.position),
    )?;
    writeln!(out)?;

    Ok(LibraryDemo {
        book_id,
        ann_id,
        ben_id,
        tag,
        refused,
        ann_after_borrow,
        ann_after_return,
        ben_at_end,
        book_events,
        member_events,
        start_checkpoint,
        final_checkpoint,
    })
}

fn lend(book_id: &str, member_id: &str) -> BookCommand {
    BookCommand::LendOut {
        book_id: book_id.to_owned(),
        member_id: member_id.to_owned(),
    }
}

/// A command the story expects to be accepted; a refusal there is a failure of the demo.
fn accepted<E, R>(outcome: Result<Committed<E>, R>) -> Result<Committed<E>, DemoError>
where
    R: std::error::Error + Send + Sync + 'static,
{
    Ok(outcome?)
}

/// Waits until the subscription has handled the book's commit, then loads the member and
/// prints their list as the subscription left it.
async fn wait_and_load<S: EventStore>(
    subscription: &mut RunningSubscription,
    members: &Repository<Member, S>,
    committed: &Committed<BookEvent>,
    member_id: &str,
    name: &str,
    out: Output<'_>,
) -> Result<Member, DemoError> {
    let event = committed
        .events
        .last()
        .ok_or("the book command committed no event")?;
    let position = event.position;
    writeln!(
        out,
        "    the Book transaction is committed ({} event_id={}); waiting for \
         {SUBSCRIPTION:?} to handle position {position}...",
        event.event.event_type(),
        event.event_id,
    )?;
    subscription.wait_for(position).await?;
    let member = members.load(member_id).await?;
    writeln!(
        out,
        "    {name}'s list, updated by the subscription after the book's commit, in its own \
         transaction: Member-{member_id} version={} {}",
        member.version, member.state
    )?;
    Ok(member.state)
}

/// Prints each member event with its correlation and causation ids, naming the book event
/// its causation id points to.
fn print_member_events(
    out: Output<'_>,
    events: &[RecordedEvent],
    book_events: &[EventEnvelope<BookEvent>],
) -> std::io::Result<()> {
    for event in events {
        writeln!(
            out,
            "    {} version={} position={} {}",
            event.stream_id, event.version, event.position, event.event_type
        )?;
        let cause = event.metadata.causation_id.map_or_else(
            || "none (a direct command)".to_owned(),
            |id| match book_events.iter().find(|book| book.event_id == id) {
                Some(book) => format!(
                    "{id} = {} version={} {}",
                    book.stream_id,
                    book.version,
                    book.event.event_type()
                ),
                None => format!("{id} (not a book event of this session)"),
            },
        );
        let user = event
            .metadata
            .get(USER_KEY)
            .and_then(|v| v.as_str())
            .unwrap_or("-");
        writeln!(
            out,
            "        correlation_id={} {USER_KEY}={user} causation_id={cause}",
            describe(event.metadata.correlation_id),
        )?;
    }
    Ok(())
}
