//! `/metrics` as Prometheus itself reads it: the exposition after a ticket's life is fed to
//! `promtool check metrics` (Debian's `prometheus` package, which `scripts/test.sh` installs
//! when missing). A missing promtool fails the test: a skipped check is not a passed one.

mod common;

use common::{AGENT, TestApp, report};
use std::io::Write;
use std::process::{Command, Stdio};

#[tokio::test]
async fn the_metrics_exposition_passes_promtool() {
    let app = TestApp::spawn().await;
    let ticket = app.create(report()).await;
    let crew = app.crew_token_of(&ticket).await;
    app.walk(&ticket, &crew, &["ack", "depart", "arrive"]).await;
    let (status, _) = app.get("/v1/tickets/does-not-exist", AGENT).await;
    assert_eq!(status, 404);

    let exposition = common::client()
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the exposition is text");
    assert!(exposition.contains("# TYPE"), "{exposition}");

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool not found: run scripts/test.sh, which installs Debian's prometheus package",
        );
    promtool
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(exposition.as_bytes())
        .expect("writing to promtool");
    let output = promtool.wait_with_output().expect("promtool ran");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}
