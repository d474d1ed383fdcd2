//! The city-agent-api service as a separate process for the crash tests (built with the tests,
//! so it is never stale): the same code as the `city-agent-api` binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fieldops_core::platform::telemetry::init("city-agent-api");
    let settings = fieldops_core::Settings::load(8081)?;
    city_agent_api::build(settings).await?.run_until_stopped().await
}
