//! Extractors whose every rejection is one of our JSON errors: the caller behind the bearer
//! token, the request body (read raw, parsed only once the caller is known to be allowed, so
//! a forbidden call gets 403 whatever its body), path ids and query strings.

use super::AppState;
use super::error::ApiError;
use crate::service::{Action, Dispatcher, Principal, permits};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Who(pub Principal);

impl Who {
    /// 403 unless the caller's role may do `action` at all.
    pub fn require(&self, action: Action) -> Result<&Principal, ApiError> {
        if permits(self.0.role(), action) {
            Ok(&self.0)
        } else {
            Err(ApiError::Forbidden(format!(
                "the {} role may not do this",
                self.0.role().as_str()
            )))
        }
    }
}

impl FromRequestParts<AppState> for Who {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(&parts.headers, &state.dispatcher)
            .map(Who)
            .ok_or(ApiError::Unauthorized)
    }
}

/// The caller behind the `Authorization: Bearer` header, if the token is known here.
pub fn authenticate(headers: &HeaderMap, dispatcher: &Dispatcher) -> Option<Principal> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    dispatcher.authenticate(token.trim())
}

/// A request body, read but not yet parsed.
#[derive(Debug)]
pub struct Body {
    bytes: Bytes,
    json: bool,
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(request.headers());
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else if body_timed_out(&rejection) {
                    ApiError::RequestTimeout
                } else {
                    ApiError::MalformedJson("the request body could not be read".into())
                }
            })?;
        Ok(Self { bytes, json })
    }
}

/// Whether reading the body failed because it went silent past `server.body_timeout_ms`.
pub fn body_timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

impl Body {
    /// The body as JSON of type `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if !self.json {
            return Err(ApiError::UnsupportedMediaType);
        }
        serde_json::from_slice(&self.bytes).map_err(json_error)
    }

    /// Like `parse`, but an empty body (with or without a content type) is `T::default()`:
    /// for steps whose fields are all optional, such as `ack`.
    pub fn parse_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        if self.bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        self.parse()
    }
}

fn json_error(error: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Data => ApiError::InvalidField(error.to_string()),
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::MalformedJson(format!("the body is not valid JSON: {error}"))
        }
    }
}

/// The `{id}` of a path.
#[derive(Debug)]
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Id(id))
            .map_err(|_| ApiError::NotFound("no such resource".into()))
    }
}

/// A query string of type `T`, whose rejection is a 400.
#[derive(Debug)]
pub struct QueryOf<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryOf<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| QueryOf(q))
            .map_err(|rejection| ApiError::InvalidQuery(rejection.body_text()))
    }
}

/// A listing's page size from the `limit` query parameter: `default` when absent or blank,
/// else a whole number from 1 to `max`, or an `invalid_query` error saying so.
pub fn page_limit(limit: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match limit.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::InvalidQuery(format!("limit: a whole number from 1 to {max}"))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        headers
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(&headers("application/json")));
        assert!(is_json(&headers("application/json; charset=utf-8")));
        assert!(is_json(&headers("Application/JSON")));
        assert!(is_json(&headers("application/merge-patch+json")));
        assert!(!is_json(&headers("text/plain")));
        assert!(!is_json(&headers("application/x-www-form-urlencoded")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn syntax_and_data_errors_are_told_apart() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)] // read only through Debug: the test is about the error
        struct T {
            a: f64,
        }
        let body = |text: &'static str| Body {
            bytes: Bytes::from_static(text.as_bytes()),
            json: true,
        };
        assert!(matches!(
            body("{\"a\": NaN}").parse::<T>(),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            body("{\"a\": 1, \"b\": 2}").parse::<T>(),
            Err(ApiError::InvalidField(m)) if m.contains("unknown field `b`")
        ));
        assert!(matches!(
            body("{}").parse::<T>(),
            Err(ApiError::InvalidField(m)) if m.contains("missing field `a`")
        ));
    }

    #[test]
    fn a_page_limit_is_a_whole_number_in_range_or_the_default() {
        assert_eq!(page_limit(None, 50, 500), Ok(50));
        assert_eq!(page_limit(Some("  "), 50, 500), Ok(50));
        assert_eq!(page_limit(Some(" 7 "), 50, 500), Ok(7));
        assert_eq!(page_limit(Some("500"), 50, 500), Ok(500));
        for bad in ["0", "501", "-1", "1.5", "ten"] {
            assert!(
                matches!(page_limit(Some(bad), 50, 500), Err(ApiError::InvalidQuery(m)) if m.contains("1 to 500")),
                "{bad}"
            );
        }
    }
}
