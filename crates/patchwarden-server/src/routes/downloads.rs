//! `GET /downloads/{file}`: an agent package from `downloads.dir`, without authentication (a
//! host that runs the install script has no credential yet). The SHA-256 the script checks is
//! also sent in `x-patchwarden-sha256`, and the length in `Content-Length`, so a download cut
//! short is seen as such. Whatever is not served — no downloads directory, a name that is not
//! a plain file name (`..`, an absolute or encoded path), a symlink, a missing file — is the
//! same `not-found` problem document (see `crate::downloads` for what is checked).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use patchwarden_api::v1::problem::Problem;

use crate::downloads::{Format, SHA256_HEADER};
use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/downloads/{file}",
    tag = "probes",
    params(("file" = String, Path, description = "A package file name")),
    responses(
        (status = 200, description = "The package", content_type = "application/octet-stream"),
        (status = 404, description = "Not served", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn download(
    State(state): State<Arc<AppState>>,
    file: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    // A path segment that does not decode (invalid percent-encoding or UTF-8) names no file.
    let Ok(Path(name)) = file else {
        return Err(ApiError::NotFound);
    };
    let Some(downloads) = state.downloads.clone() else {
        return Err(ApiError::NotFound);
    };
    let opened = tokio::task::spawn_blocking(move || downloads.open_package(&name))
        .await
        .map_err(|e| ApiError::Internal(format!("the download task failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or(ApiError::NotFound)?;
    tracing::info!(file = %opened.name, bytes = opened.len, "package download");
    let media_type =
        Format::of(&opened.name).map_or("application/octet-stream", Format::media_type);
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(opened.file));
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(opened.len));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&opened.sha256) {
        headers.insert(SHA256_HEADER, v);
    }
    Ok(response)
}
