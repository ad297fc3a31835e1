//! The operator client for change requests (`/api/v1/changes`) and the calendar of
//! maintenance windows and freezes (`/api/v1/calendar`): a second `impl OperatorClient`.
//!
//! A change is addressed by its number (`PCR-2026-0001`); every action answers the change as it
//! stands after it. A refusal by the change state machine (the requester approving their own
//! change, a freeze …) arrives as the server's 409 problem with its reason in `detail`.

use patchwarden_api::v1::changes::{
    CALENDAR_PATH, CHANGES_PATH, CalendarEntryView, CalendarSpec, ChangeQuery, ChangeView,
    NewChangeRequest, Promote, Reason, ScheduleRequest,
};
use reqwest::Method;

use crate::ClientError;
use crate::operator::{Body, OperatorClient, segment};

/// An action on a change that takes no body (`POST /api/v1/changes/{number}/{action}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    Submit,
    Approve,
    Authorise,
    RecordTesting,
    Close,
}

impl ChangeAction {
    /// The route's last segment.
    pub fn path(self) -> &'static str {
        match self {
            ChangeAction::Submit => "submit",
            ChangeAction::Approve => "approve",
            ChangeAction::Authorise => "authorise",
            ChangeAction::RecordTesting => "record-testing",
            ChangeAction::Close => "close",
        }
    }
}

/// The path of one change, or of an action on it.
pub(crate) fn change_path(number: &str, action: Option<&str>) -> String {
    match action {
        Some(a) => format!("{CHANGES_PATH}/{}/{a}", segment(number)),
        None => format!("{CHANGES_PATH}/{}", segment(number)),
    }
}

/// The path of one calendar entry.
pub(crate) fn calendar_path(name: &str) -> String {
    format!("{CALENDAR_PATH}/{}", segment(name))
}

impl OperatorClient {
    /// `POST /api/v1/changes`: a new draft (201).
    pub async fn create_change(
        &self,
        request: &NewChangeRequest,
    ) -> Result<ChangeView, ClientError> {
        self.call(Method::POST, CHANGES_PATH, Some(request), "change")
            .await
    }

    /// `PUT /api/v1/changes/{number}`: replaces a draft's form.
    pub async fn edit_change(
        &self,
        number: &str,
        request: &NewChangeRequest,
    ) -> Result<ChangeView, ClientError> {
        self.call(
            Method::PUT,
            &change_path(number, None),
            Some(request),
            "change",
        )
        .await
    }

    /// `GET /api/v1/changes`: newest first.
    pub async fn changes(&self, query: &ChangeQuery) -> Result<Vec<ChangeView>, ClientError> {
        self.get_query(CHANGES_PATH, query, "changes").await
    }

    /// `GET /api/v1/changes/{number}`.
    pub async fn change(&self, number: &str) -> Result<ChangeView, ClientError> {
        self.get(&change_path(number, None), "change").await
    }

    /// `POST /api/v1/changes/{number}/{submit|approve|authorise|record-testing|close}`.
    pub async fn change_action(
        &self,
        number: &str,
        action: ChangeAction,
    ) -> Result<ChangeView, ClientError> {
        let path = change_path(number, Some(action.path()));
        // An empty object rather than no body: the server takes either.
        self.call(Method::POST, &path, Some(&serde_json::json!({})), "change")
            .await
    }

    /// `POST /api/v1/changes/{number}/schedule`: into the hosts' first window from
    /// `not_before` (now when absent) that no freeze covers.
    pub async fn schedule_change(
        &self,
        number: &str,
        request: &ScheduleRequest,
    ) -> Result<ChangeView, ClientError> {
        let path = change_path(number, Some("schedule"));
        self.call(Method::POST, &path, Some(request), "change")
            .await
    }

    /// `POST /api/v1/changes/{number}/promote`: releases a gated ring of the rollout.
    pub async fn promote_change(
        &self,
        number: &str,
        ring: &str,
    ) -> Result<ChangeView, ClientError> {
        let body = Promote {
            ring: ring.to_owned(),
        };
        let path = change_path(number, Some("promote"));
        self.call(Method::POST, &path, Some(&body), "change").await
    }

    /// `POST /api/v1/changes/{number}/reject`.
    pub async fn reject_change(
        &self,
        number: &str,
        reason: &str,
    ) -> Result<ChangeView, ClientError> {
        self.reason_action(number, "reject", reason).await
    }

    /// `POST /api/v1/changes/{number}/cancel`.
    pub async fn cancel_change(
        &self,
        number: &str,
        reason: &str,
    ) -> Result<ChangeView, ClientError> {
        self.reason_action(number, "cancel", reason).await
    }

    async fn reason_action(
        &self,
        number: &str,
        action: &str,
        reason: &str,
    ) -> Result<ChangeView, ClientError> {
        let body = Reason {
            reason: reason.to_owned(),
        };
        let path = change_path(number, Some(action));
        self.call(Method::POST, &path, Some(&body), "change").await
    }

    /// `GET /api/v1/calendar`: windows and freezes with their next occurrences.
    pub async fn calendar(&self) -> Result<Vec<CalendarEntryView>, ClientError> {
        self.get(CALENDAR_PATH, "calendar").await
    }

    /// `PUT /api/v1/calendar/{name}`: creates or replaces an entry.
    pub async fn put_calendar_entry(
        &self,
        name: &str,
        spec: &CalendarSpec,
    ) -> Result<CalendarEntryView, ClientError> {
        self.call(
            Method::PUT,
            &calendar_path(name),
            Some(spec),
            "calendar entry",
        )
        .await
    }

    /// `DELETE /api/v1/calendar/{name}` (204).
    pub async fn delete_calendar_entry(&self, name: &str) -> Result<(), ClientError> {
        self.send::<()>(Method::DELETE, &calendar_path(name), None, Body::None)
            .await?
            .ok()
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_numbers_and_names_in_their_segment() {
        assert_eq!(
            change_path("PCR-2026-0001", None),
            "/api/v1/changes/PCR-2026-0001"
        );
        assert_eq!(
            change_path("PCR-2026-0001", Some(ChangeAction::RecordTesting.path())),
            "/api/v1/changes/PCR-2026-0001/record-testing"
        );
        assert_eq!(change_path("../users", None), "/api/v1/changes/..%2Fusers");
        assert_eq!(
            calendar_path("patch tuesday"),
            "/api/v1/calendar/patch%20tuesday"
        );
    }
}
