//! End-to-end tests of fieldops: hq-console, dispatcher and city-agent-api run in this process
//! against the real PostgreSQL and Redis (a fresh database and Redis key prefix per test).

mod bad_input;
mod crash;
mod e2e;
mod exactly_once;
mod helpers;
mod ops;
mod rules;
mod scope;
