//! Stored notifications: each [`Notification`] a bid or a close causes is
//! written with it, so a user who was offline finds it in their list
//! (`GET /me/notifications`), and marks it read. Some are also mailed
//! ([`NoticeMail`]), through the outbox, in the same transaction.

use std::fmt;

use uuid::Uuid;

use crate::email::Email;
use crate::item::{Item, Timestamp};
use crate::live::{Notification, NotificationData};
use crate::money::Currency;
use crate::user::User;

/// A notification as its user's list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredNotification {
    /// Its id (time-ordered).
    pub id: Uuid,
    /// The title of the item it is about, as it was then.
    pub item_title: String,
    /// The item's currency, which its amounts are in.
    pub currency: Currency,
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

/// An e-mail notice of a notification, as the domain decides it: to whom,
/// about which item, saying what. Its wording and layout are the mail
/// adapter's (with a link to the item's page).
#[derive(Clone, PartialEq, Eq)]
pub struct NoticeMail {
    /// The recipient.
    pub to: Email,
    /// How to greet them: their display name.
    pub name: String,
    /// The title of the item it is about, as it was then.
    pub item_title: String,
    /// The item's currency, to write its amounts in.
    pub currency: Currency,
    /// What happened (its item is the one the link leads to).
    pub notice: NotificationData,
}

impl fmt::Debug for NoticeMail {
    // The address and name are personal data, kept out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoticeMail")
            .field("item", &self.notice.item())
            .finish_non_exhaustive()
    }
}

impl NotificationData {
    /// Whether its user may be mailed a notice of it (see [`NoticeMail::of`]).
    #[must_use]
    pub fn is_mailed(&self) -> bool {
        matches!(
            self,
            NotificationData::Outbid { .. }
                | NotificationData::Exhausted { .. }
                | NotificationData::Won { .. }
        )
    }
}

impl NoticeMail {
    /// The notice `notification` about `item` mails to `recipient`, its
    /// user, if it mails one at all: only news a bidder acts on or waits
    /// for is mailed (a plain bid outbid, a poisoned bid exhausted, an
    /// auction won; an auto-raise or a loss is not), and only to an active
    /// account whose address was proven and whose user did not turn
    /// notices off (a bidder who never verified their address, where that
    /// is allowed, is not mailed: the address may be someone else's).
    #[must_use]
    pub fn of(notification: &Notification, item: &Item, recipient: &User) -> Option<Self> {
        let mailed = notification.data.is_mailed();
        let wanted = recipient.notify_email && recipient.email_verified && recipient.is_active;
        (mailed && wanted && recipient.id == notification.user).then(|| NoticeMail {
            to: recipient.email.clone(),
            name: recipient.display_name.clone(),
            item_title: item.title.as_str().to_owned(),
            currency: item.currency.clone(),
            notice: notification.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::UserId;
    use crate::engine::tests::item_at;
    use crate::money::Money;
    use crate::user::Role;

    fn bidder() -> User {
        User {
            id: UserId::generate(),
            email: Email::parse("bea@example.com").unwrap(),
            display_name: "Bea".into(),
            role: Role::User,
            email_verified: true,
            is_active: true,
            notify_email: true,
            totp_enabled: false,
            created_at: Utc::now(),
        }
    }

    fn every_kind(item: &Item) -> [NotificationData; 5] {
        let price = Money::new(150).unwrap();
        [
            NotificationData::Outbid {
                item: item.id,
                current_price: price,
                minimum_next_bid: 155,
            },
            NotificationData::AutoRaised {
                item: item.id,
                effective: price,
                remaining_budget: 50,
            },
            NotificationData::Exhausted {
                item: item.id,
                effective: Money::new(140).unwrap(),
                current_price: price,
                minimum_next_bid: 155,
            },
            NotificationData::Won {
                item: item.id,
                final_price: price,
            },
            NotificationData::Lost {
                item: item.id,
                final_price: price,
            },
        ]
    }

    #[test]
    fn outbid_exhausted_and_won_are_mailed_the_rest_is_not() {
        let item = item_at(Utc::now(), 100, 5);
        let bea = bidder();
        let mailed: Vec<&str> = every_kind(&item)
            .into_iter()
            .filter_map(|data| {
                let told = Notification {
                    user: bea.id,
                    data,
                    at: Utc::now(),
                };
                NoticeMail::of(&told, &item, &bea).map(|mail| {
                    assert_eq!(mail.to, bea.email);
                    assert_eq!(mail.name, "Bea");
                    assert_eq!(mail.item_title, "Lot");
                    assert_eq!(mail.currency, item.currency);
                    assert_eq!(mail.notice, data);
                    data.kind()
                })
            })
            .collect();
        assert_eq!(mailed, ["outbid", "exhausted", "won"]);
    }

    #[test]
    fn no_notice_goes_to_whoever_turned_them_off_or_cannot_be_mailed() {
        let item = item_at(Utc::now(), 100, 5);
        let won = |user: &User| Notification {
            user: user.id,
            data: every_kind(&item)[3],
            at: Utc::now(),
        };
        let bea = bidder();
        assert!(NoticeMail::of(&won(&bea), &item, &bea).is_some());
        for unwilling in [
            User {
                notify_email: false,
                totp_enabled: false,
                ..bea.clone()
            },
            User {
                email_verified: false,
                ..bea.clone()
            },
            User {
                is_active: false,
                ..bea.clone()
            },
        ] {
            assert!(NoticeMail::of(&won(&unwilling), &item, &unwilling).is_none());
        }
        // Never to someone else than the notification's user.
        let other = bidder();
        assert!(NoticeMail::of(&won(&bea), &item, &other).is_none());
    }

    #[test]
    fn a_notice_says_which_item_but_not_to_whom_in_logs() {
        let item = item_at(Utc::now(), 100, 5);
        let bea = bidder();
        let told = Notification {
            user: bea.id,
            data: every_kind(&item)[0],
            at: Utc::now(),
        };
        let mut mail =
            crate::outbox::OutgoingMail::Notice(NoticeMail::of(&told, &item, &bea).unwrap());
        let logged = format!("{mail:?}");
        assert!(logged.contains(&item.id.to_string()), "{logged}");
        assert!(
            !logged.contains("bea@") && !logged.contains("Bea"),
            "{logged}"
        );
        assert_eq!(mail.kind(), "notice");
        assert_eq!(mail.expires_at(), None);
        assert!(mail.as_link_mut().is_none());
    }
}
