//! Operators as the store keeps them: users with their roles and password hashes, browser
//! sessions, and API tokens for scripts — and the rules every backend applies to them, written
//! once here as pure functions.
//!
//! The store never sees a password or a secret: users carry an argon2 hash (a PHC string the
//! server made), and sessions and API tokens are found by the SHA-256 of their secret, which is
//! random and long enough that a fast hash is all it needs. A copy of the database therefore
//! lets nobody log in.
//!
//! Two rules are the store's to keep, because only a transaction can keep them when two
//! administrators act at once: **the last enabled admin can be neither demoted nor disabled**
//! ([`StoreError::LastAdmin`]), and **an API token never holds a role its user lacks** (checked
//! against the user row locked in the same transaction). Who may ask for a change (nobody
//! changes their own roles) is the server's rule, which knows who is asking.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::limits::{MAX_NAME, check_len, check_name};
use crate::token::SecretHash;

/// The longest user name.
pub const MAX_USERNAME: usize = 64;
/// The longest password hash (an argon2 PHC string is about 100 bytes).
pub const MAX_PASSWORD_HASH: usize = 512;
/// The most host groups a provider may be scoped to.
pub const MAX_GROUPS: usize = 64;

/// What an operator may do. Each route of the server names the roles it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including users and roles.
    Admin,
    /// The patch officer: runs the patch process day to day (enrollment, hosts, changes).
    Officer,
    /// Approves change requests.
    Approver,
    /// Authorises approved change requests.
    Authoriser,
    /// The security team: triage of advisories and findings.
    Security,
    /// Reads everything, changes nothing.
    Auditor,
    /// A service provider: sees and acts on only the hosts of its own groups.
    Provider,
}

impl Role {
    /// Every role, in the order they are listed to people.
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Officer,
        Role::Approver,
        Role::Authoriser,
        Role::Security,
        Role::Auditor,
        Role::Provider,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Officer => "officer",
            Role::Approver => "approver",
            Role::Authoriser => "authoriser",
            Role::Security => "security",
            Role::Auditor => "auditor",
            Role::Provider => "provider",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a user name: 1 to 64 bytes of ASCII letters, digits and `.`, `_`, `-`, `@`. Names
/// appear in the audit chain as the actor, so nothing that could pass for punctuation of a log
/// line (spaces, colons, control characters) is allowed in them.
pub fn check_username(name: &str) -> Result<()> {
    check_name("username", name, MAX_USERNAME)?;
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
    {
        return Err(StoreError::Invalid {
            field: "username",
            reason: format!("{c:?} is not allowed (letters, digits, '.', '_', '-', '@' are)"),
        });
    }
    Ok(())
}

/// Checks a set of roles and the groups that scope them: at least one role; a provider is
/// scoped to at least one group and holds no other role (its scope would otherwise be
/// ambiguous: an auditor sees every host, a provider only its own); groups scope providers
/// only.
pub fn check_roles(roles: &BTreeSet<Role>, groups: &BTreeSet<String>) -> Result<()> {
    let bad = |reason: &str| {
        Err(StoreError::Invalid {
            field: "roles",
            reason: reason.into(),
        })
    };
    if roles.is_empty() {
        return bad("a user holds at least one role");
    }
    if roles.contains(&Role::Provider) {
        if roles.len() > 1 {
            return bad("a provider holds no other role: its scope is its groups");
        }
        if groups.is_empty() {
            return bad("a provider is scoped to at least one host group");
        }
    } else if !groups.is_empty() {
        return bad("host groups scope a provider only");
    }
    if groups.len() > MAX_GROUPS {
        return bad("too many host groups");
    }
    for g in groups {
        check_name("group", g, MAX_NAME)?;
    }
    Ok(())
}

/// A user to be created.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    pub id: Uuid,
    pub username: String,
    /// The argon2 hash of the password, as a PHC string.
    pub password_hash: String,
    pub roles: BTreeSet<Role>,
    /// The host groups a provider is scoped to (empty for every other role).
    pub groups: BTreeSet<String>,
    /// The password was made for the user (by `admin bootstrap` or an admin): it must be
    /// changed at first login before anything else is allowed.
    pub must_change_password: bool,
    /// Who made the user (an operator's name, or `bootstrap`).
    pub created_by: String,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

impl NewUser {
    pub fn check(&self) -> Result<()> {
        check_username(&self.username)?;
        check_name("password hash", &self.password_hash, MAX_PASSWORD_HASH)?;
        check_roles(&self.roles, &self.groups)?;
        check_name("user created_by", &self.created_by, crate::limits::MAX_ID)
    }
}

/// A stored user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub roles: BTreeSet<Role>,
    pub groups: BTreeSet<String>,
    pub must_change_password: bool,
    pub disabled_at: Option<Timestamp>,
    /// Failed logins since the last success or lock.
    pub failed_logins: u32,
    /// Logins are refused until then, whatever the password.
    pub locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub created_by: String,
    pub password_changed_at: Timestamp,
}

