//! Given/when/then: every rule of the cart and of the order, accepted and refused.

use cqrs_core::testing::AggregateFixture;
use cqrs_examples::cart::{Cart, CartCommand, CartError, CartEvent};
use cqrs_examples::order::{Order, OrderCommand, OrderError, OrderEvent};

mod cart {
    use super::*;

    fn item_added(item_id: &str, quantity: u32, price: i64) -> CartEvent {
        CartEvent::ItemAdded {
            cart_id: "c-1".into(),
            item_id: item_id.into(),
            quantity,
            price,
        }
    }

    fn add_item(item_id: &str, quantity: u32, price: i64) -> CartCommand {
        CartCommand::AddItem {
            cart_id: "c-1".into(),
            item_id: item_id.into(),
            quantity,
            price,
        }
    }

    fn remove_item(item_id: &str) -> CartCommand {
        CartCommand::RemoveItem {
            cart_id: "c-1".into(),
            item_id: item_id.into(),
        }
    }

    fn update_quantity(item_id: &str, new_quantity: u32) -> CartCommand {
        CartCommand::UpdateQuantity {
            cart_id: "c-1".into(),
            item_id: item_id.into(),
            new_quantity,
        }
    }

    fn apply_coupon(coupon_code: &str, discount_amount: i64) -> CartCommand {
        CartCommand::ApplyCoupon {
            cart_id: "c-1".into(),
            coupon_code: coupon_code.into(),
            discount_amount,
            campaign: None,
        }
    }

    fn coupon_applied(coupon_code: &str, discount_amount: i64) -> CartEvent {
        CartEvent::CouponApplied {
            cart_id: "c-1".into(),
            coupon_code: coupon_code.into(),
            discount_amount,
            campaign: None,
        }
    }

    #[test]
    fn adding_an_item_records_it_with_the_command_data() {
        AggregateFixture::<Cart>::given_no_previous_events()
            .when(add_item("book", 2, 1250))
            .then_expect_events(vec![item_added("book", 2, 1250)]);
    }

    #[test]
    fn adding_an_item_already_in_the_cart_records_the_added_units_only() {
        AggregateFixture::<Cart>::given([item_added("book", 2, 1250)])
            .when(add_item("book", 1, 1300))
            .then_expect_events(vec![item_added("book", 1, 1300)]);
    }

    #[test]
    fn a_free_item_is_accepted() {
        AggregateFixture::<Cart>::given_no_previous_events()
            .when(add_item("sticker", 1, 0))
            .then_expect_events(vec![item_added("sticker", 1, 0)]);
    }

    #[test]
    fn adding_zero_units_is_refused() {
        AggregateFixture::<Cart>::given_no_previous_events()
            .when(add_item("book", 0, 1250))
            .then_expect_error(CartError::ZeroQuantity {
                item_id: "book".into(),
            });
    }

    #[test]
    fn a_negative_price_is_refused() {
        AggregateFixture::<Cart>::given_no_previous_events()
            .when(add_item("book", 1, -1))
            .then_expect_error(CartError::NegativePrice {
                item_id: "book".into(),
                price: -1,
            });
    }

    #[test]
    fn a_line_cannot_overflow_its_quantity() {
        AggregateFixture::<Cart>::given([item_added("book", u32::MAX - 1, 1)])
            .when(add_item("book", 2, 1))
            .then_expect_error(CartError::QuantityOverflow {
                item_id: "book".into(),
            });
        AggregateFixture::<Cart>::given([item_added("book", u32::MAX - 1, 1)])
            .when(add_item("book", 1, 1))
            .then_expect_events(vec![item_added("book", 1, 1)]);
    }

    #[test]
    fn removing_an_item_in_the_cart_records_it() {
        AggregateFixture::<Cart>::given([item_added("book", 2, 1250)])
            .when(remove_item("book"))
            .then_expect_events(vec![CartEvent::ItemRemoved {
                cart_id: "c-1".into(),
                item_id: "book".into(),
            }]);
    }

    #[test]
    fn removing_an_absent_item_is_refused() {
        AggregateFixture::<Cart>::given([item_added("book", 2, 1250)])
            .when(remove_item("pen"))
            .then_expect_error(CartError::ItemNotInCart {
                item_id: "pen".into(),
            });
    }

    #[test]
    fn removing_an_item_twice_is_refused() {
        AggregateFixture::<Cart>::given([
            item_added("book", 2, 1250),
            CartEvent::ItemRemoved {
                cart_id: "c-1".into(),
                item_id: "book".into(),
            },
        ])
        .when(remove_item("book"))
        .then_expect_error(CartError::ItemNotInCart {
            item_id: "book".into(),
        });
    }

    #[test]
    fn updating_the_quantity_of_an_item_in_the_cart_records_it() {
        AggregateFixture::<Cart>::given([item_added("book", 2, 1250)])
            .when(update_quantity("book", 5))
            .then_expect_events(vec![CartEvent::ItemQuantityUpdated {
                cart_id: "c-1".into(),
                item_id: "book".into(),
                new_quantity: 5,
            }]);
    }

    #[test]
    fn updating_an_absent_item_is_refused() {
        AggregateFixture::<Cart>::given_no_previous_events()
            .when(update_quantity("book", 5))
            .then_expect_error(CartError::ItemNotInCart {
                item_id: "book".into(),
            });
    }

    #[test]
    fn updating_to_zero_is_refused() {
        AggregateFixture::<Cart>::given([item_added("book", 2, 1250)])
            .when(update_quantity("book", 0))
            .then_expect_error(CartError::ZeroQuantity {
                item_id: "book".into(),
            });
    }

