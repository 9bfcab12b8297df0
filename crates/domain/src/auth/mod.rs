//! Accounts: the password policy, lockout, tokens, the ports the account
//! flows need, and the [`AuthService`](service::AuthService) that implements
//! docs/spec/api.md's Authentication and Users sections against them.

pub mod identities;
pub mod lockout;
pub mod password;
pub mod ports;
pub mod second_factor;
pub mod service;
pub mod tickets;
pub mod tokens;

pub use lockout::{FailedAttempt, LockoutPolicy, LoginFailures};
pub use password::{Password, PasswordPolicy, PasswordProblem};
pub use service::{AuthPolicy, AuthPorts, AuthService, Principal};
pub use tickets::{IssuedTicket, SocketHolder, TicketService};
pub use tokens::{AccessClaims, RequestContext, TokenPair, TokenRejected};
