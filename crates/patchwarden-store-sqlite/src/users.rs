//! Operators on SQLite: users, sessions and API tokens.
//!
//! The last-admin rule needs no lock beyond SQLite's single writer: the count of the other
//! enabled admins is read in the same `BEGIN IMMEDIATE` transaction that demotes or disables,
//! so two administrators demoting each other are serialised and the second one sees the first
//! one's change.

use std::collections::BTreeSet;

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::codec::{from_json, hex, opt_ts_from_db, ts_from_db, ts_to_db, unhex32};
use patchwarden_store::operator::{
    ADMIN_ROLE_PATTERN, after_failed_login, check_token_roles, decide_user_change, groups_to_db,
    roles_to_db, user_change_audit,
};
use patchwarden_store::{
    ApiToken, LockoutPolicy, NewApiToken, NewSession, NewUser, OperatorStore, Result, Role,
    SecretHash, Session, StoreError, User, UserChange,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::{SqliteStore, audit, db, is_unique_violation, uuid_from_db};

const USER_COLUMNS: &str = "id, username, password_hash, roles, host_groups, \
                            must_change_password, disabled_at, failed_logins, locked_until, \
                            created_at, created_by, password_changed_at";
const TOKEN_COLUMNS: &str = "id, user_id, name, roles, created_at, expires_at, revoked_at";

struct RawUser {
    id: String,
    username: String,
    password_hash: String,
    roles: String,
    groups: String,
    must_change_password: bool,
    disabled_at: Option<i64>,
    failed_logins: i64,
    locked_until: Option<i64>,
    created_at: i64,
    created_by: String,
    password_changed_at: i64,
}

fn raw_user(r: &Row<'_>) -> rusqlite::Result<RawUser> {
    Ok(RawUser {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        roles: r.get(3)?,
        groups: r.get(4)?,
        must_change_password: r.get(5)?,
        disabled_at: r.get(6)?,
        failed_logins: r.get(7)?,
        locked_until: r.get(8)?,
        created_at: r.get(9)?,
        created_by: r.get(10)?,
        password_changed_at: r.get(11)?,
    })
}

fn decode_user(r: RawUser) -> Result<User> {
    const T: &str = "users";
    let id = uuid_from_db(T, &r.id)?;
    let roles: BTreeSet<Role> = from_json(T, &id, &r.roles)?;
    let groups: BTreeSet<String> = from_json(T, &id, &r.groups)?;
    Ok(User {
        id,
        username: r.username,
        password_hash: r.password_hash,
        roles,
        groups,
        must_change_password: r.must_change_password,
        disabled_at: opt_ts_from_db(T, &id, r.disabled_at)?,
        failed_logins: u32::try_from(r.failed_logins)
            .map_err(|_| StoreError::corrupt(T, id, "failed_logins out of range"))?,
        locked_until: opt_ts_from_db(T, &id, r.locked_until)?,
        created_at: ts_from_db(T, &id, r.created_at)?,
        created_by: r.created_by,
        password_changed_at: ts_from_db(T, &id, r.password_changed_at)?,
    })
}

fn user_where(c: &Connection, clause: &str, key: &str) -> Result<Option<User>> {
    let raw = c
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE {clause}"),
            [key],
            raw_user,
        )
        .optional()
        .map_err(db("read user"))?;
    raw.map(decode_user).transpose()
}

fn user(c: &Connection, id: Uuid) -> Result<User> {
    user_where(c, "id = ?1", &id.to_string())?.ok_or_else(|| StoreError::NotFound {
        kind: "user",
        id: id.to_string(),
    })
}

