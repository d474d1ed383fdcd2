//! The operating contract for the `city-agent-api` binary: started with no arguments and `FIELDOPS__`
//! variables it migrates, becomes ready, and on SIGTERM stops taking work and exits 0.

#[tokio::test]
async fn the_binary_starts_from_environment_and_exits_zero_on_sigterm() {
    let status = fieldops_core::testing::run_binary_then_sigterm(env!("CARGO_BIN_EXE_city-agent-api")).await;
    assert!(status.success(), "exit status {status}");
}
