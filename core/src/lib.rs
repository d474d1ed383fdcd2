//! fieldops-core: the library every fieldops service builds on.
//!
//! `domain` holds the typed values (no I/O); `store` the SQL per aggregate; `queue` the Redis
//! Streams transport and the transactional outbox; `geo` the territory index; `auth` passwords,
//! tokens and the caller's scope; `rules` strategy-rule expressions (CEL) and cron schedules;
//! `dispatch` target resolution (shared by firing and preview); `platform` configuration, errors,
//! HTTP plumbing and shutdown.

pub mod auth;
pub mod dispatch;
pub mod domain;
pub mod geo;
pub mod platform;
pub mod queue;
pub mod rules;
pub mod store;
pub mod testing;

pub use platform::config::Settings;
pub use platform::error::ApiError;
