//! `GET /v1/events`: the live feed as Server-Sent Events, one per committed state change,
//! for control-room pages. Each carries the ticket and crew it touched as they stand now, so
//! a page redraws without asking again; phone numbers are never in it.

use super::AppState;
use super::V1Errors;
use super::error::ApiError;
use super::extract::Who;
use super::wire::LiveEventOut;
use crate::service::{Action, Received, Subscription};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use std::convert::Infallible;

/// Committed events from the moment of connecting, oldest first. The SSE `event` field is
/// the event's name (`dispatched`, `crew_position`, …) and `id` its sequence number; a
/// watcher that falls too far behind gets a `missed` event with the count and should reload
/// what it shows. The stream ends when the service shuts down: reconnect and reload.
#[utoipa::path(
    operation_id = "events",
    get, path = "/v1/events", tag = "reading",
    responses(
        (status = 200, description = "text/event-stream; each data field is a LiveEventOut", content_type = "text/event-stream", body = LiveEventOut),
        V1Errors,
    ),
    security(("bearer" = []))
)]
pub async fn events(
    State(app): State<AppState>,
    who: Who,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    who.require(Action::WatchEvents)?;
    let stream = futures_util::stream::unfold(app.dispatcher.subscribe(), next_event);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn next_event(
    mut subscription: Subscription,
) -> Option<(Result<Event, Infallible>, Subscription)> {
    let event = match subscription.next().await? {
        Received::Event(live) => {
            let out = LiveEventOut::from(live.as_ref());
            let sse = Event::default()
                .event(live.event.kind.name())
                .id(live.seq.to_string());
            // Serializing plain strings and numbers cannot fail; if it ever did, the watcher
            // is told it missed one rather than the stream ending.
            sse.json_data(&out)
                .unwrap_or_else(|_| Event::default().event("missed").data("1"))
        }
        Received::Missed(count) => Event::default().event("missed").data(count.to_string()),
    };
    Some((Ok(event), subscription))
}
