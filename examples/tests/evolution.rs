//! Schema evolution end to end: rows in the formats of older releases are written straight
//! into a SQLite file with plain SQL, as those releases left them, and today's code loads
//! them through `cart::upcasters()` and the weak schema, refuses them clearly without the
//! chain or when a row is damaged, and appends after them.

use cqrs_core::codec::{self, decode};
use cqrs_core::stream_id;
use cqrs_core::{DecodeCause, EventStore, Metadata, Repository, RepositoryError};
use cqrs_examples::cart::{self, Cart, CartCommand, CartEvent, Line};
use cqrs_sqlite::SqliteStore;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use tempfile::TempDir;
use uuid::Uuid;

/// A SQLite file whose schema `SqliteStore::open` created, and the store on it.
struct Db {
    _dir: TempDir,
    path: PathBuf,
    store: SqliteStore,
}

async fn open_db() -> Db {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("carts.db");
    let store = SqliteStore::open(&path)
        .await
        .expect("open creates the schema");
    Db {
        _dir: dir,
        path,
        store,
    }
}

impl Db {
    /// A repository reading through the cart's upcaster chain, as the application does.
    fn carts(&self) -> Repository<Cart, SqliteStore> {
        Repository::new(self.store.clone()).with_upcasters(cart::upcasters())
    }

    /// A repository that knows no upcaster: what an application that forgot them sees.
    fn carts_without_upcasters(&self) -> Repository<Cart, SqliteStore> {
        Repository::new(self.store.clone())
    }
}

/// An old row: event type, schema version, payload exactly as stored.
type Row<'a> = (&'a str, u32, String);

/// Inserts `rows` at the end of cart `cart_id`'s stream with plain SQL, the way an older
/// release wrote them: a fresh random 16-byte event id, `{}` metadata, `recorded_at` in
/// microseconds since the epoch.
fn write_rows(path: &Path, cart_id: &str, rows: &[Row<'_>]) {
    let mut conn = rusqlite::Connection::open(path).expect("open the file with rusqlite");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    let tx = conn.transaction().expect("begin");
    let stream = stream_id::<Cart>(cart_id);
    let last: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = ?1",
            [&stream],
            |row| row.get(0),
        )
        .expect("current version");
    for (offset, (event_type, schema_version, payload)) in rows.iter().enumerate() {
        let micros = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("after the epoch")
                .as_micros(),
        )
        .expect("microseconds since the epoch fit in i64");
        tx.execute(
            "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, \
             payload, metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, '{}', ?7)",
            rusqlite::params![
                stream,
                last + 1 + i64::try_from(offset).expect("a small offset"),
                Uuid::new_v4().as_bytes().as_slice(),
                event_type,
                schema_version,
                payload,
                micros,
            ],
        )
        .expect("insert an old row");
    }
    tx.commit().expect("commit");
}

/// The stream's rows as stored: (version, event type, schema version, payload).
fn stored_rows(path: &Path, cart_id: &str) -> Vec<(i64, String, u32, String)> {
    let conn = rusqlite::Connection::open(path).expect("open the file with rusqlite");
    let mut statement = conn
        .prepare(
            "SELECT version, event_type, schema_version, payload FROM events \
             WHERE stream_id = ?1 ORDER BY version",
        )
        .expect("prepare");
    let rows = statement
        .query_map([stream_id::<Cart>(cart_id)], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    rows
}

fn product_added_v1(cart_id: &str, sku: &str, qty: u32, unit_price: i64) -> Row<'static> {
    let payload = json!({ "cart_id": cart_id, "sku": sku, "qty": qty, "unit_price": unit_price });
    ("ProductAdded", 1, payload.to_string())
}

fn product_added_v2(cart_id: &str, sku: &str, qty: u32, price: i64) -> Row<'static> {
    let payload = json!({ "cart_id": cart_id, "sku": sku, "qty": qty, "price": price });
    ("ProductAdded", 2, payload.to_string())
}

fn item_added_v3(cart_id: &str, item_id: &str, quantity: u32, price: i64) -> Row<'static> {
    let payload =
        json!({ "cart_id": cart_id, "item_id": item_id, "quantity": quantity, "price": price });
    ("ItemAdded", 3, payload.to_string())
}

