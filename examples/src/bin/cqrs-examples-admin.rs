//! `cqrs-examples-admin`: the `cqrs` command line with the examples' aggregates (the cart's
//! upcasters with it), the order read model and the library's subscription registered, so
//! that `verify --decode` decodes every example event and `rebuild` knows their consumers.
//! What an application's own admin binary looks like.

use cqrs_cli::App;
use cqrs_core::HandlerConsumer;
use cqrs_core::Subscription;
use cqrs_examples::bank::{Account, Transfer};
use cqrs_examples::cart::{upcasters, Cart};
use cqrs_examples::demo::library::{MemberLoans, SUBSCRIPTION as MEMBER_LOANS};
use cqrs_examples::demo::read_models::OrderReadModels;
use cqrs_examples::library::{Book, Member};
use cqrs_examples::onboarding::{Task, User};
use cqrs_examples::order::Order;

fn main() -> std::process::ExitCode {
    App::new("cqrs-examples-admin")
        .aggregate_with_upcasters::<Cart>(upcasters())
        .aggregate::<Order>()
        .aggregate::<Book>()
        .aggregate::<Member>()
        .aggregate::<User>()
        .aggregate::<Task>()
        .aggregate::<Account>()
        .aggregate::<Transfer>()
        .projection("order_read_models", OrderReadModels::default)
        .subscription(MEMBER_LOANS, |store| async move {
            let consumer = HandlerConsumer::new(MemberLoans::new(store.clone()), store.clone());
            Ok(Subscription::new(MEMBER_LOANS, store, consumer))
        })
        .main()
}
