//! Administration: minting crew tokens.

use super::AppState;
use super::V1Errors;
use super::error::ApiError;
use super::extract::{Body, Who};
use super::wire::{CrewTokenRequest, CrewTokenResponse};
use crate::domain::CrewId;
use crate::service::Action;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

/// Mints a bearer token bound to one crew. It is shown once; only its SHA-256 is stored, and
/// it survives restarts.
#[utoipa::path(
    operation_id = "mint_crew_token",
    post, path = "/v1/admin/crew-tokens", tag = "admin",
    request_body = CrewTokenRequest,
    responses((status = 201, body = CrewTokenResponse), V1Errors),
    security(("bearer" = []))
)]
pub async fn mint_crew_token(
    State(app): State<AppState>,
    who: Who,
    body: Body,
) -> Result<(StatusCode, Json<CrewTokenResponse>), ApiError> {
    who.require(Action::MintCrewToken)?;
    let crew_id = body.parse::<CrewTokenRequest>()?.crew_id()?;
    let token = app
        .dispatcher
        .mint_crew_token(&CrewId::new(crew_id.clone()))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CrewTokenResponse { token, crew_id }),
    ))
}
