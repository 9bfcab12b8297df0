//! The real server on a random port, against real databases, and the real
//! binary as an operator runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod accounts;
mod admin;
mod attacks;
mod auctions;
mod binary;
mod conventions;
mod extras;
mod health;
mod hostile;
mod live;
mod mfa;
mod oidc;
mod outbox;
mod photos;
mod reports;
mod sessions;
mod shutdown;
mod support;
mod traces;
mod web;
