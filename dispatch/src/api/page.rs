//! The control-room page: static files from `dashboards/control-room/`, embedded in the
//! binary so the page works where control rooms often are, offline. No token is needed for
//! the files themselves; the page asks for one and sends it only to `/v1`.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// One embedded file, served at `/ui/<path>`.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $content_type:literal),+ $(,)?) => {
        &[$(Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../../../dashboards/control-room/", $path)),
        }),+]
    };
}

const ASSETS: &[Asset] = assets!(
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "js/main.js" => "text/javascript; charset=utf-8",
    "js/api.js" => "text/javascript; charset=utf-8",
    "js/stream.js" => "text/javascript; charset=utf-8",
    "js/state.js" => "text/javascript; charset=utf-8",
    "js/format.js" => "text/javascript; charset=utf-8",
    "js/map.js" => "text/javascript; charset=utf-8",
    "js/panels.js" => "text/javascript; charset=utf-8",
    "js/details.js" => "text/javascript; charset=utf-8",
);

/// Only this origin's own files and API: no CDN, no inline script, nothing framed. The
/// token never leaves through a referrer either.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

fn serve(asset: &Asset) -> Response {
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // A new binary may bring new files under the same names: always revalidate.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

fn find(path: &str) -> Result<&'static Asset, ApiError> {
    ASSETS
        .iter()
        .find(|a| a.path == path)
        .ok_or_else(|| ApiError::NotFound("no such file".into()))
}

/// `GET /`: the page.
pub async fn index() -> Result<Response, ApiError> {
    find("index.html").map(serve)
}

/// `GET /ui/{*path}`: its styles and scripts.
pub async fn asset(Path(path): Path<String>) -> Result<Response, ApiError> {
    find(&path).map(serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_embedded() {
        // The page names its files; a file it names but the binary lacks would 404 offline.
        let text = |path: &str| std::str::from_utf8(find(path).unwrap().body).unwrap();
        let mut named = Vec::new();
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            for line in text(asset.path).lines() {
                if let Some(rest) = line.trim().strip_prefix("import ")
                    && let Some(from) = rest.split(" from ").nth(1)
                {
                    let file = from.trim_matches(|c| c == '\'' || c == '"' || c == ';');
                    named.push(format!("js/{}", file.trim_start_matches("./")));
                }
            }
        }
        for part in text("index.html").split("/ui/").skip(1) {
            named.push(part.split('"').next().unwrap().to_owned());
        }
        assert!(named.iter().any(|n| n == "js/main.js"), "{named:?}");
        assert!(named.iter().any(|n| n == "style.css"), "{named:?}");
        for name in &named {
            assert!(
                find(name).is_ok(),
                "{name} is loaded by the page but not embedded"
            );
        }
    }

    #[test]
    fn an_unknown_file_is_a_404_not_a_guess() {
        assert!(find("../Cargo.toml").is_err());
        assert!(find("js/").is_err());
    }
}
