#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fieldops_core::platform::telemetry::init("hq-console");
    let settings = fieldops_core::Settings::load(8080)?;
    hq_console::build(settings).await?.run_until_stopped().await
}
