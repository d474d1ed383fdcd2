#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fieldops_core::platform::telemetry::init("dispatcher");
    let settings = fieldops_core::Settings::load(8082)?;
    dispatcher::build(settings).await?.run_until_stopped().await
}
