//! Network event subscriptions: events that change state (a peer connected or
//! disconnected) are never dropped; announcements are dropped once a subscriber has
//! [`MAX_ANNOUNCEMENT_BACKLOG`] of them unread, so a flood cannot grow memory.

use crate::NetworkEvent;
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};
use tokio::sync::mpsc;

/// Announcements (NewBlockHashes, NewBlock, BlockRangeUpdate, transaction gossip) a
/// subscriber may leave unread before newer ones are dropped for it.
pub const MAX_ANNOUNCEMENT_BACKLOG: usize = 4096;

fn is_announcement(e: &NetworkEvent) -> bool {
    !matches!(e, NetworkEvent::PeerConnected(_) | NetworkEvent::PeerDisconnected { .. })
}

/// The receiving end of [`crate::NetworkHandle::subscribe`].
#[derive(Debug)]
pub struct NetworkEvents {
    rx: mpsc::UnboundedReceiver<NetworkEvent>,
    backlog: Arc<AtomicUsize>,
}

impl NetworkEvents {
    /// The next event, in the order the network saw them; `None` once the network stopped.
    pub async fn recv(&mut self) -> Option<NetworkEvent> {
        let event = self.rx.recv().await?;
        self.received(&event);
        Some(event)
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<NetworkEvent> {
        let event = self.rx.try_recv().ok()?;
        self.received(&event);
        Some(event)
    }

    fn received(&self, event: &NetworkEvent) {
        if is_announcement(event) {
            self.backlog.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The manager's end of a subscription.
#[derive(Debug)]
pub(crate) struct Subscriber {
    tx: mpsc::UnboundedSender<NetworkEvent>,
    backlog: Arc<AtomicUsize>,
    /// Whether it gets transaction gossip (and only that, besides peer events).
    transactions: bool,
}

/// A new subscription: the manager's end and the subscriber's. A `transactions`
/// subscriber gets peer events and transaction gossip; the others peer events and block
/// announcements.
pub(crate) fn subscription(transactions: bool) -> (Subscriber, NetworkEvents) {
    let (tx, rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(AtomicUsize::new(0));
    (Subscriber { tx, backlog: backlog.clone(), transactions }, NetworkEvents { rx, backlog })
}

/// What became of an event sent to a subscriber.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    Delivered,
    /// An announcement dropped: the subscriber has too many unread.
    Dropped,
    /// The subscriber is gone.
    Closed,
}

impl Subscriber {
    /// Whether `event` is for this subscriber.
    pub(crate) fn wants(&self, event: &NetworkEvent) -> bool {
        !is_announcement(event) || event.is_transaction_gossip() == self.transactions
    }

    pub(crate) fn send(&self, event: NetworkEvent) -> Sent {
        let announcement = is_announcement(&event);
        if announcement {
            if self.backlog.load(Ordering::Relaxed) >= MAX_ANNOUNCEMENT_BACKLOG {
                return if self.tx.is_closed() { Sent::Closed } else { Sent::Dropped };
            }
            self.backlog.fetch_add(1, Ordering::Relaxed);
        }
        match self.tx.send(event) {
            Ok(()) => Sent::Delivered,
            Err(_) => Sent::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;
    use tern_eth_wire::BlockHashNumber;
    use tern_p2p::PeerId;

    fn announcement() -> NetworkEvent {
        NetworkEvent::NewBlockHashes {
            peer: PeerId::ZERO,
            blocks: vec![BlockHashNumber { hash: B256::ZERO, number: 1 }],
        }
    }

    #[tokio::test]
    async fn state_changes_survive_an_announcement_flood() {
        let (sub, mut events) = subscription(false);
        for _ in 0..MAX_ANNOUNCEMENT_BACKLOG {
            assert_eq!(sub.send(announcement()), Sent::Delivered);
        }
        assert_eq!(sub.send(announcement()), Sent::Dropped);
        let gone = NetworkEvent::PeerDisconnected { id: PeerId::ZERO, reason: "x".into() };
        assert_eq!(sub.send(gone), Sent::Delivered);
        for _ in 0..MAX_ANNOUNCEMENT_BACKLOG {
            assert!(matches!(events.recv().await, Some(NetworkEvent::NewBlockHashes { .. })));
        }
        assert!(matches!(events.recv().await, Some(NetworkEvent::PeerDisconnected { .. })));
        // Reading made room again.
        assert_eq!(sub.send(announcement()), Sent::Delivered);
        drop(events);
        assert_eq!(sub.send(announcement()), Sent::Closed);
    }
}
