//! The conformance story: one suite of async tests that every [`Store`] backend must pass, so
//! that SQLite and PostgreSQL can never drift apart.
//!
//! Each test is a function named after what it pins, taking a [`TestDatabase`] (a fresh,
//! empty database that can be opened more than once, as a restarted server would). A backend
//! runs the whole suite with one line in its test file:
//!
//! ```text
//! patchwarden_store::conformance_tests!(crate::test_database);
//! ```
//!
//! where `test_database` is an `async fn() -> Option<Arc<dyn TestDatabase>>` (`None` when the
//! backend cannot run here, after saying why on stderr). The macro lists every test, so a test
//! added here runs on every backend at once.
//!
//! These functions assert (they are tests); nothing in the store's own code calls them.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{Result, Store};

mod audit;
mod changes;
mod check_in;
mod exceptions;
mod feeds;
mod findings;
pub mod fixtures;
mod host_state;
mod hosts;
mod incidents;
mod inventory;
mod jobs;
mod notifications;
mod operators;
mod tokens;

pub use audit::*;
pub use changes::*;
pub use check_in::*;
pub use exceptions::*;
pub use feeds::*;
pub use findings::*;
pub use host_state::*;
pub use hosts::*;
pub use incidents::*;
pub use inventory::*;
pub use jobs::*;
pub use notifications::*;
pub use operators::*;
pub use tokens::*;

/// One test's database.
#[async_trait]
pub trait TestDatabase: Send + Sync + 'static {
    /// Opens a store on this test's database. Every call opens it anew, as a restarted
    /// server would, with migrations applied at opening.
    async fn open(&self) -> Result<Arc<dyn Store>>;

    /// Removes the database (PostgreSQL drops the test's schema; SQLite's temporary directory
    /// goes with the value).
    async fn teardown(&self) {}
}

/// Runs one conformance test on `db`, tearing the database down whether the test passed or
/// not, then reporting its failure. `None` (the backend is not available here) runs nothing.
pub async fn run<F, Fut>(db: Option<Arc<dyn TestDatabase>>, test: F)
where
    F: FnOnce(Arc<dyn TestDatabase>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = db else { return };
    // The test runs in its own task so that a failed assertion is caught as a join error and
    // the database is still torn down before the failure is passed on.
    let outcome = tokio::spawn(test(db.clone())).await;
    db.teardown().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the conformance test did not finish: {e}"),
        }
    }
}

/// Opens `db`, failing the test with the store's own error when it cannot.
pub async fn open(db: &Arc<dyn TestDatabase>) -> Arc<dyn Store> {
    match db.open().await {
        Ok(s) => s,
        Err(e) => panic!("cannot open the test database: {e}"),
    }
}

/// Declares one `#[tokio::test]` per conformance test, each on a fresh database from
/// `$setup` (an `async fn() -> Option<Arc<dyn TestDatabase>>`). The calling crate needs
/// `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path) => {
        $crate::conformance_tests!(@each $setup;
            enrollment_tokens_round_trip,
            enrollment_refuses_unknown_expired_revoked_and_used_up_tokens,
            two_enrolments_racing_for_the_last_use_exactly_one_wins,
            enrolling_an_existing_host_id_changes_nothing,
            enrolling_a_key_a_host_already_has_changes_nothing,
            hosts_round_trip_and_filter,
            a_cloned_host_is_found_by_its_machine_id,
            check_in_records_facts_and_audits_only_changed_facts,
            a_replayed_nonce_is_refused_and_expired_nonces_are_purged,
            host_state_changes_are_audited_once_and_retired_is_final,
            the_check_in_counter_only_moves_forward_across_restarts_and_races,
            a_check_in_leases_jobs_resends_held_ones_and_records_facts,
            a_refused_check_in_keeps_nothing,
            check_ins_racing_with_one_counter_accept_exactly_one,
            inventory_replacement_round_trips_with_its_digest,
            inventory_replacement_is_atomic_for_concurrent_readers,
            advisories_upsert_by_id_and_count,
            advisories_are_read_by_ids,
            many_advisories_are_read_back_whole_in_id_order,
            findings_open_keep_and_close_with_the_fixing_version,
            a_reclassified_finding_keeps_its_first_seen_and_gains_history,
            a_finding_that_comes_back_opens_anew_and_keeps_the_closed_one,
            findings_filter_by_state_class_due_date_and_host,
            open_findings_due_before_a_time_follow_every_sync,
            hosts_with_the_same_finding_share_its_body_and_each_keeps_its_own_changes,
            hosts_syncing_the_same_new_findings_at_once_all_open_them,
            a_large_sync_stores_every_finding_as_given,
            an_uploaded_inventory_and_its_findings_are_stored_together_or_not_at_all,
            an_upload_records_its_nonce_with_it_and_a_replay_changes_nothing,
            jobs_round_trip_and_lease_oldest_first,
            a_job_leased_by_host_a_cannot_be_reported_by_host_b,
            job_reports_are_idempotent_and_a_finished_job_keeps_its_outcome,
            expired_leases_are_leased_again,
            concurrent_leases_hand_each_job_to_one_caller,
            every_change_appends_an_audit_event_and_the_chain_verifies,
            concurrent_writers_never_fork_the_audit_chain,
            appended_events_hash_alike_whatever_the_entry_holds,
            a_change_whose_audit_append_fails_leaves_no_change,
            migrations_are_applied_once_and_reopening_is_idempotent,
            overlong_values_are_refused_before_anything_is_written,
            feed_sources_round_trip_and_only_changes_are_audited,
            a_feed_import_applies_whole_or_not_at_all,
            failed_runs_keep_the_data_in_force_and_say_why,
            enrichment_is_kept_per_source_and_replaced_whole,
            the_scheduler_lease_has_one_holder_until_it_expires,
            triage_items_enter_once_and_their_classification_is_audited,
            racing_enqueues_queue_each_vulnerability_once,
            manual_checks_and_sync_requests_are_recorded,
            users_round_trip_and_names_are_unique,
            the_last_enabled_admin_can_be_neither_demoted_nor_disabled,
            failed_logins_lock_the_user_until_the_window_ends,
            sessions_end_at_logout_with_a_new_password_or_a_disabled_user,
            api_tokens_hold_at_most_their_users_roles_and_are_revoked_once,
            changes_are_numbered_per_year_and_found_by_id_or_number,
            a_change_update_names_its_revision_and_creates_its_jobs_atomically,
            calendar_entries_are_put_listed_and_deleted_with_their_events,
            exceptions_are_numbered_listed_and_changed_with_one_audit_event_each,
            an_exception_naming_nothing_is_refused_before_anything_is_written,
            two_approvals_racing_for_one_exception_one_wins,
            notifications_are_queued_once_per_key_and_destination_with_the_cursor,
            notification_claims_go_to_one_sender_and_retries_wait_their_time,
            incidents_are_numbered_listed_and_resolved_once_with_their_events,
            an_incident_with_a_missing_or_overlong_text_is_refused_before_anything_is_written,
            two_resolutions_racing_for_one_incident_one_wins_and_reports_get_distinct_numbers,
        );
    };
    (@each $setup:path; $($name:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::conformance::run($setup().await, $crate::conformance::$name).await;
            }
        )+
    };
}
