//! The library lending demo on SQLite files, checked on what it reports: the refusal by
//! the `Book` aggregate, the members' lists as the subscription left them, the causation
//! chain from each book event to the member event it caused, and the subscription's
//! checkpoint, also across two runs on the same file.

use cqrs_core::codec::decode;
use cqrs_core::{stream_id, EventEnvelope, RecordedEvent, Upcasters};
use cqrs_examples::demo::library::{LibraryDemo, LIBRARIAN, SUBSCRIPTION};
use cqrs_examples::demo::{self, USER_KEY};
use cqrs_examples::library::{BookError, BookEvent, Member, MemberEvent};
use cqrs_sqlite::SqliteStore;
use std::collections::BTreeSet;
use std::path::Path;

/// Runs the demo on the SQLite file at `path`, returning its report and what it printed.
async fn run_on(path: &Path) -> (LibraryDemo, String) {
    let store = SqliteStore::open(path).await.expect("open library.db");
    let mut out = Vec::new();
    let report = demo::library::run(store, &mut out)
        .await
        .expect("library demo");
    (report, String::from_utf8(out).expect("utf-8 output"))
}

fn only(book_id: &str) -> BTreeSet<String> {
    BTreeSet::from([book_id.to_owned()])
}

fn member_event(recorded: &RecordedEvent) -> MemberEvent {
    decode(recorded, &Upcasters::new()).expect("a member event")
}

/// The book event that should have caused `event`: the lending for a recorded loan, the
/// return for an ended one, of the same member and book; `None` for a registration.
fn cause<'a>(
    event: &MemberEvent,
    book_events: &'a [EventEnvelope<BookEvent>],
) -> Option<&'a EventEnvelope<BookEvent>> {
    let matches = |book: &&EventEnvelope<BookEvent>| match (event, &book.event) {
        (
            MemberEvent::LoanRecorded { member_id, book_id },
            BookEvent::BookLentOut {
                member_id: borrower,
                book_id: lent,
            },
        )
        | (
            MemberEvent::LoanEnded { member_id, book_id },
            BookEvent::BookReturned {
                member_id: borrower,
                book_id: lent,
            },
        ) => member_id == borrower && book_id == lent,
        _ => false,
    };
    let found: Vec<_> = book_events.iter().filter(matches).collect();
    assert!(found.len() <= 1, "ambiguous cause for {event:?}: {found:?}");
    found.into_iter().next()
}