fn create_user(c: &Connection, u: &NewUser, now: Timestamp, entry: &AuditEntry) -> Result<User> {
    let at = ts_to_db("now", now)?;
    let inserted = c.execute(
        "INSERT INTO users (id, username, password_hash, roles, host_groups,
             must_change_password, failed_logins, created_at, created_by, password_changed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?7)",
        params![
            u.id.to_string(),
            u.username,
            u.password_hash,
            roles_to_db(&u.roles)?,
            groups_to_db(&u.groups)?,
            u.must_change_password,
            at,
            u.created_by
        ],
    );
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::AlreadyExists {
                kind: "user",
                id: u.username.clone(),
            });
        }
        Err(e) => return Err(StoreError::backend("create user", e)),
    }
    let stored = user(c, u.id)?;
    audit::append(c, entry)?;
    Ok(stored)
}

fn update_user(
    c: &Connection,
    id: Uuid,
    change: &UserChange,
    now: Timestamp,
    entry: AuditEntry,
) -> Result<User> {
    let before = user(c, id)?;
    let effect = decide_user_change(&before, change);
    if !effect.changes {
        return Ok(before);
    }
    let at = ts_to_db("now", now)?;
    let key = id.to_string();
    let op = "update user";
    match change {
        UserChange::Roles { roles, groups } => c.execute(
            "UPDATE users SET roles = ?2, host_groups = ?3 WHERE id = ?1",
            params![key, roles_to_db(roles)?, groups_to_db(groups)?],
        ),
        UserChange::Disable => c.execute(
            "UPDATE users SET disabled_at = ?2 WHERE id = ?1",
            params![key, at],
        ),
        UserChange::Enable => c.execute(
            "UPDATE users SET disabled_at = NULL WHERE id = ?1",
            params![key],
        ),
        UserChange::Password {
            password_hash,
            must_change,
        } => c.execute(
            "UPDATE users SET password_hash = ?2, must_change_password = ?3,
                 password_changed_at = ?4, failed_logins = 0, locked_until = NULL
             WHERE id = ?1",
            params![key, password_hash, must_change, at],
        ),
    }
    .map_err(db(op))?;
    if effect.removes_admin {
        let others: i64 = c
            .query_row(
                "SELECT count(*) FROM users
                 WHERE id <> ?1 AND disabled_at IS NULL AND roles LIKE ?2",
                params![key, ADMIN_ROLE_PATTERN],
                |r| r.get(0),
            )
            .map_err(db(op))?;
        if others == 0 {
            // Returning the error drops the transaction, which rolls the update back.
            return Err(StoreError::LastAdmin {
                username: before.username,
            });
        }
    }
    if effect.ends_sessions {
        c.execute("DELETE FROM sessions WHERE user_id = ?1", params![key])
            .map_err(db(op))?;
    }
    audit::append(c, &user_change_audit(&before, change, entry))?;
    user(c, id)
}

fn failed_login(
    c: &Connection,
    id: Uuid,
    policy: LockoutPolicy,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<User> {
    let before = user(c, id)?;
    let (failed, locked_until, locks) = after_failed_login(&before, policy, now);
    c.execute(
        "UPDATE users SET failed_logins = ?2, locked_until = ?3 WHERE id = ?1",
        params![
            id.to_string(),
            i64::from(failed),
            locked_until
                .map(|t| ts_to_db("locked_until", t))
                .transpose()?
        ],
    )
    .map_err(db("record failed login"))?;
    if locks {
        audit::append(c, entry)?;
    }
    user(c, id)
}

fn decode_session(
    id_hash: String,
    user: String,
    created_at: i64,
    expires_at: i64,
) -> Result<Session> {
    const T: &str = "sessions";
    let hash = unhex32(&id_hash).ok_or_else(|| StoreError::corrupt(T, "?", "id hash"))?;
    Ok(Session {
        id_hash: SecretHash(hash),
        user: uuid_from_db(T, &user)?,
        created_at: ts_from_db(T, &"session", created_at)?,
        expires_at: ts_from_db(T, &"session", expires_at)?,
    })
}

fn session(c: &Connection, id_hash: SecretHash) -> Result<Option<Session>> {
    let raw = c
        .query_row(
            "SELECT id_hash, user_id, created_at, expires_at FROM sessions WHERE id_hash = ?1",
            [hex(&id_hash.0)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(db("read session"))?;
    raw.map(|(h, u, c, e)| decode_session(h, u, c, e))
        .transpose()
}

fn create_session(
    c: &Connection,
    s: &NewSession,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<Session> {
    // The user must exist; its failed logins start again from zero.
    let changed = c
        .execute(
            "UPDATE users SET failed_logins = 0 WHERE id = ?1",
            params![s.user.to_string()],
        )
        .map_err(db("create session"))?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            kind: "user",
            id: s.user.to_string(),
        });
    }
    c.execute(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            hex(&s.id_hash.0),
            s.user.to_string(),
            ts_to_db("now", now)?,
            ts_to_db("session expires_at", s.expires_at)?
        ],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::AlreadyExists {
                kind: "session",
                id: format!("{:?}", s.id_hash),
            }
        } else {
            StoreError::backend("create session", e)
        }
    })?;
    let stored = session(c, s.id_hash)?.ok_or_else(|| StoreError::NotFound {
        kind: "session",
        id: format!("{:?}", s.id_hash),
    })?;
    audit::append(c, entry)?;
    Ok(stored)
}

