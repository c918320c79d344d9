//! Given/when/then: every rule of the library (book, member) and of onboarding (user, task),
//! accepted and refused, and redeliveries of a subscription that record nothing.

use cqrs_core::testing::properties::check_event_round_trip;
use cqrs_core::testing::AggregateFixture;
use cqrs_core::{Aggregate, DomainEvent};
use std::fmt::Debug;

/// Every event must survive the store's codec unchanged.
fn assert_round_trips<E: DomainEvent + PartialEq + Debug>(events: &[E]) {
    for event in events {
        if let Err(error) = check_event_round_trip(event) {
            panic!("{event:?} did not round-trip: {error}");
        }
    }
}

mod book {
    use super::*;
    use cqrs_examples::library::{Book, BookCommand, BookError, BookEvent};

    fn added() -> BookEvent {
        BookEvent::BookAdded {
            book_id: "b1".into(),
            title: "Dune".into(),
        }
    }

    fn lent_to(member_id: &str) -> BookEvent {
        BookEvent::BookLentOut {
            book_id: "b1".into(),
            member_id: member_id.into(),
        }
    }

    fn returned_by(member_id: &str) -> BookEvent {
        BookEvent::BookReturned {
            book_id: "b1".into(),
            member_id: member_id.into(),
        }
    }

    fn add() -> BookCommand {
        BookCommand::AddBook {
            book_id: "b1".into(),
            title: "Dune".into(),
        }
    }

    fn lend_to(member_id: &str) -> BookCommand {
        BookCommand::LendOut {
            book_id: "b1".into(),
            member_id: member_id.into(),
        }
    }

    fn return_by(member_id: &str) -> BookCommand {
        BookCommand::Return {
            book_id: "b1".into(),
            member_id: member_id.into(),
        }
    }

    #[test]
    fn adding_a_book_records_it() {
        AggregateFixture::<Book>::given_no_previous_events()
            .when(add())
            .then_expect_events(vec![added()]);
    }

    #[test]
    fn adding_a_book_twice_is_refused() {
        AggregateFixture::<Book>::given([added()])
            .when(add())
            .then_expect_error(BookError::AlreadyAdded {
                book_id: "b1".into(),
            });
    }

    #[test]
    fn lending_a_book_on_the_shelf_records_the_borrower() {
        AggregateFixture::<Book>::given([added()])
            .when(lend_to("alice"))
            .then_expect_events(vec![lent_to("alice")]);
    }

    #[test]
    fn lending_a_returned_book_again_is_accepted() {
        AggregateFixture::<Book>::given([added(), lent_to("alice"), returned_by("alice")])
            .when(lend_to("bob"))
            .then_expect_events(vec![lent_to("bob")]);
    }

    #[test]
    fn lending_a_book_not_in_the_catalogue_is_refused() {
        AggregateFixture::<Book>::given_no_previous_events()
            .when(lend_to("alice"))
            .then_expect_error(BookError::NotAdded {
                book_id: "b1".into(),
            });
    }

    #[test]
    fn a_second_borrower_is_refused_naming_the_holder() {
        AggregateFixture::<Book>::given([added(), lent_to("alice")])
            .when(lend_to("bob"))
            .then_expect_error(BookError::AlreadyLent {
                book_id: "b1".into(),
                holder: "alice".into(),
            });
    }

    #[test]
    fn the_holder_cannot_borrow_the_book_twice() {
        AggregateFixture::<Book>::given([added(), lent_to("alice")])
            .when(lend_to("alice"))
            .then_expect_error(BookError::AlreadyLent {
                book_id: "b1".into(),
                holder: "alice".into(),
            });
    }

    #[test]
    fn the_holder_returning_the_book_records_it() {
        AggregateFixture::<Book>::given([added(), lent_to("alice")])
            .when(return_by("alice"))
            .then_expect_events(vec![returned_by("alice")]);
    }

    #[test]
    fn returning_by_another_member_is_refused_naming_both() {
        AggregateFixture::<Book>::given([added(), lent_to("alice")])
            .when(return_by("bob"))
            .then_expect_error(BookError::NotTheHolder {
                book_id: "b1".into(),
                member_id: "bob".into(),
                holder: "alice".into(),
            });
    }

    #[test]
    fn returning_a_book_on_the_shelf_is_refused() {
        AggregateFixture::<Book>::given([added()])
            .when(return_by("alice"))
            .then_expect_error(BookError::NotLent {
                book_id: "b1".into(),
            });
        AggregateFixture::<Book>::given([added(), lent_to("alice"), returned_by("alice")])
            .when(return_by("alice"))
            .then_expect_error(BookError::NotLent {
                book_id: "b1".into(),
            });
    }