    #[test]
    fn applying_a_coupon_records_it() {
        AggregateFixture::<Cart>::given([item_added("book", 2, 1250)])
            .when(apply_coupon("WELCOME", 300))
            .then_expect_events(vec![coupon_applied("WELCOME", 300)]);
    }

    #[test]
    fn a_coupon_of_a_campaign_records_the_campaign() {
        AggregateFixture::<Cart>::given([item_added("book", 2, 1250)])
            .when(CartCommand::ApplyCoupon {
                cart_id: "c-1".into(),
                coupon_code: "WELCOME".into(),
                discount_amount: 300,
                campaign: Some("newsletter".into()),
            })
            .then_expect_events(vec![CartEvent::CouponApplied {
                cart_id: "c-1".into(),
                coupon_code: "WELCOME".into(),
                discount_amount: 300,
                campaign: Some("newsletter".into()),
            }]);
    }

    #[test]
    fn a_second_coupon_is_refused_naming_both() {
        AggregateFixture::<Cart>::given([coupon_applied("WELCOME", 300)])
            .when(apply_coupon("SPRING", 500))
            .then_expect_error(CartError::CouponAlreadyApplied {
                applied: "WELCOME".into(),
                refused: "SPRING".into(),
            });
    }

    #[test]
    fn a_negative_discount_is_refused() {
        AggregateFixture::<Cart>::given_no_previous_events()
            .when(apply_coupon("WELCOME", -5))
            .then_expect_error(CartError::NegativeDiscount {
                coupon_code: "WELCOME".into(),
                discount_amount: -5,
            });
    }

    #[test]
    fn an_empty_coupon_code_is_refused() {
        AggregateFixture::<Cart>::given_no_previous_events()
            .when(apply_coupon("", 100))
            .then_expect_error(CartError::EmptyCouponCode);
    }
}

mod order {
    use super::*;

    fn placed() -> OrderEvent {
        OrderEvent::OrderPlaced {
            order_id: "o-1".into(),
            customer_id: "customer-7".into(),
            total_cents: 4200,
        }
    }

    fn completed() -> OrderEvent {
        OrderEvent::OrderCompleted {
            order_id: "o-1".into(),
        }
    }

    fn cancelled() -> OrderEvent {
        OrderEvent::OrderCancelled {
            order_id: "o-1".into(),
            reason: "out of stock".into(),
        }
    }

    fn place(total_cents: i64) -> OrderCommand {
        OrderCommand::Place {
            order_id: "o-1".into(),
            customer_id: "customer-7".into(),
            total_cents,
        }
    }

    fn complete() -> OrderCommand {
        OrderCommand::Complete {
            order_id: "o-1".into(),
        }
    }

    fn cancel(reason: &str) -> OrderCommand {
        OrderCommand::Cancel {
            order_id: "o-1".into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn placing_a_new_order_records_it() {
        AggregateFixture::<Order>::given_no_previous_events()
            .when(place(4200))
            .then_expect_events(vec![placed()]);
    }

    #[test]
    fn placing_twice_is_refused() {
        AggregateFixture::<Order>::given([placed()])
            .when(place(4200))
            .then_expect_error(OrderError::AlreadyPlaced);
        AggregateFixture::<Order>::given([placed(), completed()])
            .when(place(4200))
            .then_expect_error(OrderError::AlreadyPlaced);
    }

    #[test]
    fn a_negative_total_is_refused() {
        AggregateFixture::<Order>::given_no_previous_events()
            .when(place(-1))
            .then_expect_error(OrderError::NegativeTotal(-1));
    }

    #[test]
    fn completing_a_placed_order_records_it() {
        AggregateFixture::<Order>::given([placed()])
            .when(complete())
            .then_expect_events(vec![completed()]);
    }

    #[test]
    fn completing_an_unplaced_order_is_refused() {
        AggregateFixture::<Order>::given_no_previous_events()
            .when(complete())
            .then_expect_error(OrderError::NotPlaced);
    }

    #[test]
    fn completing_a_cancelled_order_is_refused() {
        AggregateFixture::<Order>::given([placed(), cancelled()])
            .when(complete())
            .then_expect_error(OrderError::AlreadyCancelled);
    }

    #[test]
    fn completing_twice_is_refused() {
        AggregateFixture::<Order>::given([placed(), completed()])
            .when(complete())
            .then_expect_error(OrderError::AlreadyCompleted);
    }

    #[test]
    fn cancelling_a_placed_order_records_the_reason() {
        AggregateFixture::<Order>::given([placed()])
            .when(cancel("out of stock"))
            .then_expect_events(vec![cancelled()]);
    }

    #[test]
    fn cancelling_a_completed_order_is_refused() {
        AggregateFixture::<Order>::given([placed(), completed()])
            .when(cancel("too late"))
            .then_expect_error(OrderError::AlreadyCompleted);
    }

    #[test]
    fn cancelling_an_unplaced_order_is_refused() {
        AggregateFixture::<Order>::given_no_previous_events()
            .when(cancel("never mind"))
            .then_expect_error(OrderError::NotPlaced);
    }

    #[test]
    fn cancelling_twice_is_refused() {
        AggregateFixture::<Order>::given([placed(), cancelled()])
            .when(cancel("again"))
            .then_expect_error(OrderError::AlreadyCancelled);
    }

    #[test]
    fn cancelling_without_a_reason_is_refused() {
        AggregateFixture::<Order>::given([placed()])
            .when(cancel("  "))
            .then_expect_error(OrderError::MissingReason);
    }
}
