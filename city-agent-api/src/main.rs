#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fieldops_core::platform::telemetry::init("city-agent-api");
    let settings = fieldops_core::Settings::load(8081)?;
    city_agent_api::build(settings).await?.run_until_stopped().await
}
