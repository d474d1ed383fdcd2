//! Holds no code: the tests live in `tests/it/`; `src/bin/field-process.rs` is the
//! city-agent-api service as a separate process for the crash tests.
