//! Response headers that keep browsers from misusing walkerd's answers, and CORS.
//!
//! walkerd serves JSON to API clients, not pages to browsers (apart from `/docs`), so every
//! response says so: no MIME sniffing, no framing, no referrer, no caching of answers that carry
//! user data, and a content security policy that allows nothing. `/docs` sets its own, looser
//! policy, since Swagger UI needs its script and styles.
//!
//! CORS is off unless `WALKERD_CORS_ORIGINS` lists origins: a browser page on another origin then
//! gets no CORS headers and cannot read responses. Tokens travel in the `Authorization` header,
//! never in cookies, so CORS is about reading, not about forged requests.

use actix_cors::Cors;
use actix_web::http::{header, Method};
use actix_web::middleware::{Condition, DefaultHeaders};

/// The headers every response gets (a handler's own value wins).
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'"))
        .add((header::CACHE_CONTROL, "no-store"))
        .add(("cross-origin-resource-policy", "same-origin"))
}

/// The policy of `/docs`: its own script and styles (Swagger UI sets inline styles).
pub const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

/// CORS for `origins` (`["*"]`: any origin); no origins, no CORS.
pub fn cors(origins: &[String]) -> Condition<Cors> {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(3600);
    for origin in origins {
        cors = if origin == "*" { cors.allow_any_origin() } else { cors.allowed_origin(origin) };
    }
    Condition::new(!origins.is_empty(), cors)
}