fn row(event_type: &'static str, payload: Value) -> Row<'static> {
    (event_type, 1, payload.to_string())
}

fn lines(entries: &[(&str, u32, i64)]) -> Vec<(String, Line)> {
    entries
        .iter()
        .map(|&(item_id, quantity, price)| (item_id.to_owned(), Line { quantity, price }))
        .collect()
}

fn lines_of(cart: &Cart) -> Vec<(String, Line)> {
    cart.lines()
        .iter()
        .map(|(item_id, line)| (item_id.clone(), *line))
        .collect()
}

/// The text an older release stored for a coupon: no `campaign`, fields in serde's order.
const OLD_COUPON: &str =
    r#"{"cart_id":"old-coupon","coupon_code":"SAVE10","discount_amount":1000}"#;

#[tokio::test]
async fn a_coupon_stored_without_campaign_reads_as_none_and_one_with_a_campaign_keeps_it() {
    let db = open_db().await;
    write_rows(
        &db.path,
        "old-coupon",
        &[
            item_added_v3("old-coupon", "tea", 2, 1500),
            ("CouponApplied", 1, OLD_COUPON.to_owned()),
        ],
    );
    write_rows(
        &db.path,
        "new-coupon",
        &[
            item_added_v3("new-coupon", "tea", 1, 1500),
            // A field the code does not know (`channel`) is ignored, per the weak schema.
            row(
                "CouponApplied",
                json!({ "cart_id": "new-coupon", "coupon_code": "SPRING", "discount_amount": 200,
                        "campaign": "spring-sale", "channel": "email" }),
            ),
        ],
    );
    let carts = db.carts();

    let old = carts.load("old-coupon").await.expect("old coupon loads");
    assert_eq!(old.version, 2);
    assert_eq!(old.state.coupon(), Some("SAVE10"));
    assert_eq!(old.state.campaign(), None);
    assert_eq!(old.state.discount(), 1000);
    assert_eq!(old.state.total_price(), 2 * 1500 - 1000);

    let new = carts.load("new-coupon").await.expect("new coupon loads");
    assert_eq!(new.state.coupon(), Some("SPRING"));
    assert_eq!(new.state.campaign(), Some("spring-sale"));
    assert_eq!(new.state.total_price(), 1500 - 200);

    // The events themselves, as decoded from the rows.
    let stored = db
        .store
        .read_stream(&stream_id::<Cart>("old-coupon"), 2, 1)
        .await
        .expect("read");
    let event: CartEvent = decode(&stored[0], &cart::upcasters()).expect("decode");
    assert_eq!(
        event,
        CartEvent::CouponApplied {
            cart_id: "old-coupon".into(),
            coupon_code: "SAVE10".into(),
            discount_amount: 1000,
            campaign: None,
        }
    );
    // Without a campaign the event encodes to exactly what the older release stored.
    let encoded = codec::encode(&event, &Metadata::new()).expect("encode");
    assert_eq!(encoded.payload, OLD_COUPON);
}

#[tokio::test]
async fn new_coupons_are_stored_with_their_campaign_only_when_they_have_one() {
    let db = open_db().await;
    let carts = db.carts();
    for (cart_id, campaign) in [("plain", None), ("campaigned", Some("spring-sale"))] {
        carts
            .execute(
                cart_id,
                CartCommand::ApplyCoupon {
                    cart_id: cart_id.into(),
                    coupon_code: "SAVE10".into(),
                    discount_amount: 1000,
                    campaign: campaign.map(str::to_owned),
                },
            )
            .await
            .expect("coupon applied");
    }
    let plain = stored_rows(&db.path, "plain");
    assert_eq!(
        plain[0].3,
        r#"{"cart_id":"plain","coupon_code":"SAVE10","discount_amount":1000}"#
    );
    assert_eq!(plain[0].2, 1, "CouponApplied stays at schema 1");
    let campaigned = stored_rows(&db.path, "campaigned");
    assert_eq!(
        campaigned[0].3,
        r#"{"cart_id":"campaigned","coupon_code":"SAVE10","discount_amount":1000,"campaign":"spring-sale"}"#
    );
}

/// Cart `mixed`: every generation of the "item added" fact in one stream, interleaved with
/// events that never changed shape; the comment on each row says what it folds to.
fn mixed_history() -> Vec<Row<'static>> {
    let quantity_updated = json!({ "cart_id": "mixed", "item_id": "cup", "new_quantity": 2 });
    let removed = json!({ "cart_id": "mixed", "item_id": "jam" });
    let coupon = json!({ "cart_id": "mixed", "coupon_code": "OLD10", "discount_amount": 100 });
    vec![
        product_added_v1("mixed", "tea", 2, 4),       // tea 2 @ 400
        product_added_v2("mixed", "cup", 1, 1250),    // cup 1 @ 1250
        item_added_v3("mixed", "tea", 1, 450),        // tea 3 @ 450
        product_added_v1("mixed", "jam", 3, 2),       // jam 3 @ 200
        row("ItemQuantityUpdated", quantity_updated), // cup 2 @ 1250
        item_added_v3("mixed", "spoon", 4, 99),       // spoon 4 @ 99
        row("ItemRemoved", removed),                  // jam gone
        row("CouponApplied", coupon),                 // OLD10, -100
    ]
}

