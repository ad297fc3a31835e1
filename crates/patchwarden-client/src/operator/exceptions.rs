//! The operator client's exceptions (risk acceptance): request, list, show, and the data
//! owner's acknowledgement, approval, rejection and revocation.

use patchwarden_api::v1::exceptions::{
    ExceptionList, ExceptionQuery, ExceptionReason, ExceptionView, NewExceptionRequest,
};
use reqwest::Method;

use super::{OperatorClient, segment};
use crate::ClientError;

impl OperatorClient {
    /// `GET /api/v1/exceptions`.
    pub async fn exceptions(&self, query: &ExceptionQuery) -> Result<ExceptionList, ClientError> {
        self.get_query("/api/v1/exceptions", query, "exceptions")
            .await
    }

    /// `GET /api/v1/exceptions/{id}`: by id or number (`EXC-2026-0001`).
    pub async fn exception(&self, key: &str) -> Result<ExceptionView, ClientError> {
        let path = format!("/api/v1/exceptions/{}", segment(key));
        self.get(&path, "exception").await
    }

    /// `POST /api/v1/exceptions`: the caller requests it.
    pub async fn request_exception(
        &self,
        request: &NewExceptionRequest,
    ) -> Result<ExceptionView, ClientError> {
        self.call(
            Method::POST,
            "/api/v1/exceptions",
            Some(request),
            "exception",
        )
        .await
    }

    /// `POST /api/v1/exceptions/{id}/acknowledge`: as the data owner.
    pub async fn acknowledge_exception(&self, key: &str) -> Result<ExceptionView, ClientError> {
        self.decide_exception(key, "acknowledge", None).await
    }

    /// `POST /api/v1/exceptions/{id}/approve`.
    pub async fn approve_exception(&self, key: &str) -> Result<ExceptionView, ClientError> {
        self.decide_exception(key, "approve", None).await
    }

    /// `POST /api/v1/exceptions/{id}/reject`, with why.
    pub async fn reject_exception(
        &self,
        key: &str,
        reason: &str,
    ) -> Result<ExceptionView, ClientError> {
        self.decide_exception(key, "reject", Some(reason)).await
    }

    /// `POST /api/v1/exceptions/{id}/revoke`, with why.
    pub async fn revoke_exception(
        &self,
        key: &str,
        reason: &str,
    ) -> Result<ExceptionView, ClientError> {
        self.decide_exception(key, "revoke", Some(reason)).await
    }

    async fn decide_exception(
        &self,
        key: &str,
        verb: &str,
        reason: Option<&str>,
    ) -> Result<ExceptionView, ClientError> {
        let path = format!("/api/v1/exceptions/{}/{verb}", segment(key));
        let body = reason.map(|r| ExceptionReason {
            reason: r.to_owned(),
        });
        self.call(Method::POST, &path, body.as_ref(), "exception")
            .await
    }
}