impl std::fmt::Debug for User {
    /// Without the password hash: it has no business in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("groups", &self.groups)
            .field("must_change_password", &self.must_change_password)
            .field("disabled_at", &self.disabled_at)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

impl User {
    pub fn is_enabled(&self) -> bool {
        self.disabled_at.is_none()
    }

    /// Whether the user is an enabled admin: one of those the last-admin rule counts.
    pub fn is_active_admin(&self) -> bool {
        self.is_enabled() && self.roles.contains(&Role::Admin)
    }

    /// Until when logins are refused at `now`, if they are.
    pub fn locked_at(&self, now: Timestamp) -> Option<Timestamp> {
        self.locked_until.filter(|until| *until > now)
    }
}

/// A change to a user.
#[derive(Clone, PartialEq, Eq)]
pub enum UserChange {
    /// Replace the roles and the groups that scope them.
    Roles {
        roles: BTreeSet<Role>,
        groups: BTreeSet<String>,
    },
    /// Refuse every login, session and API token of the user from now on.
    Disable,
    Enable,
    /// A new password hash; ends every session of the user and lifts a lock.
    Password {
        password_hash: String,
        must_change: bool,
    },
}

impl std::fmt::Debug for UserChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserChange::Roles { roles, groups } => f
                .debug_struct("Roles")
                .field("roles", roles)
                .field("groups", groups)
                .finish(),
            UserChange::Disable => f.write_str("Disable"),
            UserChange::Enable => f.write_str("Enable"),
            UserChange::Password { must_change, .. } => f
                .debug_struct("Password")
                .field("must_change", must_change)
                .finish_non_exhaustive(),
        }
    }
}

impl UserChange {
    pub fn check(&self) -> Result<()> {
        match self {
            UserChange::Roles { roles, groups } => check_roles(roles, groups),
            UserChange::Password { password_hash, .. } => {
                check_name("password hash", password_hash, MAX_PASSWORD_HASH)
            }
            UserChange::Disable | UserChange::Enable => Ok(()),
        }
    }
}

/// What a change does to a user, decided before a backend writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserEffect {
    /// Whether anything changes (a repeated change appends nothing).
    pub changes: bool,
    /// Whether an enabled admin stops being one: the backend must then find another.
    pub removes_admin: bool,
    /// Whether the user's sessions end (a new password, a disabled user).
    pub ends_sessions: bool,
}

/// What `change` does to `before` (see [`UserEffect`]).
pub fn decide_user_change(before: &User, change: &UserChange) -> UserEffect {
    match change {
        UserChange::Roles { roles, groups } => UserEffect {
            changes: *roles != before.roles || *groups != before.groups,
            removes_admin: before.is_active_admin() && !roles.contains(&Role::Admin),
            ends_sessions: false,
        },
        UserChange::Disable => UserEffect {
            changes: before.is_enabled(),
            removes_admin: before.is_active_admin(),
            ends_sessions: before.is_enabled(),
        },
        UserChange::Enable => UserEffect {
            changes: !before.is_enabled(),
            removes_admin: false,
            ends_sessions: false,
        },
        UserChange::Password { .. } => UserEffect {
            changes: true,
            removes_admin: false,
            ends_sessions: true,
        },
    }
}