type RawToken = (String, String, String, String, i64, i64, Option<i64>);

fn raw_token(r: &Row<'_>) -> rusqlite::Result<RawToken> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn decode_token(
    (id, user, name, roles, created_at, expires_at, revoked_at): RawToken,
) -> Result<ApiToken> {
    const T: &str = "api_tokens";
    let id = uuid_from_db(T, &id)?;
    Ok(ApiToken {
        id,
        user: uuid_from_db(T, &user)?,
        name,
        roles: from_json(T, &id, &roles)?,
        created_at: ts_from_db(T, &id, created_at)?,
        expires_at: ts_from_db(T, &id, expires_at)?,
        revoked_at: opt_ts_from_db(T, &id, revoked_at)?,
    })
}

fn token_where(c: &Connection, clause: &str, key: &str) -> Result<Option<ApiToken>> {
    let raw = c
        .query_row(
            &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE {clause}"),
            [key],
            raw_token,
        )
        .optional()
        .map_err(db("read API token"))?;
    raw.map(decode_token).transpose()
}

fn create_token(
    c: &Connection,
    t: &NewApiToken,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<ApiToken> {
    check_token_roles(&user(c, t.user)?, &t.roles)?;
    c.execute(
        "INSERT INTO api_tokens (id, secret_hash, user_id, name, roles, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            t.id.to_string(),
            hex(&t.secret_hash.0),
            t.user.to_string(),
            t.name,
            roles_to_db(&t.roles)?,
            ts_to_db("now", now)?,
            ts_to_db("API token expires_at", t.expires_at)?
        ],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::AlreadyExists {
                kind: "API token",
                id: t.id.to_string(),
            }
        } else {
            StoreError::backend("create API token", e)
        }
    })?;
    let stored =
        token_where(c, "id = ?1", &t.id.to_string())?.ok_or_else(|| StoreError::NotFound {
            kind: "API token",
            id: t.id.to_string(),
        })?;
    audit::append(c, entry)?;
    Ok(stored)
}

fn revoke_token(c: &Connection, id: Uuid, now: Timestamp, entry: &AuditEntry) -> Result<ApiToken> {
    let changed = c
        .execute(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id.to_string(), ts_to_db("now", now)?],
        )
        .map_err(db("revoke API token"))?;
    let token =
        token_where(c, "id = ?1", &id.to_string())?.ok_or_else(|| StoreError::NotFound {
            kind: "API token",
            id: id.to_string(),
        })?;
    if changed > 0 {
        audit::append(c, entry)?;
    }
    Ok(token)
}

