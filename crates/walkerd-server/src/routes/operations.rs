//! `/metrics`, `/openapi.json` and `/docs`.

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use utoipa::OpenApi;

use crate::api::ApiError;
use crate::openapi::ApiDoc;
use crate::security::DOCS_CONTENT_SECURITY_POLICY;
use crate::startup::AppState;

/// Prometheus text exposition; needs `Authorization: Bearer <WALKERD_METRICS_TOKEN>` when that
/// setting is set.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, description = "UNAUTHORIZED", body = crate::openapi::ErrorEnvelope),
    ))]
#[get("/metrics")]
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(expected) = &state.settings.metrics_token {
        let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = given.and_then(|v| v.strip_prefix("Bearer "));
        // Constant-time enough: both sides are compared in full regardless of where they differ.
        let matches = token.is_some_and(|t| equal_in_constant_time(t, expected.expose_secret()));
        if !matches {
            return Err(ApiError::Unauthorized);
        }
    }
    let text = state.metrics.render(state.store.stats());
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text))
}

fn equal_in_constant_time(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut difference = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        difference |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    difference == 0
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", content_type = "application/json")))]
#[get("/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

const DOCS_PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>walkerd API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="docs"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"##;

const DOCS_INIT: &str =
    "window.onload = () => SwaggerUIBundle({ url: \"/openapi.json\", dom_id: \"#docs\" });\n";

#[utoipa::path(get, path = "/docs", tag = "operations",
    responses(
        (status = 200, description = "Interactive API documentation", content_type = "text/html"),
    ))]
#[get("/docs")]
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, DOCS_CONTENT_SECURITY_POLICY))
        .body(DOCS_PAGE)
}

/// Swagger UI's files, compiled into the binary (Apache-2.0; see assets/swagger-ui/LICENSE).
#[get("/docs/{file}")]
pub async fn docs_asset(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (body, content_type): (&'static [u8], &str) = match file.as_str() {
        "swagger-ui.css" => (include_bytes!("../../assets/swagger-ui/swagger-ui.css"), "text/css"),
        "swagger-ui-bundle.js" => (
            include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
            "application/javascript",
        ),
        // A file of its own, so that the page's policy can forbid inline scripts.
        "init.js" => (DOCS_INIT.as_bytes(), "application/javascript"),
        _ => return Err(ApiError::NotFound("file")),
    };
    Ok(HttpResponse::Ok().content_type(content_type).body(body))
}
