//! The cart story: run commands, see a refusal, reload in a fresh repository, find the
//! metadata on every event, and read a cart written by an older release through upcasters.

use super::{print_stored, run_command, session_tag, DemoError, Output, USER_KEY};
use crate::cart::{self, Cart, CartCommand, CartError, CartEvent};
use cqrs_core::codec::decode;
use cqrs_core::stream_id;
use cqrs_core::{
    Aggregate, EventEnvelope, EventStore, ExpectedVersion, Loaded, Metadata, NewEvent,
    RecordedEvent, Repository, RepositoryError,
};
use serde_json::{json, Value};
use uuid::Uuid;

/// The value of [`USER_KEY`] on the demo's commands.
pub const USER: &str = "alice";

/// Enough for any stream the demo writes.
const READ_LIMIT: usize = 1000;

/// What the cart demo did, for the caller to check or show.
#[derive(Debug)]
pub struct CartDemo {
    /// The cart the commands ran on (`alice-<session tag>`).
    pub cart_id: String,
    /// The correlation id every command of the session carried.
    pub correlation_id: Uuid,
    /// Every committed event, in order.
    pub committed: Vec<EventEnvelope<CartEvent>>,
    /// The state folded from the committed events, as the session saw it.
    pub state: Cart,
    /// The refused commands' errors, in order.
    pub refused: Vec<CartError>,
    /// The cart as a fresh repository rebuilds it from the store.
    pub reloaded: Loaded<Cart>,
    /// The cart's stream read back from the store, with metadata.
    pub stored: Vec<RecordedEvent>,
    /// The old-schema part of the story.
    pub legacy: LegacyCart,
}

/// A cart written by an older release, read back with and without the upcaster chain.
#[derive(Debug)]
pub struct LegacyCart {
    /// Its id (`legacy-<session tag>`).
    pub cart_id: String,
    /// The rows as the old release wrote them.
    pub stored: Vec<RecordedEvent>,
    /// Those rows decoded through [`cart::upcasters`].
    pub upcast: Vec<CartEvent>,
    /// The cart rebuilt by a repository with the upcasters.
    pub loaded: Loaded<Cart>,
    /// What a repository without upcasters reports on the same stream.
    pub without_upcasters: RepositoryError<CartError>,
}

/// Runs the cart story on `store`, printing each step to `out`.
pub async fn run<S: EventStore + Clone>(store: S, out: Output<'_>) -> Result<CartDemo, DemoError> {
    let correlation_id = Uuid::new_v4();
    let tag = session_tag(correlation_id);
    let cart_id = format!("alice-{tag}");
    let metadata = Metadata::new()
        .with_correlation_id(correlation_id)
        .with(USER_KEY, USER);
    writeln!(
        out,
        "== Cart demo: cart {cart_id}, correlation_id={correlation_id}, {USER_KEY}={USER}"
    )?;

    let repository = Repository::<Cart, S>::new(store.clone());
    let commands = commands(&cart_id);
    let mut state = Cart::default();
    let mut committed = Vec::new();
    let mut refused = Vec::new();
    for command in commands {
        match run_command(&repository, &cart_id, command, &metadata, &mut *out).await? {
            Ok(done) => {
                for envelope in done.events {
                    state.apply(&envelope.event);
                    committed.push(envelope);
                }
                writeln!(out, "    state: {state}")?;
            }
            Err(error) => refused.push(error),
        }
    }

    let reloaded = Repository::<Cart, S>::new(store.clone())
        .load(&cart_id)
        .await?;
    writeln!(
        out,
        "-- reloaded in a fresh repository: version={} {}; same as before: {}",
        reloaded.version,
        reloaded.state,
        reloaded.state == state
    )?;

    let stored = store
        .read_stream(&stream_id::<Cart>(&cart_id), 1, READ_LIMIT)
        .await?;
    writeln!(out, "-- metadata on every stored event:")?;
    print_stored(out, &stored)?;

    let legacy = legacy_story(store, &tag, out).await?;
    writeln!(out)?;
    Ok(CartDemo {
        cart_id,
        correlation_id,
        committed,
        state,
        refused,
        reloaded,
        stored,
        legacy,
    })
}

