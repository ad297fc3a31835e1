//! Conformance: the notification outbox — queued once per (dedup key, destination) however
//! often and by however many callers, the audit cursor moved with the queueing and never back,
//! claims that hand a row to one sender, finishes only by the claim's holder, retries that wait
//! their time, and giving up with the last error.

use std::collections::BTreeSet;
use std::sync::Arc;

use uuid::Uuid;

use super::fixtures::at;
use super::{TestDatabase, open};
use crate::notification::{
    DeliveryOutcome, DeliveryState, MAX_DEDUP_KEY, NewNotification, NotificationFilter,
};
use crate::{Store, StoreError};

fn note(key: &str, destination: &str) -> NewNotification {
    NewNotification {
        id: Uuid::new_v4(),
        dedup_key: key.into(),
        destination: destination.into(),
        event: "finding_breached".into(),
        payload: serde_json::json!({"subject": key, "data": {"n": 1}}),
    }
}

async fn all(store: &Arc<dyn Store>) -> Vec<crate::notification::Notification> {
    store
        .list_notifications(&NotificationFilter::default())
        .await
        .unwrap()
}

pub async fn notifications_are_queued_once_per_key_and_destination_with_the_cursor(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    assert_eq!(store.notification_cursor().await.unwrap(), None);
    let first = [
        note("finding:1:breached", "webhook:a"),
        note("finding:1:breached", "email:b"),
    ];
    let done = store
        .enqueue_notifications(&first, Some(5), at(0))
        .await
        .unwrap();
    assert_eq!((done.queued, done.duplicates), (2, 0));
    assert_eq!(store.notification_cursor().await.unwrap(), Some(5));
    // The same event again (another sweep, another server), beside a new one.
    let again = [
        note("finding:1:breached", "webhook:a"),
        note("finding:1:breached", "email:b"),
        note("finding:2:breached", "webhook:a"),
    ];
    let done = store
        .enqueue_notifications(&again, Some(3), at(10))
        .await
        .unwrap();
    assert_eq!((done.queued, done.duplicates), (1, 2));
    // The cursor never moves back.
    assert_eq!(store.notification_cursor().await.unwrap(), Some(5));
    let rows = all(&store).await;
    assert_eq!(rows.len(), 3);
    let kept = rows
        .iter()
        .find(|n| n.dedup_key == "finding:1:breached" && n.destination == "webhook:a")
        .unwrap();
    // The first queueing's row, untouched by the second.
    assert_eq!(kept.id, first[0].id);
    assert_eq!(kept.created_at, at(0));
    assert_eq!(kept.state, DeliveryState::Queued);
    assert_eq!(kept.attempts, 0);
    assert_eq!(kept.payload, first[0].payload);

    // A bad item refuses the whole batch before anything is written.
    let bad = [
        note("finding:3:breached", "webhook:a"),
        note(&"k".repeat(MAX_DEDUP_KEY + 1), "webhook:a"),
    ];
    assert!(matches!(
        store.enqueue_notifications(&bad, Some(9), at(20)).await,
        Err(StoreError::TooLong { .. })
    ));
    assert_eq!(all(&store).await.len(), 3);
    assert_eq!(store.notification_cursor().await.unwrap(), Some(5));

    // Many callers queueing the same events at once: each row exists once.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let items: Vec<_> = (10..20)
                .map(|i| note(&format!("finding:{i}:due_soon"), "webhook:a"))
                .collect();
            store
                .enqueue_notifications(&items, None, at(30))
                .await
                .unwrap()
        }));
    }
    let mut queued = 0;
    for t in tasks {
        queued += t.await.unwrap().queued;
    }
    assert_eq!(queued, 10);
    assert_eq!(all(&store).await.len(), 13);

    // A reopened store keeps the cursor and the rows.
    let reopened = open(&db).await;
    assert_eq!(reopened.notification_cursor().await.unwrap(), Some(5));
    assert_eq!(all(&reopened).await.len(), 13);
}

