//! A real crash: the city-agent-api process is killed with SIGKILL in the middle of delivering a
//! directive (wherever it happens to be: between XREADGROUP and the commit, between the commit
//! and XACK, or mid-transaction), then started again. Every task is delivered exactly once and
//! the counts are exact.

use std::time::Duration;

use reqwest::Method;

use crate::helpers::*;

fn spawn_field(sys: &System) -> tokio::process::Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    fieldops_core::testing::service_command(env!("CARGO_BIN_EXE_field-process"), &sys.settings, port)
        // one stream entry at a time, reclaim quickly after the restart
        .env("FIELDOPS__DELIVERY__READ_COUNT", "1")
        .env("FIELDOPS__DELIVERY__RECLAIM_IDLE_MS", "500")
        .env("FIELDOPS__DELIVERY__BLOCK_MS", "200")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("city-agent-api starts")
}

#[tokio::test]
async fn a_delivery_process_killed_with_sigkill_mid_delivery_loses_and_doubles_nothing() {
    // hq-console and the dispatcher in-process; delivery only in the child process
    let sys = System::start_with(true, false).await;
    let world = world(&sys).await;
    accounts(&sys, &world, 250).await;
    let (s, d) = sys.hq(Method::POST, "/api/v1/directives", &world.strategist, Some(directive(Some("gmv_30d >= 0"), &[]))).await;
    assert_eq!(s, 202, "{d}");
    let id = d["id"].as_str().unwrap().to_string();
    sys.wait_count(&format!("select count(*) from task where directive_id = '{id}'"), 1000).await;
    sys.wait_count("select count(*) from outbox", 0).await;
    let delivered = format!("select count(*) from task where directive_id = '{id}' and status = 'delivered'");

    let mut first = spawn_field(&sys);
    // kill it as soon as it is part-way through (200 stream entries of 5 tasks each)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = sys.count(&delivered).await;
        if n >= 50 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "delivery never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let at_kill = sys.count(&delivered).await;
    assert!(at_kill < 1000, "killed part-way: {at_kill} of 1000 delivered");

    let mut second = spawn_field(&sys);
    sys.wait_count(&delivered, 1000).await;
    let d = sys.wait_counts(&id, &[("queued", 0), ("delivered", 1000)]).await;
    assert_eq!(d["by_city"].as_array().unwrap().len(), 2);
    second.start_kill().unwrap();
    let _ = second.wait().await;
    sys.stop().await;
}
