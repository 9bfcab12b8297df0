// The API's shapes under the names the app uses. They are generated from
// the OpenAPI document (schema.d.ts, `npm run api-types`), so a change of
// the server's contract shows up here as a type error. Money is an integer
// of minor units, as on the server.
import type { components, operations } from './schema';

type Schemas = components['schemas'];

export type Role = Schemas['RoleName'];
/** What a new password must meet (GET /auth/policy). */
export type PasswordPolicy = Schemas['PasswordPolicyBody'];
export type User = Schemas['UserBody'];
/** PATCH /users/me: what you may change of your own account. */
export type UpdateMe = Schemas['UpdateMeRequest'];
export type TokenResponse = Schemas['TokenResponse'];
export type Ticket = Schemas['TicketBody'];

export type ItemStatus = Schemas['StatusName'];
/** `?sort=` of GET /items: the list's order. */
export type ItemSort = Schemas['SortName'];
export type Item = Schemas['ItemBody'];
export type ItemPage = Schemas['ItemPage'];
/** An item's photo: the image and its thumbnail under `/media/`. */
export type Photo = Schemas['PhotoBody'];
export type NewItem = Schemas['CreateItemRequest'];
/** PATCH /items/{id}: what to change of an item nobody has bid on. */
export type ItemEdit = Schemas['EditItemRequest'];
/** An item's anti-sniping rule. */
export type SoftClose = Schemas['SoftCloseBody'];
/** GET /items/{id}/ledger: the bid ledger's head. */
export type Ledger = Schemas['LedgerBody'];
export type UserPage = Schemas['UserPage'];
/** GET /currencies/{code}: a currency's decimals as the server reads amounts in it. */
export type CurrencyInfo = Schemas['CurrencyBody'];

export type Poison = Schemas['PoisonBody'];
export type BidState = Schemas['StateName'];
export type OwnBid = Schemas['OwnBidBody'];
export type OwnBidPage = Schemas['OwnBidPage'];
export type RevealedBid = Schemas['RevealedBidBody'];
export type RevealedBidPage = Schemas['RevealedBidPage'];
export type BidPlaced = Schemas['BidPlaced'];

/** An SSE `price` event. */
export type PriceEvent = Schemas['PriceBody'];
/** An SSE `extended` event: a late bid moved the close. */
export type ExtendedEvent = Schemas['ExtendedBody'];
/** An SSE `closed` event. */
export type ClosedEvent = Schemas['ClosedBody'];
export type NotificationType = Schemas['NotificationKind'];
/** A message on the notifications socket. */
export type Notification = Schemas['NotificationBody'];
/** A notification as kept for you (GET /me/notifications): the socket's message with its id and whether you read it. */
export type StoredNotification = Schemas['StoredNotificationBody'];
export type NotificationPage = Schemas['NotificationPage'];

export type RegisterRequest = Schemas['RegisterRequest'];
export type LoginRequest = Schemas['LoginRequest'];

/** What the audit trail records (the `event` filter's values are in enums.ts). */
export type AuditEvent = NonNullable<NonNullable<operations['audit_trail']['parameters']['query']>['event']>;
export type AuditEntry = Schemas['AuditEntryBody'];
export type AuditPage = Schemas['AuditPage'];

/** A configured OpenID provider: a "Sign in with …" button. */
export type Provider = Schemas['ProviderBody'];
/** An identity linked to your account. */
export type Identity = Schemas['IdentityBody'];
export type LinkTicket = Schemas['LinkTicketBody'];
/** POST /auth/mfa: a challenge and exactly one of `code` and `recovery_code`. */
export type CompleteLogin = Schemas['CompleteLoginRequest'];
export type TotpStatus = Schemas['TotpStatusBody'];
export type TotpEnrolment = Schemas['TotpEnrolmentBody'];
export type RecoveryCodes = Schemas['RecoveryCodesBody'];
/** DELETE /auth/mfa/totp: exactly one of `password`, `code`, `recovery_code`. */
export type DisableTotp = Schemas['DisableTotpRequest'];