#[tokio::test]
async fn product_added_v1_and_v2_rows_and_current_rows_load_to_the_expected_cart() {
    let db = open_db().await;
    write_rows(&db.path, "mixed", &mixed_history());
    let loaded = db.carts().load("mixed").await.expect("mixed history loads");
    assert_eq!(loaded.version, 8);
    assert_eq!(
        lines_of(&loaded.state),
        lines(&[("cup", 2, 1250), ("spoon", 4, 99), ("tea", 3, 450)])
    );
    assert_eq!(loaded.state.coupon(), Some("OLD10"));
    assert_eq!(
        loaded.state.total_price(),
        2 * 1250 + 4 * 99 + 3 * 450 - 100
    );

    // Each old row decodes to the current event, prices converted to cents.
    let stored = db
        .store
        .read_stream(&stream_id::<Cart>("mixed"), 1, 4)
        .await
        .expect("read");
    let decoded = stored
        .iter()
        .map(|recorded| decode::<CartEvent>(recorded, &cart::upcasters()))
        .collect::<Result<Vec<_>, _>>()
        .expect("decode");
    let added = |item_id: &str, quantity, price| CartEvent::ItemAdded {
        cart_id: "mixed".into(),
        item_id: item_id.into(),
        quantity,
        price,
    };
    assert_eq!(
        decoded,
        [
            added("tea", 2, 400),
            added("cup", 1, 1250),
            added("tea", 1, 450),
            added("jam", 3, 200),
        ]
    );
}

#[tokio::test]
async fn item_added_rows_written_at_schema_1_before_the_bump_read_as_stored() {
    let db = open_db().await;
    let before_the_bump =
        json!({ "cart_id": "bump", "item_id": "tea", "quantity": 2, "price": 450 });
    write_rows(
        &db.path,
        "bump",
        &[
            ("ItemAdded", 1, before_the_bump.to_string()),
            item_added_v3("bump", "tea", 1, 500),
        ],
    );
    for carts in [db.carts(), db.carts_without_upcasters()] {
        let loaded = carts.load("bump").await.expect("loads");
        assert_eq!(loaded.version, 2);
        assert_eq!(lines_of(&loaded.state), lines(&[("tea", 3, 500)]));
    }
}

#[tokio::test]
async fn without_the_upcasters_loading_fails_naming_stream_version_and_type() {
    let db = open_db().await;
    write_rows(&db.path, "mixed", &mixed_history());
    write_rows(
        &db.path,
        "late",
        &[
            item_added_v3("late", "tea", 1, 450),
            product_added_v2("late", "cup", 1, 1250),
        ],
    );
    for (cart_id, version, schema_version) in [("mixed", 1, 1), ("late", 2, 2)] {
        let err = db
            .carts_without_upcasters()
            .load(cart_id)
            .await
            .expect_err("old rows cannot decode without upcasters");
        let RepositoryError::Decode(decode_error) = &err else {
            panic!("expected RepositoryError::Decode, got {err:?}");
        };
        assert_eq!(decode_error.stream_id, format!("Cart-{cart_id}"));
        assert_eq!(decode_error.version, version);
        assert_eq!(decode_error.event_type, "ProductAdded");
        assert_eq!(decode_error.schema_version, schema_version);
        assert!(matches!(decode_error.cause, DecodeCause::Json(_)), "{err}");
        let message = err.to_string();
        for part in [
            "`ProductAdded`".to_owned(),
            format!("stream `Cart-{cart_id}`"),
            format!("version {version}"),
        ] {
            assert!(message.contains(&part), "{part} not in {message}");
        }
        // The same rows load once the chain is registered: the chain is what was missing.
        db.carts()
            .load(cart_id)
            .await
            .expect("loads with upcasters");
    }
}