    #[test]
    fn returning_a_book_not_in_the_catalogue_is_refused() {
        AggregateFixture::<Book>::given_no_previous_events()
            .when(return_by("alice"))
            .then_expect_error(BookError::NotAdded {
                book_id: "b1".into(),
            });
    }

    #[test]
    fn the_book_shows_its_title_and_holder() {
        let mut book = Book::default();
        assert_eq!(book.to_string(), "not added");
        for event in [added(), lent_to("alice")] {
            book.apply(&event);
        }
        assert_eq!((book.title(), book.holder()), ("Dune", Some("alice")));
        assert_eq!(book.to_string(), "\"Dune\" lent to alice");
    }

    #[test]
    fn every_book_event_round_trips() {
        assert_round_trips(&[added(), lent_to("alice"), returned_by("alice")]);
    }
}

mod member {
    use super::*;
    use cqrs_examples::library::{Member, MemberCommand, MemberError, MemberEvent};

    fn registered() -> MemberEvent {
        MemberEvent::MemberRegistered {
            member_id: "alice".into(),
            name: "Alice".into(),
        }
    }

    fn loan_recorded(book_id: &str) -> MemberEvent {
        MemberEvent::LoanRecorded {
            member_id: "alice".into(),
            book_id: book_id.into(),
        }
    }

    fn loan_ended(book_id: &str) -> MemberEvent {
        MemberEvent::LoanEnded {
            member_id: "alice".into(),
            book_id: book_id.into(),
        }
    }

    fn register() -> MemberCommand {
        MemberCommand::Register {
            member_id: "alice".into(),
            name: "Alice".into(),
        }
    }

    fn record_loan(book_id: &str) -> MemberCommand {
        MemberCommand::RecordLoan {
            member_id: "alice".into(),
            book_id: book_id.into(),
        }
    }

    fn end_loan(book_id: &str) -> MemberCommand {
        MemberCommand::EndLoan {
            member_id: "alice".into(),
            book_id: book_id.into(),
        }
    }

    #[test]
    fn registering_records_the_member() {
        AggregateFixture::<Member>::given_no_previous_events()
            .when(register())
            .then_expect_events(vec![registered()]);
    }

    #[test]
    fn registering_twice_is_refused() {
        AggregateFixture::<Member>::given([registered()])
            .when(register())
            .then_expect_error(MemberError::AlreadyRegistered {
                member_id: "alice".into(),
            });
    }

    #[test]
    fn recording_a_new_loan_records_it() {
        AggregateFixture::<Member>::given([registered(), loan_recorded("b1")])
            .when(record_loan("b2"))
            .then_expect_events(vec![loan_recorded("b2")]);
    }

    #[test]
    fn a_redelivered_loan_records_nothing() {
        AggregateFixture::<Member>::given([registered(), loan_recorded("b1")])
            .when(record_loan("b1"))
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_book_borrowed_again_after_its_return_is_recorded_again() {
        AggregateFixture::<Member>::given([registered(), loan_recorded("b1"), loan_ended("b1")])
            .when(record_loan("b1"))
            .then_expect_events(vec![loan_recorded("b1")]);
    }

    #[test]
    fn a_loan_of_an_unregistered_member_is_refused() {
        AggregateFixture::<Member>::given_no_previous_events()
            .when(record_loan("b1"))
            .then_expect_error(MemberError::NotRegistered {
                member_id: "alice".into(),
            });
    }

    #[test]
    fn ending_a_loan_records_it() {
        AggregateFixture::<Member>::given([registered(), loan_recorded("b1")])
            .when(end_loan("b1"))
            .then_expect_events(vec![loan_ended("b1")]);
    }

    #[test]
    fn a_redelivered_return_records_nothing() {
        AggregateFixture::<Member>::given([registered(), loan_recorded("b1"), loan_ended("b1")])
            .when(end_loan("b1"))
            .then_expect_events(vec![]);
        AggregateFixture::<Member>::given([registered()])
            .when(end_loan("b1"))
            .then_expect_events(vec![]);
    }

    #[test]
    fn ending_a_loan_of_an_unregistered_member_is_refused() {
        AggregateFixture::<Member>::given_no_previous_events()
            .when(end_loan("b1"))
            .then_expect_error(MemberError::NotRegistered {
                member_id: "alice".into(),
            });
    }

    #[test]
    fn the_member_lists_the_books_they_hold() {
        let mut member = Member::default();
        let events = [
            registered(),
            loan_recorded("b1"),
            loan_recorded("b2"),
            loan_ended("b1"),
        ];
        for event in &events {
            member.apply(event);
        }
        assert_eq!(member.name(), "Alice");
        assert_eq!(
            member.borrowed().iter().collect::<Vec<_>>(),
            vec!["b2"],
            "b1 was returned"
        );
        assert_eq!(member.to_string(), "\"Alice\" borrowed={\"b2\"}");
    }

    #[test]
    fn every_member_event_round_trips() {
        assert_round_trips(&[registered(), loan_recorded("b1"), loan_ended("b1")]);
    }
}

mod user {
    use super::*;
    use cqrs_examples::onboarding::{User, UserCommand, UserError, UserEvent};

