//! The HTTP API of the v1 contract: an axum router whose handlers parse, call the
//! [`Dispatcher`], and map the answer; the OpenAPI document generated from the same handlers;
//! request metrics by route template; and the load limit that answers 429 instead of letting
//! requests pile up. The control-room page's static files are served beside it, at `/` and
//! `/ui/…`.

mod admin;
pub mod connections;
mod crews;
pub mod deadlines;
pub mod error;
mod events;
mod extract;
pub mod forward;
pub mod map;
mod ops;
mod page;
pub mod reports;
mod storm;
mod tickets;
pub mod wire;

use crate::config::ServerConfig;
use crate::metrics;
use crate::service::Dispatcher;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use error::{ApiError, ErrorBody};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest accepted request body.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// What every handler can reach: one `Arc`, because axum clones the state for every
/// extractor and middleware of every request (a profile showed dropping a struct of several
/// `Arc`s at 1.4 % of the service's CPU).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The contents of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    pub dispatcher: Arc<Dispatcher>,
    pub metrics: PrometheusHandle,
    /// The OpenAPI document, rendered once.
    pub openapi: String,
    /// Hands writes to the deciding instance (shared stores only).
    pub forwarder: Option<reqwest::Client>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dispatch",
        description = "Fault-repair dispatch for electric power distribution: 95598 tickets, \
                       crews, deadlines. Times are RFC 3339 UTC; coordinates WGS84 unless a \
                       request names another datum."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "tickets", description = "Fault tickets: agents, supervisors, and crews on their own jobs"),
        (name = "crews", description = "The crew's side: jobs, position, duty"),
        (name = "reading", description = "Stations and crews, for supervisors and admins"),
        (name = "admin", description = "Administration"),
        (name = "operations", description = "Health, readiness, metrics; no token"),
    )
)]
struct ApiDoc;

#[derive(Debug)]
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The errors a `/v1` call may answer; see [`ApiError`] for the codes.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // never built: it only describes responses for the OpenAPI document
enum V1Errors {
    #[response(
        status = 400,
        description = "malformed_json, invalid_field, invalid_query or invalid_header"
    )]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "unauthorized: no valid bearer token")]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "forbidden: this role or crew may not do this"
    )]
    Forbidden(ErrorBody),
    #[response(status = 404, description = "not_found")]
    NotFound(ErrorBody),
    #[response(status = 413, description = "payload_too_large: body over 64 KiB")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "unsupported_media_type: send JSON")]
    MediaType(ErrorBody),
    #[response(status = 429, description = "rate_limited, with Retry-After")]
    RateLimited(ErrorBody),
    #[response(
        status = 503,
        description = "store_unavailable (nothing changed), outcome_unknown (the change may \
                       have been stored), no_leader or not_ready; with Retry-After"
    )]
    Unavailable(ErrorBody),
}

fn v1_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tickets::create, tickets::list))
        .routes(routes!(tickets::get))
        .routes(routes!(tickets::cancel))
        .routes(routes!(tickets::close))
        .routes(routes!(tickets::acknowledge))
        .routes(routes!(tickets::reject))
        .routes(routes!(tickets::depart))
        .routes(routes!(tickets::arrive))
        .routes(routes!(tickets::restore))
        .routes(routes!(tickets::return_order))
        .routes(routes!(crews::jobs))
        .routes(routes!(crews::position))
        .routes(routes!(crews::duty))
        .routes(routes!(crews::list))
        .routes(routes!(crews::stations))
        .routes(routes!(reports::sla_summary))
        .routes(routes!(reports::reliability))
        .routes(routes!(admin::mint_crew_token))
        .routes(routes!(admin::revoke_crew_tokens))
        .routes(routes!(admin::back_up_store))
        .routes(routes!(events::events))
        .routes(routes!(storm::status, storm::switch))
        .routes(routes!(map::service_areas))
        .routes(routes!(map::fault_cells))
        .routes(routes!(deadlines::running))
        .routes(routes!(deadlines::reassignments))
}

fn ops_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi))
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .merge(v1_routes())
        .merge(ops_routes())
        .into_openapi()
}

/// The service's whole HTTP surface.
pub fn app(
    dispatcher: Arc<Dispatcher>,
    metrics: PrometheusHandle,
    server: &ServerConfig,
) -> Router {
    let in_flight = Arc::new(Semaphore::new(server.max_in_flight));
    let forwarder = dispatcher
        .is_shared()
        .then(|| {
            forward::client(
                dispatcher.write_timeout() + std::time::Duration::from_secs(5),
                Duration::from_millis(server.header_timeout_ms),
            )
        })
        .flatten();
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(v1_routes())
        .merge(ops_routes())
        .split_for_parts();
    // Serializing a document of plain maps and strings cannot fail; an empty object would
    // only mean a useless /openapi.json, never a failed start.
    let openapi = api.to_json().unwrap_or_else(|_| "{}".into());
    let state = AppState(Arc::new(Shared {
        dispatcher,
        metrics,
        openapi,
        forwarder,
    }));
    // The limit is outside the hand-over, so a following instance sheds load too while it
    // waits on the deciding one.
    let router = router
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            forward::route,
        ))
        .route_layer(middleware::from_fn_with_state(in_flight, limit_in_flight));
    let body_timeout = Duration::from_millis(server.body_timeout_ms);
    router
        .route("/", axum::routing::get(page::index))
        .route("/ui/{*path}", axum::routing::get(page::asset))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .layer(middleware::from_fn(track))
        .with_state(state)
}

/// Answers 429 at once when too many `/v1` requests are under way, so a slow store makes
/// clients back off instead of queueing without bound. The operations endpoints are never
/// shed.
async fn limit_in_flight(
    State(in_flight): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    if !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    let Ok(permit) = in_flight.try_acquire() else {
        return ApiError::RateLimited.into_response();
    };
    let response = next.run(request).await;
    drop(permit);
    response
}

/// Counts and times every request by route template (never the raw path, which holds ids).
async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status();
    let seconds = started.elapsed().as_secs_f64();
    metrics::http_request(&route, method, status.as_u16(), seconds);
    if status.is_server_error() {
        tracing::warn!(http.route = %route, http.method = method, http.status = status.as_u16(), "request failed");
    } else {
        tracing::debug!(http.route = %route, http.method = method, http.status = status.as_u16(), elapsed_ms = seconds * 1e3, "request");
    }
    response
}

/// Methods as a bounded label: anything unusual is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