/// The audit entry's `before` and `after` for a change, where the caller left them empty:
/// roles, groups and standing — never a hash.
pub fn user_change_audit(
    before: &User,
    change: &UserChange,
    mut entry: patchwarden_core::audit::AuditEntry,
) -> patchwarden_core::audit::AuditEntry {
    let view = |roles: &BTreeSet<Role>, groups: &BTreeSet<String>, enabled: bool| serde_json::json!({ "roles": roles, "groups": groups, "enabled": enabled });
    let was = view(&before.roles, &before.groups, before.is_enabled());
    let now = match change {
        UserChange::Roles { roles, groups } => view(roles, groups, before.is_enabled()),
        UserChange::Disable => view(&before.roles, &before.groups, false),
        UserChange::Enable => view(&before.roles, &before.groups, true),
        UserChange::Password { must_change, .. } => {
            serde_json::json!({ "password": "changed", "must_change_password": must_change })
        }
    };
    if entry.before.is_none() && !matches!(change, UserChange::Password { .. }) {
        entry.before = Some(was);
    }
    if entry.after.is_none() {
        entry.after = Some(now);
    }
    entry
}

/// How failed logins lock a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the user (at least 1).
    pub max_failures: u32,
    /// How long a lock lasts.
    pub lock_for: SignedDuration,
}

/// What one more failed login does to `user` at `now`: the new failure count and lock, and
/// whether this failure is the one that locks. A lock ends on its own; the count starts again
/// from zero after it.
pub fn after_failed_login(
    user: &User,
    policy: LockoutPolicy,
    now: Timestamp,
) -> (u32, Option<Timestamp>, bool) {
    if let Some(until) = user.locked_at(now) {
        // Already locked: the failure neither counts nor extends the lock, so an attacker
        // cannot keep an account locked for ever with one try per window.
        return (user.failed_logins, Some(until), false);
    }
    let failed = user.failed_logins.saturating_add(1);
    if failed >= policy.max_failures.max(1) {
        let until = now.checked_add(policy.lock_for).unwrap_or(now);
        (0, Some(until), true)
    } else {
        (failed, None, false)
    }
}

/// A browser session to be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The SHA-256 of the cookie's secret.
    pub id_hash: SecretHash,
    pub user: Uuid,
    pub expires_at: Timestamp,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_hash: SecretHash,
    pub user: Uuid,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// An API token to be created.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiToken {
    pub id: Uuid,
    pub secret_hash: SecretHash,
    pub user: Uuid,
    /// What the token is for, for people.
    pub name: String,
    /// At most the roles of its user (the store checks it).
    pub roles: BTreeSet<Role>,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for NewApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiToken")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl NewApiToken {
    pub fn check(&self) -> Result<()> {
        check_name("API token name", &self.name, MAX_NAME)?;
        if self.roles.is_empty() {
            return Err(StoreError::Invalid {
                field: "API token roles",
                reason: "a token holds at least one role".into(),
            });
        }
        Ok(())
    }
}

/// Refuses token roles that the user does not hold.
pub fn check_token_roles(user: &User, roles: &BTreeSet<Role>) -> Result<()> {
    if let Some(extra) = roles.iter().find(|r| !user.roles.contains(r)) {
        return Err(StoreError::Invalid {
            field: "API token roles",
            reason: format!(
                "user {} does not hold the role {extra}: a token has the roles of its user or \
                 fewer",
                user.username
            ),
        });
    }
    if !user.is_enabled() {
        return Err(StoreError::Invalid {
            field: "API token user",
            reason: format!("user {} is disabled", user.username),
        });
    }
    Ok(())
}