    fn created() -> UserEvent {
        UserEvent::UserCreated {
            user_id: "u1".into(),
            email: "ada@example.org".into(),
            name: "Ada".into(),
        }
    }

    fn create(email: &str) -> UserCommand {
        UserCommand::Create {
            user_id: "u1".into(),
            email: email.into(),
            name: "Ada".into(),
        }
    }

    #[test]
    fn creating_a_user_records_it() {
        AggregateFixture::<User>::given_no_previous_events()
            .when(create("ada@example.org"))
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn creating_a_user_twice_is_refused() {
        AggregateFixture::<User>::given([created()])
            .when(create("ada@example.org"))
            .then_expect_error(UserError::AlreadyCreated {
                user_id: "u1".into(),
            });
    }

    #[test]
    fn an_email_without_at_is_refused() {
        AggregateFixture::<User>::given_no_previous_events()
            .when(create("ada.example.org"))
            .then_expect_error(UserError::InvalidEmail {
                user_id: "u1".into(),
                email: "ada.example.org".into(),
            });
    }

    #[test]
    fn every_user_event_round_trips() {
        assert_round_trips(&[created()]);
    }
}

mod task {
    use super::*;
    use cqrs_examples::onboarding::{
        onboarding_task_id, Task, TaskCommand, TaskError, TaskEvent, ONBOARDING_TASKS,
    };

    fn created() -> TaskEvent {
        TaskEvent::TaskCreated {
            task_id: "u1.0".into(),
            assignee: "u1".into(),
            title: ONBOARDING_TASKS[0].into(),
        }
    }

    fn completed() -> TaskEvent {
        TaskEvent::TaskCompleted {
            task_id: "u1.0".into(),
        }
    }

    fn create(assignee: &str, title: &str) -> TaskCommand {
        TaskCommand::Create {
            task_id: "u1.0".into(),
            assignee: assignee.into(),
            title: title.into(),
        }
    }

    fn complete() -> TaskCommand {
        TaskCommand::Complete {
            task_id: "u1.0".into(),
        }
    }

    #[test]
    fn creating_a_task_records_it() {
        AggregateFixture::<Task>::given_no_previous_events()
            .when(create("u1", ONBOARDING_TASKS[0]))
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn a_redelivered_create_records_nothing() {
        AggregateFixture::<Task>::given([created()])
            .when(create("u1", ONBOARDING_TASKS[0]))
            .then_expect_events(vec![]);
        AggregateFixture::<Task>::given([created(), completed()])
            .when(create("u1", ONBOARDING_TASKS[0]))
            .then_expect_events(vec![]);
    }

    #[test]
    fn creating_an_existing_task_with_other_data_is_refused() {
        let refused = TaskError::AlreadyCreated {
            task_id: "u1.0".into(),
            assignee: "u1".into(),
            title: ONBOARDING_TASKS[0].into(),
        };
        AggregateFixture::<Task>::given([created()])
            .when(create("u2", ONBOARDING_TASKS[0]))
            .then_expect_error(refused.clone());
        AggregateFixture::<Task>::given([created()])
            .when(create("u1", ONBOARDING_TASKS[1]))
            .then_expect_error(refused);
    }

    #[test]
    fn completing_an_open_task_records_it() {
        AggregateFixture::<Task>::given([created()])
            .when(complete())
            .then_expect_events(vec![completed()]);
    }

    #[test]
    fn completing_a_missing_task_is_refused() {
        AggregateFixture::<Task>::given_no_previous_events()
            .when(complete())
            .then_expect_error(TaskError::NotCreated {
                task_id: "u1.0".into(),
            });
    }

    #[test]
    fn completing_twice_is_refused() {
        AggregateFixture::<Task>::given([created(), completed()])
            .when(complete())
            .then_expect_error(TaskError::AlreadyCompleted {
                task_id: "u1.0".into(),
            });
    }

    #[test]
    fn onboarding_task_ids_are_deterministic_distinct_and_dashless() {
        assert_eq!(onboarding_task_id("u1", 0), "u1.0");
        assert_eq!(onboarding_task_id("u1", 1), "u1.1");
        assert_eq!(onboarding_task_id("u1", 0), onboarding_task_id("u1", 0));
        assert_ne!(onboarding_task_id("u1", 1), onboarding_task_id("u11", 0));
        assert!(!onboarding_task_id("u1", 0).contains('-'));
    }

    #[test]
    fn every_task_event_round_trips() {
        assert_round_trips(&[created(), completed()]);
    }
}