#[tokio::test]
async fn a_v1_row_missing_unit_price_is_a_decode_error_naming_the_field_and_spares_other_streams() {
    let db = open_db().await;
    write_rows(
        &db.path,
        "damaged",
        &[
            item_added_v3("damaged", "tea", 1, 450),
            row(
                "ProductAdded",
                json!({ "cart_id": "damaged", "sku": "cup", "qty": 1 }),
            ),
        ],
    );
    write_rows(&db.path, "mixed", &mixed_history());
    let carts = db.carts();

    let err = carts
        .load("damaged")
        .await
        .expect_err("a row missing unit_price cannot be upcast");
    let RepositoryError::Decode(decode_error) = &err else {
        panic!("expected RepositoryError::Decode, got {err:?}");
    };
    assert_eq!(decode_error.stream_id, "Cart-damaged");
    assert_eq!(decode_error.version, 2);
    assert_eq!(decode_error.event_type, "ProductAdded");
    assert_eq!(decode_error.schema_version, 1);
    let DecodeCause::Upcast(upcast) = &decode_error.cause else {
        panic!("expected an upcast cause, got {:?}", decode_error.cause);
    };
    assert_eq!(upcast.event_type, "ProductAdded");
    assert_eq!(upcast.schema_version, 1);
    assert!(upcast.reason.contains("`unit_price`"), "{upcast}");
    assert!(err.to_string().contains("`unit_price` is missing"), "{err}");

    // A command on the damaged cart fails the same way and appends nothing.
    let refused = carts
        .execute(
            "damaged",
            CartCommand::RemoveItem {
                cart_id: "damaged".into(),
                item_id: "tea".into(),
            },
        )
        .await
        .expect_err("cannot decide on a cart that does not decode");
    assert!(matches!(refused, RepositoryError::Decode(_)), "{refused:?}");
    assert_eq!(stored_rows(&db.path, "damaged").len(), 2);

    // The other stream in the same file still loads, whole.
    let mixed = carts.load("mixed").await.expect("another stream loads");
    assert_eq!(mixed.version, 8);
    assert_eq!(mixed.state.total_price(), 2 * 1250 + 4 * 99 + 3 * 450 - 100);
}

#[tokio::test]
async fn a_command_after_old_rows_appends_after_them_and_leaves_them_as_stored() {
    let db = open_db().await;
    let history = [
        product_added_v1("continued", "tea", 2, 4),
        product_added_v2("continued", "cup", 1, 1250),
        item_added_v3("continued", "tea", 1, 450),
    ];
    write_rows(&db.path, "continued", &history);
    let carts = db.carts();
    assert_eq!(carts.load("continued").await.expect("loads").version, 3);

    let committed = carts
        .execute(
            "continued",
            CartCommand::AddItem {
                cart_id: "continued".into(),
                item_id: "cup".into(),
                quantity: 2,
                price: 1300,
            },
        )
        .await
        .expect("a new command on an old cart");
    assert_eq!(committed.version, 4);
    assert_eq!(committed.events.len(), 1);
    assert_eq!(committed.events[0].version, 4);

    let reloaded = db.carts().load("continued").await.expect("reload");
    assert_eq!(reloaded.version, 4);
    assert_eq!(
        lines_of(&reloaded.state),
        lines(&[("cup", 3, 1300), ("tea", 3, 450)])
    );
    assert_eq!(reloaded.state.total_price(), 3 * 1300 + 3 * 450);

    // Upcasting happens on read only: the old rows are still stored as written, and the
    // new event follows them in the current shape.
    let rows = stored_rows(&db.path, "continued");
    let shapes: Vec<_> = rows
        .iter()
        .map(|(version, event_type, schema, _)| (*version, event_type.as_str(), *schema))
        .collect();
    assert_eq!(
        shapes,
        [
            (1, "ProductAdded", 1),
            (2, "ProductAdded", 2),
            (3, "ItemAdded", 3),
            (4, "ItemAdded", 3)
        ]
    );
    for ((_, _, _, payload), (_, _, old)) in rows.iter().zip(&history) {
        assert_eq!(payload, old);
    }
    assert_eq!(
        rows[3].3,
        r#"{"cart_id":"continued","item_id":"cup","quantity":2,"price":1300}"#
    );

    // A repository without the chain still cannot read the stream: nothing was rewritten.
    let err = db
        .carts_without_upcasters()
        .load("continued")
        .await
        .expect_err("old rows remain old");
    assert!(matches!(err, RepositoryError::Decode(_)), "{err:?}");
}