/// A stored API token. Never carries the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: Uuid,
    pub user: Uuid,
    pub name: String,
    pub roles: BTreeSet<Role>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl ApiToken {
    /// Whether the token works at `now`.
    pub fn usable_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// Roles as stored: a JSON array of their names.
pub fn roles_to_db(roles: &BTreeSet<Role>) -> Result<String> {
    crate::codec::to_json("roles", roles, 1024)
}

/// Groups as stored: a JSON array.
pub fn groups_to_db(groups: &BTreeSet<String>) -> Result<String> {
    let text = crate::codec::to_json("groups", groups, 64 * 1024)?;
    check_len("groups", &text, 64 * 1024)?;
    Ok(text)
}

/// The SQL pattern that finds an admin in a roles column (a JSON array of names).
pub const ADMIN_ROLE_PATTERN: &str = "%\"admin\"%";

#[cfg(test)]
mod tests {
    use super::*;

    fn user(roles: &[Role]) -> User {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        User {
            id: Uuid::nil(),
            username: "alice".into(),
            password_hash: "$argon2id$…".into(),
            roles: roles.iter().copied().collect(),
            groups: BTreeSet::new(),
            must_change_password: false,
            disabled_at: None,
            failed_logins: 0,
            locked_until: None,
            created_at: t,
            created_by: "test".into(),
            password_changed_at: t,
        }
    }

    #[test]
    fn role_names_round_trip_and_match_their_json() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn usernames_refuse_what_could_forge_a_log_line() {
        assert!(check_username("alice.smith@example").is_ok());
        for bad in ["", "a b", "a:b", "a\nb", "é", &"a".repeat(65)] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_provider_is_scoped_to_groups_and_holds_no_other_role() {
        let groups: BTreeSet<String> = ["web".to_owned()].into();
        let none = BTreeSet::new();
        assert!(check_roles(&[Role::Provider].into(), &groups).is_ok());
        assert!(check_roles(&[Role::Provider].into(), &none).is_err());
        assert!(check_roles(&[Role::Provider, Role::Auditor].into(), &groups).is_err());
        assert!(check_roles(&[Role::Auditor].into(), &groups).is_err());
        assert!(check_roles(&BTreeSet::new(), &none).is_err());
    }

    #[test]
    fn demoting_or_disabling_an_admin_removes_an_admin_and_repeats_change_nothing() {
        let admin = user(&[Role::Admin]);
        let demote = UserChange::Roles {
            roles: [Role::Auditor].into(),
            groups: BTreeSet::new(),
        };
        assert!(decide_user_change(&admin, &demote).removes_admin);
        assert!(decide_user_change(&admin, &UserChange::Disable).removes_admin);
        assert!(!decide_user_change(&admin, &UserChange::Enable).changes);
        let same = UserChange::Roles {
            roles: admin.roles.clone(),
            groups: BTreeSet::new(),
        };
        assert!(!decide_user_change(&admin, &same).changes);
        let auditor = user(&[Role::Auditor]);
        assert!(!decide_user_change(&auditor, &UserChange::Disable).removes_admin);
    }

    #[test]
    fn failures_lock_at_the_limit_and_a_lock_is_not_extended_by_more_failures() {
        let policy = LockoutPolicy {
            max_failures: 3,
            lock_for: SignedDuration::from_mins(15),
        };
        let now: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let mut u = user(&[Role::Auditor]);
        u.failed_logins = 1;
        assert_eq!(after_failed_login(&u, policy, now), (2, None, false));
        u.failed_logins = 2;
        let (n, until, locks) = after_failed_login(&u, policy, now);
        assert_eq!((n, locks), (0, true));
        assert_eq!(until, Some(now + SignedDuration::from_mins(15)));
        u.failed_logins = 0;
        u.locked_until = until;
        let later = now + SignedDuration::from_mins(5);
        assert_eq!(after_failed_login(&u, policy, later), (0, until, false));
        let after = now + SignedDuration::from_mins(16);
        assert_eq!(u.locked_at(after), None);
        assert_eq!(after_failed_login(&u, policy, after), (1, None, false));
    }

    #[test]
    fn token_roles_are_at_most_the_users() {
        let u = user(&[Role::Officer, Role::Auditor]);
        assert!(check_token_roles(&u, &[Role::Auditor].into()).is_ok());
        assert!(check_token_roles(&u, &[Role::Admin].into()).is_err());
    }

    #[test]
    fn debug_forms_never_show_a_password_hash() {
        let u = user(&[Role::Admin]);
        assert!(!format!("{u:?}").contains("argon2"));
        let c = UserChange::Password {
            password_hash: "$argon2id$secret".into(),
            must_change: false,
        };
        assert!(!format!("{c:?}").contains("argon2"));
    }
}