/// Everything one run must show, whatever else is in its database.
fn check(report: &LibraryDemo, output: &str) {
    let LibraryDemo {
        book_id,
        ann_id,
        ben_id,
        ..
    } = report;
    for id in [book_id, ann_id, ben_id] {
        assert!(id.starts_with(&report.tag), "{id} is tagged for the run");
    }

    assert_eq!(
        report.refused,
        BookError::AlreadyLent {
            book_id: book_id.clone(),
            holder: ann_id.clone(),
        }
    );

    assert_eq!(report.ann_after_borrow.borrowed(), &only(book_id));
    assert!(report.ann_after_return.borrowed().is_empty());
    assert_eq!(report.ben_at_end.borrowed(), &only(book_id));
    assert_eq!(report.ben_at_end.name(), "Ben");

    let lent = |member_id: &String| BookEvent::BookLentOut {
        book_id: book_id.clone(),
        member_id: member_id.clone(),
    };
    let book: Vec<_> = report.book_events.iter().map(|e| e.event.clone()).collect();
    assert_eq!(
        book,
        [
            BookEvent::BookAdded {
                book_id: book_id.clone(),
                title: "Dune".into()
            },
            lent(ann_id),
            BookEvent::BookReturned {
                book_id: book_id.clone(),
                member_id: ann_id.clone(),
            },
            lent(ben_id),
        ],
        "the refused lending to Ben appended nothing"
    );
    let book_stream = stream_id::<cqrs_examples::library::Book>(book_id);
    assert!(report
        .book_events
        .iter()
        .all(|e| e.stream_id == book_stream));

    let streams: BTreeSet<_> = report
        .member_events
        .iter()
        .map(|e| e.stream_id.clone())
        .collect();
    assert_eq!(
        streams,
        BTreeSet::from([stream_id::<Member>(ann_id), stream_id::<Member>(ben_id)])
    );
    let types: Vec<_> = report
        .member_events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "MemberRegistered",
            "LoanRecorded",
            "LoanEnded",
            "MemberRegistered",
            "LoanRecorded"
        ]
    );

    let mut caused = 0;
    for recorded in &report.member_events {
        let event = member_event(recorded);
        match cause(&event, &report.book_events) {
            Some(book) => {
                caused += 1;
                assert_eq!(
                    recorded.metadata.causation_id,
                    Some(book.event_id),
                    "{event:?} is caused by {book:?}"
                );
                assert!(book.metadata.correlation_id.is_some());
                assert_eq!(
                    recorded.metadata.correlation_id, book.metadata.correlation_id,
                    "{event:?} carries on the correlation id of {book:?}"
                );
                assert_eq!(
                    recorded.metadata.get(USER_KEY),
                    book.metadata.get(USER_KEY),
                    "{event:?} carries on the keys of {book:?}"
                );
                assert!(
                    recorded.position > book.position,
                    "{event:?} was appended after {book:?}, in a transaction of its own"
                );
            }
            None => {
                assert!(
                    matches!(event, MemberEvent::MemberRegistered { .. }),
                    "{event:?} has no book event behind it"
                );
                assert_eq!(recorded.metadata.causation_id, None);
                assert_eq!(recorded.metadata.get(USER_KEY), Some(&LIBRARIAN.into()));
            }
        }
    }
    assert_eq!(caused, 3, "every lending and return reached a member");

    // Each request had a correlation id of its own.
    let correlations: BTreeSet<_> = report
        .book_events
        .iter()
        .map(|e| e.metadata.correlation_id)
        .collect();
    assert_eq!(correlations.len(), report.book_events.len());

    let last_book = report.book_events.last().expect("book events").position;
    assert!(
        report.final_checkpoint >= last_book,
        "checkpoint {} is past the last book event {last_book}",
        report.final_checkpoint
    );
    assert!(report.final_checkpoint >= report.start_checkpoint);

    for expected in [
        "started subscription \"member-loans\"",
        "refused: AlreadyLent",
        "updated by the subscription after the book's commit, in its own transaction",
        "causation_id=",
        "stopped subscription \"member-loans\"",
    ] {
        assert!(output.contains(expected), "{expected:?} in:\n{output}");
    }
    assert_eq!(SUBSCRIPTION, "member-loans");
}

#[tokio::test]
async fn the_library_story_keeps_members_in_step_through_the_subscription() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (report, output) = run_on(&dir.path().join("library.db")).await;
    check(&report, &output);
    assert_eq!(report.start_checkpoint, 0, "a new file has no checkpoint");
}

#[tokio::test]
async fn the_demo_runs_twice_on_the_same_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("library.db");
    let (first, output) = run_on(&path).await;
    check(&first, &output);
    let (second, output) = run_on(&path).await;
    check(&second, &output);

    assert_ne!(first.tag, second.tag);
    assert_ne!(first.book_id, second.book_id);
    assert_ne!(first.ann_id, second.ann_id);
    assert_ne!(first.ben_id, second.ben_id);
    assert_eq!(
        second.start_checkpoint, first.final_checkpoint,
        "the subscription resumes from the checkpoint the first run stored"
    );
    assert!(
        second.book_events[0].position > first.book_events[3].position,
        "the second run appends to the same log"
    );
    assert_eq!(
        second.ann_after_borrow.borrowed(),
        &only(&second.book_id),
        "the first run's book is not on the second run's Ann"
    );
}