pub async fn notification_claims_go_to_one_sender_and_retries_wait_their_time(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let items: Vec<_> = (0..20)
        .map(|i| note(&format!("finding:{i}:breached"), "webhook:a"))
        .collect();
    store
        .enqueue_notifications(&items, None, at(0))
        .await
        .unwrap();
    // Not due before it was queued.
    let early = store
        .claim_notifications(Uuid::new_v4(), at(60), 50, at(-1))
        .await
        .unwrap();
    assert!(early.is_empty());

    // Two senders claiming at once share the rows without overlap.
    let (la, lb) = (Uuid::new_v4(), Uuid::new_v4());
    let (a, b) = tokio::join!(
        store.claim_notifications(la, at(60), 15, at(1)),
        store.claim_notifications(lb, at(60), 15, at(1))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let ids_a: BTreeSet<Uuid> = a.iter().map(|n| n.id).collect();
    let ids_b: BTreeSet<Uuid> = b.iter().map(|n| n.id).collect();
    assert!(ids_a.is_disjoint(&ids_b));
    assert_eq!(ids_a.len() + ids_b.len(), 20);
    assert!(a.iter().chain(&b).all(|n| n.attempts == 1));
    // Nothing is left to claim while the leases hold.
    assert!(
        store
            .claim_notifications(Uuid::new_v4(), at(60), 50, at(2))
            .await
            .unwrap()
            .is_empty()
    );

    let one = a.first().unwrap_or_else(|| b.first().unwrap()).clone();
    let lease = if ids_a.contains(&one.id) { la } else { lb };
    // Another sender cannot finish it.
    assert!(
        !store
            .finish_notification(one.id, Uuid::new_v4(), &DeliveryOutcome::Delivered, at(3))
            .await
            .unwrap()
    );
    // Retry in a minute: not claimable before then, claimable after, a second attempt.
    let retry = DeliveryOutcome::Retry {
        at: at(63),
        error: "the receiver answered 500".into(),
    };
    assert!(
        store
            .finish_notification(one.id, lease, &retry, at(3))
            .await
            .unwrap()
    );
    // Finishing twice under the same, now ended, claim changes nothing.
    assert!(
        !store
            .finish_notification(one.id, lease, &DeliveryOutcome::Delivered, at(4))
            .await
            .unwrap()
    );
    // The other rows' leases lapse at 60; at 62 they are claimable again but this one is not.
    let l2 = Uuid::new_v4();
    let lapsed = store
        .claim_notifications(l2, at(120), 50, at(62))
        .await
        .unwrap();
    assert_eq!(lapsed.len(), 19);
    assert!(lapsed.iter().all(|n| n.id != one.id && n.attempts == 2));
    // The lapsed claims' holders can no longer finish.
    let other = lapsed[0].clone();
    let old_lease = if ids_a.contains(&other.id) { la } else { lb };
    assert!(
        !store
            .finish_notification(other.id, old_lease, &DeliveryOutcome::Delivered, at(63))
            .await
            .unwrap()
    );
    let l3 = Uuid::new_v4();
    let again = store
        .claim_notifications(l3, at(200), 50, at(63))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, one.id);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(
        again[0].last_error.as_deref(),
        Some("the receiver answered 500")
    );
    assert!(
        store
            .finish_notification(
                one.id,
                l3,
                &DeliveryOutcome::GiveUp {
                    error: "the receiver answered 503".into()
                },
                at(64)
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_notification(other.id, l2, &DeliveryOutcome::Delivered, at(65))
            .await
            .unwrap()
    );
    let failed = store
        .list_notifications(&NotificationFilter {
            state: Some(DeliveryState::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, one.id);
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("the receiver answered 503")
    );
    assert_eq!(failed[0].lease_until, None);
    let delivered = store
        .list_notifications(&NotificationFilter {
            state: Some(DeliveryState::Delivered),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].delivered_at, Some(at(65)));
    // Neither a delivered nor a failed row is claimed again.
    let rest = store
        .claim_notifications(Uuid::new_v4(), at(1000), 50, at(500))
        .await
        .unwrap();
    assert_eq!(rest.len(), 18);
    assert!(rest.iter().all(|n| n.id != one.id && n.id != other.id));
}
