//! Administration: minting and revoking crew tokens, backing up the store.

use super::AppState;
use super::V1Errors;
use super::error::ApiError;
use super::extract::{Body, Id, Who};
use super::wire::{BackupOut, CrewTokenRequest, CrewTokenResponse, RevokedCrewTokens};
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

/// Withdraws every token minted for a crew, for a lost or stolen phone: from the answer on
/// they open nothing, on any instance and after restarts. Mint a new one for the new phone.
/// Tokens from the token file are not minted and stay (they change with the file). Revoking
/// a crew with no minted token answers `revoked: 0` and writes nothing.
#[utoipa::path(
    operation_id = "revoke_crew_tokens",
    delete, path = "/v1/admin/crews/{id}/tokens", tag = "admin",
    params(("id" = String, Path, description = "Crew id")),
    responses((status = 200, body = RevokedCrewTokens), V1Errors),
    security(("bearer" = []))
)]
pub async fn revoke_crew_tokens(
    State(app): State<AppState>,
    who: Who,
    Id(id): Id,
) -> Result<Json<RevokedCrewTokens>, ApiError> {
    who.require(Action::RevokeCrewTokens)?;
    let revoked = app
        .dispatcher
        .revoke_crew_tokens(&CrewId::new(id.clone()))
        .await?;
    Ok(Json(RevokedCrewTokens {
        crew_id: id,
        revoked,
    }))
}

/// Writes an online backup of the embedded store into `backups/` in its data directory and
/// answers once it is synced: every event committed when it began, while writes go on. To
/// restore, stop the service and put the file in place of `dispatch.redb`. A Redis store is
/// backed up with Redis's own persistence: 422 `backup_not_supported`.
#[utoipa::path(
    operation_id = "back_up_store",
    post, path = "/v1/admin/backups", tag = "admin",
    responses((status = 201, body = BackupOut), V1Errors),
    security(("bearer" = []))
)]
pub async fn back_up_store(
    State(app): State<AppState>,
    who: Who,
) -> Result<(StatusCode, Json<BackupOut>), ApiError> {
    who.require(Action::BackUpStore)?;
    let backup = app.dispatcher.back_up_store().await?;
    Ok((StatusCode::CREATED, Json(BackupOut::from(&backup))))
}