fn list_tokens(c: &Connection, user: Option<Uuid>) -> Result<Vec<ApiToken>> {
    let (sql, key) = match user {
        Some(u) => (
            format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = ?1
                 ORDER BY created_at, id"
            ),
            Some(u.to_string()),
        ),
        None => (
            format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"),
            None,
        ),
    };
    let mut stmt = c.prepare(&sql).map_err(db("list API tokens"))?;
    let rows = match &key {
        Some(k) => stmt.query_map([k], raw_token),
        None => stmt.query_map([], raw_token),
    }
    .map_err(db("list API tokens"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(decode_token(r.map_err(db("list API tokens"))?)?);
    }
    Ok(out)
}

#[async_trait]
impl OperatorStore for SqliteStore {
    async fn create_user(&self, user: NewUser, now: Timestamp, audit: AuditEntry) -> Result<User> {
        user.check()?;
        self.write("create user", move |c| create_user(c, &user, now, &audit))
            .await
    }

    async fn get_user(&self, id: Uuid) -> Result<Option<User>> {
        self.read("get user", move |c| {
            user_where(c, "id = ?1", &id.to_string())
        })
        .await
    }

    async fn find_user(&self, username: &str) -> Result<Option<User>> {
        let name = username.to_owned();
        self.read("find user", move |c| user_where(c, "username = ?1", &name))
            .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.read("list users", |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {USER_COLUMNS} FROM users ORDER BY username"
                ))
                .map_err(db("list users"))?;
            let rows = stmt.query_map([], raw_user).map_err(db("list users"))?;
            let mut out = Vec::new();
            for r in rows {
                out.push(decode_user(r.map_err(db("list users"))?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn update_user(
        &self,
        id: Uuid,
        change: UserChange,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<User> {
        change.check()?;
        self.write("update user", move |c| {
            update_user(c, id, &change, now, audit)
        })
        .await
    }

    async fn record_failed_login(
        &self,
        id: Uuid,
        policy: LockoutPolicy,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<User> {
        self.write("record failed login", move |c| {
            failed_login(c, id, policy, now, &audit)
        })
        .await
    }

    async fn create_session(
        &self,
        session: NewSession,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Session> {
        self.write("create session", move |c| {
            create_session(c, &session, now, &audit)
        })
        .await
    }

    async fn get_session(&self, id_hash: SecretHash) -> Result<Option<Session>> {
        self.read("get session", move |c| session(c, id_hash)).await
    }

    async fn delete_session(
        &self,
        id_hash: SecretHash,
        _now: Timestamp,
        audit: AuditEntry,
    ) -> Result<bool> {
        self.write("delete session", move |c| {
            let n = c
                .execute("DELETE FROM sessions WHERE id_hash = ?1", [hex(&id_hash.0)])
                .map_err(db("delete session"))?;
            if n > 0 {
                audit::append(c, &audit)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        self.write("purge sessions", move |c| {
            let n = c
                .execute(
                    "DELETE FROM sessions WHERE expires_at <= ?1",
                    [ts_to_db("now", now)?],
                )
                .map_err(db("purge sessions"))?;
            Ok(n as u64)
        })
        .await
    }

    async fn create_api_token(
        &self,
        token: NewApiToken,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<ApiToken> {
        token.check()?;
        self.write("create API token", move |c| {
            create_token(c, &token, now, &audit)
        })
        .await
    }

    async fn find_api_token(&self, secret_hash: SecretHash) -> Result<Option<ApiToken>> {
        self.read("find API token", move |c| {
            token_where(c, "secret_hash = ?1", &hex(&secret_hash.0))
        })
        .await
    }

    async fn list_api_tokens(&self, user: Option<Uuid>) -> Result<Vec<ApiToken>> {
        self.read("list API tokens", move |c| list_tokens(c, user))
            .await
    }

    async fn revoke_api_token(
        &self,
        id: Uuid,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<ApiToken> {
        self.write("revoke API token", move |c| {
            revoke_token(c, id, now, &audit)
        })
        .await
    }
}
