//! The HTTP floor: a minimal axum handler that parses a JSON body of the same shape as a
//! ticket report and answers a small JSON, on loopback. What the service reaches is read
//! as a share of what this reaches on the same machine in the same run.

use axum::Json;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

pub struct Floor {
    pub url: String,
}

pub async fn start() -> anyhow::Result<Floor> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/floor",
        post(|Json(body): Json<Value>| async move {
            (
                StatusCode::CREATED,
                Json(json!({"id": "floor", "echo": body.get("category")})),
            )
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("floor server stopped: {e}");
        }
    });
    Ok(Floor { url })
}
