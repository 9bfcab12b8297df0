//! Stored notifications: each [`Notification`] a bid or a close causes is
//! written with it, so a user who was offline finds it in their list
//! (`GET /me/notifications`), and marks it read.

use uuid::Uuid;

use crate::item::Timestamp;
use crate::live::Notification;

/// A notification as its user's list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredNotification {
    /// Its id (time-ordered).
    pub id: Uuid,
    /// The title of the item it is about, as it was then.
    pub item_title: String,
    /// What it says.
    pub notification: Notification,
    /// Whether its user marked it (or a newer one) read.
    pub read: bool,
}

/// Where a page of a user's notifications continues: after this one,
/// newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotificationCursor {
    /// The last one's time.
    pub at: Timestamp,
    /// The last one's id (ties on the time).
    pub id: Uuid,
}
