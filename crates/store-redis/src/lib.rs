//! # Poison Pill's Redis adapter
//!
//! [`Redis`] is a lazily connecting `ConnectionManager` (the server starts
//! even when Redis does not answer, and reconnects in the background) whose
//! every command is bounded by a timeout. After a failure it stops trying for
//! a short while, so a dead Redis costs one timeout per second instead of one
//! per request. On top of it:
//! - [`RedisRevocationList`]: the access-token blacklist;
//! - [`RedisRateLimiter`]: sliding-window limits shared by all instances,
//!   falling back to per-instance windows while Redis is unreachable;
//! - [`RedisLiveEvents`]: live events fanned out to every instance over
//!   pub/sub;
//! - [`RedisConnectionSlots`]: places for open live connections, counted
//!   across instances as leases that lapse unless renewed, per instance
//!   while Redis is unreachable.

mod client;
mod events;
mod limiter;
mod revocations;
mod slots;

pub use client::{Redis, RedisSettings};
pub use events::RedisLiveEvents;
pub use limiter::RedisRateLimiter;
pub use revocations::RedisRevocationList;
pub use slots::RedisConnectionSlots;