/// The session's commands: five that succeed, interleaved with three the cart refuses.
fn commands(cart_id: &str) -> Vec<CartCommand> {
    let cart_id = cart_id.to_owned();
    let add = |item_id: &str, quantity, price| CartCommand::AddItem {
        cart_id: cart_id.clone(),
        item_id: item_id.to_owned(),
        quantity,
        price,
    };
    let coupon =
        |coupon_code: &str, discount_amount, campaign: Option<&str>| CartCommand::ApplyCoupon {
            cart_id: cart_id.clone(),
            coupon_code: coupon_code.to_owned(),
            discount_amount,
            campaign: campaign.map(str::to_owned),
        };
    vec![
        add("book", 2, 1250),
        add("pen", 3, 199),
        add("mug", 0, 800),
        CartCommand::UpdateQuantity {
            cart_id: cart_id.clone(),
            item_id: "book".to_owned(),
            new_quantity: 1,
        },
        coupon("WELCOME", 300, Some("newsletter")),
        coupon("SPRING", 500, None),
        CartCommand::RemoveItem {
            cart_id: cart_id.clone(),
            item_id: "pen".to_owned(),
        },
        CartCommand::RemoveItem {
            cart_id: cart_id.clone(),
            item_id: "pen".to_owned(),
        },
    ]
}

/// Writes a cart the way the first releases did, then reads it without and with upcasters.
async fn legacy_story<S: EventStore + Clone>(
    store: S,
    tag: &str,
    out: Output<'_>,
) -> Result<LegacyCart, DemoError> {
    let cart_id = format!("legacy-{tag}");
    let rows = [
        // Schema 1: price in whole currency units.
        (
            "ProductAdded",
            1,
            json!({ "cart_id": cart_id, "sku": "sku-42", "qty": 2, "unit_price": 19 }),
        ),
        // Schema 2: price in cents, old names still.
        (
            "ProductAdded",
            2,
            json!({ "cart_id": cart_id, "sku": "sku-7", "qty": 1, "price": 450 }),
        ),
        // Already the current schema: read as stored.
        (
            "ItemQuantityUpdated",
            1,
            json!({ "cart_id": cart_id, "item_id": "sku-42", "new_quantity": 3 }),
        ),
        // Written before coupons had a campaign: the weak schema reads it as `None`.
        (
            "CouponApplied",
            1,
            json!({ "cart_id": cart_id, "coupon_code": "LOYAL", "discount_amount": 500 }),
        ),
    ];
    let new_events = rows
        .into_iter()
        .map(
            |(event_type, schema_version, payload): (&str, u32, Value)| NewEvent {
                event_id: Uuid::new_v4(),
                event_type: event_type.to_owned(),
                schema_version,
                payload: payload.to_string(),
                metadata: Metadata::new(),
            },
        )
        .collect();
    let stream = stream_id::<Cart>(&cart_id);
    let appended = store
        .append(&stream, ExpectedVersion::NoStream, new_events)
        .await?;
    writeln!(out, "-- old-schema rows written for cart {cart_id}:")?;
    for row in &appended.events {
        writeln!(
            out,
            "    version={} {} schema={} {}",
            row.version, row.event_type, row.schema_version, row.payload
        )?;
    }

    let without_upcasters = match Repository::<Cart, S>::new(store.clone())
        .load(&cart_id)
        .await
    {
        Err(error @ RepositoryError::Decode(_)) => error,
        Err(other) => return Err(other.into()),
        Ok(loaded) => {
            return Err(format!("old rows decoded without upcasters: {loaded:?}").into());
        }
    };
    writeln!(out, "    without upcasters: {without_upcasters}")?;

    let repository = Repository::<Cart, S>::new(store.clone()).with_upcasters(cart::upcasters());
    let stored = store.read_stream(&stream, 1, READ_LIMIT).await?;
    let upcast = stored
        .iter()
        .map(|row| decode::<CartEvent>(row, repository.upcasters()))
        .collect::<Result<Vec<_>, _>>()?;
    writeln!(out, "    through the upcaster chain:")?;
    for event in &upcast {
        writeln!(out, "      {event:?}")?;
    }
    let loaded = repository.load(&cart_id).await?;
    writeln!(
        out,
        "    loaded: version={} {}",
        loaded.version, loaded.state
    )?;
    Ok(LegacyCart {
        cart_id,
        stored,
        upcast,
        loaded,
        without_upcasters,
    })
}
