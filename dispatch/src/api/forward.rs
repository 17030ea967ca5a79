//! Several instances on one shared store: the instance that holds the region's lease decides,
//! so another one hands it every `/v1` write as received and relays the answer. Reads are
//! answered here, once this instance has followed the log as far as it went when the read
//! came in (the deciding instance answers a write only once it is in the log): every
//! instance answers alike, and a read after a write sees it, whichever instance each lands on.
//!
//! A write that cannot be handed over is answered 503 with `Retry-After`: `no_leader` when
//! nothing was sent (no holder known, or it cannot be reached), `outcome_unknown` when the
//! request may have reached it (a retry with the same `Idempotency-Key` is safe). Never a
//! 2xx that did not come from the deciding instance.

use super::error::ApiError;
use super::{AppState, BODY_LIMIT_BYTES};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Marks a request handed over once, so it is never handed on again.
pub const FORWARDED: HeaderName = HeaderName::from_static("x-dispatch-forwarded");

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Builds the client that hands writes over; `None` only if the TLS-free client cannot be
/// built, and then writes on a following instance answer `no_leader`.
///
/// `header_timeout` is `server.header_timeout_ms`, which the instances share: the deciding
/// instance closes a connection idle that long, so the client lets its idle connections go
/// at half of it. Reusing one the other side is closing at that moment would fail a write
/// that may already be on its way: an `outcome_unknown` for no reason.
pub fn client(
    timeout: std::time::Duration,
    header_timeout: std::time::Duration,
) -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(256)
        .pool_idle_timeout(header_timeout / 2)
        .build()
        .inspect_err(
            |error| tracing::error!(%error, "cannot build the client that hands writes over"),
        )
        .ok()
}

pub async fn route(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let dispatcher = &app.dispatcher;
    // Operations endpoints answer for this instance, whatever the store does.
    if !dispatcher.is_shared() || !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    if reads {
        if let Err(error) = dispatcher.catch_up().await {
            return ApiError::from(error).into_response();
        }
        return next.run(request).await;
    }
    if dispatcher.decides() {
        return next.run(request).await;
    }
    if request.headers().contains_key(&FORWARDED) {
        // Handed over to an instance that no longer decides: the holder changed meanwhile.
        return ApiError::NoLeader.into_response();
    }
    // A caller no instance knows gets 401 here, as the deciding one would answer: not a 503
    // while that one is away. Tokens reach every instance through the log, so a token not
    // known yet (minted a moment ago) is looked up again once this instance has caught up.
    if super::extract::authenticate(request.headers(), dispatcher).is_none() {
        if let Err(error) = dispatcher.catch_up().await {
            return ApiError::from(error).into_response();
        }
        if super::extract::authenticate(request.headers(), dispatcher).is_none() {
            return ApiError::Unauthorized.into_response();
        }
    }
    match (dispatcher.leader_url(), &app.forwarder) {
        (Some(leader), Some(client)) => hand_over(client, &leader, request).await,
        _ => ApiError::NoLeader.into_response(),
    }
}

async fn hand_over(client: &reqwest::Client, leader: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, BODY_LIMIT_BYTES).await {
        Ok(body) => body,
        Err(error) if super::extract::body_timed_out(&error) => {
            return ApiError::RequestTimeout.into_response();
        }
        Err(_) => return ApiError::PayloadTooLarge.into_response(),
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = client
        .request(parts.method.clone(), format!("{leader}{path}"))
        .header(FORWARDED, "1")
        .body(body);
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE, IDEMPOTENCY_KEY] {
        if let Some(value) = parts.headers.get(&name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(error) if error.is_connect() => {
            tracing::warn!(%error, leader, "the deciding instance cannot be reached");
            return ApiError::NoLeader.into_response();
        }
        Err(error) => {
            tracing::warn!(%error, leader, "a write handed over got no answer: its outcome is unknown");
            return ApiError::OutcomeUnknown.into_response();
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let Ok(bytes) = answer.bytes().await else {
        tracing::warn!(
            leader,
            "the answer to a write handed over was cut off: its outcome is unknown"
        );
        return ApiError::OutcomeUnknown.into_response();
    };
    let mut response = Response::builder().status(status);
    for name in [
        header::CONTENT_TYPE,
        header::LOCATION,
        header::RETRY_AFTER,
        header::WWW_AUTHENTICATE,
    ] {
        if let Some(value) = headers.get(&name) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(bytes))
        .unwrap_or_else(|_| ApiError::Internal.into_response())
}
