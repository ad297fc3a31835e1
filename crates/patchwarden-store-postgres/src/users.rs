//! Operators on PostgreSQL: users, sessions and API tokens.
//!
//! The last-admin rule is kept with row locks: a change that may remove an admin first locks
//! every enabled admin's row (`FOR UPDATE`, in id order), then counts the others. Two
//! administrators demoting each other at once queue on the first row; when the first commits,
//! PostgreSQL re-reads the rows the second waited for, one of them no longer an admin, and the
//! count is zero: refused. Lock order is the same as everywhere else in this backend — domain
//! rows, then the audit head.

use std::collections::BTreeSet;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
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
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::{PgStore, audit, col, execute, is_code, pg, query, query_opt};

const USER_COLUMNS: &str = "id, username, password_hash, roles, host_groups, \
                            must_change_password, disabled_at, failed_logins, locked_until, \
                            created_at, created_by, password_changed_at";
const TOKEN_COLUMNS: &str = "id, user_id, name, roles, created_at, expires_at, revoked_at";

fn decode_user(r: &Row) -> Result<User> {
    const T: &str = "users";
    let id: Uuid = col(T, r, 0)?;
    let roles: String = col(T, r, 3)?;
    let groups: String = col(T, r, 4)?;
    let roles: BTreeSet<Role> = from_json(T, &id, &roles)?;
    let groups: BTreeSet<String> = from_json(T, &id, &groups)?;
    let failed: i64 = col(T, r, 7)?;
    Ok(User {
        id,
        username: col(T, r, 1)?,
        password_hash: col(T, r, 2)?,
        roles,
        groups,
        must_change_password: col(T, r, 5)?,
        disabled_at: opt_ts_from_db(T, &id, col(T, r, 6)?)?,
        failed_logins: u32::try_from(failed)
            .map_err(|_| StoreError::corrupt(T, id, "failed_logins out of range"))?,
        locked_until: opt_ts_from_db(T, &id, col(T, r, 8)?)?,
        created_at: ts_from_db(T, &id, col(T, r, 9)?)?,
        created_by: col(T, r, 10)?,
        password_changed_at: ts_from_db(T, &id, col(T, r, 11)?)?,
    })
}

async fn user_by_id<C: GenericClient>(c: &C, id: Uuid, lock: bool) -> Result<Option<User>> {
    let sql = if lock {
        format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 FOR UPDATE")
    } else {
        format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1")
    };
    let row = query_opt(c, &sql, &[&id]).await.map_err(pg("read user"))?;
    row.as_ref().map(decode_user).transpose()
}

async fn locked_user<C: GenericClient>(c: &C, id: Uuid) -> Result<User> {
    user_by_id(c, id, true)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "user",
            id: id.to_string(),
        })
}

async fn create_user<C: GenericClient>(
    c: &C,
    u: &NewUser,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<User> {
    let at = ts_to_db("now", now)?;
    let inserted = execute(
        c,
        "INSERT INTO users (id, username, password_hash, roles, host_groups,
             must_change_password, failed_logins, created_at, created_by, password_changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $7)",
        &[
            &u.id,
            &u.username,
            &u.password_hash,
            &roles_to_db(&u.roles)?,
            &groups_to_db(&u.groups)?,
            &u.must_change_password,
            &at,
            &u.created_by,
        ],
    )
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_code(&e, &SqlState::UNIQUE_VIOLATION) => {
            return Err(StoreError::AlreadyExists {
                kind: "user",
                id: u.username.clone(),
            });
        }
        Err(e) => return Err(StoreError::backend("create user", e)),
    }
    let stored = locked_user(c, u.id).await?;
    audit::append(c, entry).await?;
    Ok(stored)
}

async fn update_user<C: GenericClient>(
    c: &C,
    id: Uuid,
    change: &UserChange,
    now: Timestamp,
    entry: AuditEntry,
) -> Result<User> {
    let op = "update user";
    if matches!(change, UserChange::Roles { .. } | UserChange::Disable) {
        // A change that may remove an admin first locks every enabled admin's row, always in
        // the order of their ids: two such changes at once then queue one behind the other
        // instead of each holding one row and waiting for the other's (a deadlock).
        query(
            c,
            "SELECT id FROM users WHERE disabled_at IS NULL AND roles LIKE $1
             ORDER BY id FOR UPDATE",
            &[&ADMIN_ROLE_PATTERN],
        )
        .await
        .map_err(pg(op))?;
    }
    let before = locked_user(c, id).await?;
    let effect = decide_user_change(&before, change);
    if !effect.changes {
        return Ok(before);
    }
    if effect.removes_admin {
        let others = query(
            c,
            "SELECT id FROM users
             WHERE id <> $1 AND disabled_at IS NULL AND roles LIKE $2
             FOR UPDATE",
            &[&id, &ADMIN_ROLE_PATTERN],
        )
        .await
        .map_err(pg(op))?;
        if others.is_empty() {
            return Err(StoreError::LastAdmin {
                username: before.username,
            });
        }
    }
    let at = ts_to_db("now", now)?;
    let updated = match change {
        UserChange::Roles { roles, groups } => {
            execute(
                c,
                "UPDATE users SET roles = $2, host_groups = $3 WHERE id = $1",
                &[&id, &roles_to_db(roles)?, &groups_to_db(groups)?],
            )
            .await
        }
        UserChange::Disable => {
            execute(
                c,
                "UPDATE users SET disabled_at = $2 WHERE id = $1",
                &[&id, &at],
            )
            .await
        }
        UserChange::Enable => {
            execute(
                c,
                "UPDATE users SET disabled_at = NULL WHERE id = $1",
                &[&id],
            )
            .await
        }
        UserChange::Password {
            password_hash,
            must_change,
        } => {
            execute(
                c,
                "UPDATE users SET password_hash = $2, must_change_password = $3,
                     password_changed_at = $4, failed_logins = 0, locked_until = NULL
                 WHERE id = $1",
                &[&id, password_hash, must_change, &at],
            )
            .await
        }
    };
    updated.map_err(pg(op))?;
    if effect.ends_sessions {
        execute(c, "DELETE FROM sessions WHERE user_id = $1", &[&id])
            .await
            .map_err(pg(op))?;
    }
    audit::append(c, &user_change_audit(&before, change, entry)).await?;
    locked_user(c, id).await
}

async fn failed_login<C: GenericClient>(
    c: &C,
    id: Uuid,
    policy: LockoutPolicy,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<User> {
    let before = locked_user(c, id).await?;
    let (failed, locked_until, locks) = after_failed_login(&before, policy, now);
    let until = locked_until
        .map(|t| ts_to_db("locked_until", t))
        .transpose()?;
    execute(
        c,
        "UPDATE users SET failed_logins = $2, locked_until = $3 WHERE id = $1",
        &[&id, &i64::from(failed), &until],
    )
    .await
    .map_err(pg("record failed login"))?;
    if locks {
        audit::append(c, entry).await?;
    }
    locked_user(c, id).await
}

fn decode_session(r: &Row) -> Result<Session> {
    const T: &str = "sessions";
    let hash: String = col(T, r, 0)?;
    let hash = unhex32(&hash).ok_or_else(|| StoreError::corrupt(T, "?", "id hash"))?;
    Ok(Session {
        id_hash: SecretHash(hash),
        user: col(T, r, 1)?,
        created_at: ts_from_db(T, &"session", col(T, r, 2)?)?,
        expires_at: ts_from_db(T, &"session", col(T, r, 3)?)?,
    })
}

async fn session<C: GenericClient>(c: &C, id_hash: SecretHash) -> Result<Option<Session>> {
    let row = query_opt(
        c,
        "SELECT id_hash, user_id, created_at, expires_at FROM sessions WHERE id_hash = $1",
        &[&hex(&id_hash.0)],
    )
    .await
    .map_err(pg("read session"))?;
    row.as_ref().map(decode_session).transpose()
}

async fn create_session<C: GenericClient>(
    c: &C,
    s: &NewSession,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<Session> {
    let op = "create session";
    let changed = execute(
        c,
        "UPDATE users SET failed_logins = 0 WHERE id = $1",
        &[&s.user],
    )
    .await
    .map_err(pg(op))?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            kind: "user",
            id: s.user.to_string(),
        });
    }
    let inserted = execute(
        c,
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4)",
        &[
            &hex(&s.id_hash.0),
            &s.user,
            &ts_to_db("now", now)?,
            &ts_to_db("session expires_at", s.expires_at)?,
        ],
    )
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_code(&e, &SqlState::UNIQUE_VIOLATION) => {
            return Err(StoreError::AlreadyExists {
                kind: "session",
                id: format!("{:?}", s.id_hash),
            });
        }
        Err(e) => return Err(StoreError::backend(op, e)),
    }
    let stored = session(c, s.id_hash)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "session",
            id: format!("{:?}", s.id_hash),
        })?;
    audit::append(c, entry).await?;
    Ok(stored)
}

fn decode_token(r: &Row) -> Result<ApiToken> {
    const T: &str = "api_tokens";
    let id: Uuid = col(T, r, 0)?;
    let roles: String = col(T, r, 3)?;
    Ok(ApiToken {
        id,
        user: col(T, r, 1)?,
        name: col(T, r, 2)?,
        roles: from_json(T, &id, &roles)?,
        created_at: ts_from_db(T, &id, col(T, r, 4)?)?,
        expires_at: ts_from_db(T, &id, col(T, r, 5)?)?,
        revoked_at: opt_ts_from_db(T, &id, col(T, r, 6)?)?,
    })
}

async fn token_by_id<C: GenericClient>(c: &C, id: Uuid) -> Result<ApiToken> {
    let row = query_opt(
        c,
        &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"),
        &[&id],
    )
    .await
    .map_err(pg("read API token"))?
    .ok_or_else(|| StoreError::NotFound {
        kind: "API token",
        id: id.to_string(),
    })?;
    decode_token(&row)
}

async fn create_token<C: GenericClient>(
    c: &C,
    t: &NewApiToken,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<ApiToken> {
    // The user's row stays locked until the commit: a demotion racing this creation waits,
    // so a token is never made with a role its user just lost.
    check_token_roles(&locked_user(c, t.user).await?, &t.roles)?;
    let inserted = execute(
        c,
        "INSERT INTO api_tokens (id, secret_hash, user_id, name, roles, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &t.id,
            &hex(&t.secret_hash.0),
            &t.user,
            &t.name,
            &roles_to_db(&t.roles)?,
            &ts_to_db("now", now)?,
            &ts_to_db("API token expires_at", t.expires_at)?,
        ],
    )
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_code(&e, &SqlState::UNIQUE_VIOLATION) => {
            return Err(StoreError::AlreadyExists {
                kind: "API token",
                id: t.id.to_string(),
            });
        }
        Err(e) => return Err(StoreError::backend("create API token", e)),
    }
    let stored = token_by_id(c, t.id).await?;
    audit::append(c, entry).await?;
    Ok(stored)
}

async fn revoke_token<C: GenericClient>(
    c: &C,
    id: Uuid,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<ApiToken> {
    let changed = execute(
        c,
        "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        &[&id, &ts_to_db("now", now)?],
    )
    .await
    .map_err(pg("revoke API token"))?;
    let token = token_by_id(c, id).await?;
    if changed > 0 {
        audit::append(c, entry).await?;
    }
    Ok(token)
}

/// Runs `$body` in a transaction `$tx` and commits it; a `?` inside returns early and drops
/// the transaction, which rolls it back.
macro_rules! tx {
    ($self:ident, $op:literal, |$tx:ident| $body:expr) => {{
        let mut client = $self.client($op).await?;
        let $tx = client.transaction().await.map_err(pg($op))?;
        let out = $body;
        $tx.commit().await.map_err(pg($op))?;
        Ok(out)
    }};
}

#[async_trait]
impl OperatorStore for PgStore {
    async fn create_user(&self, user: NewUser, now: Timestamp, audit: AuditEntry) -> Result<User> {
        user.check()?;
        tx!(self, "create user", |tx| create_user(
            &tx, &user, now, &audit
        )
        .await?)
    }

    async fn get_user(&self, id: Uuid) -> Result<Option<User>> {
        let client = self.client("get user").await?;
        user_by_id(&client, id, false).await
    }

    async fn find_user(&self, username: &str) -> Result<Option<User>> {
        let client = self.client("find user").await?;
        let row = query_opt(
            &client,
            &format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"),
            &[&username],
        )
        .await
        .map_err(pg("find user"))?;
        row.as_ref().map(decode_user).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let client = self.client("list users").await?;
        // COLLATE "C": byte order, as SQLite sorts, so both backends list alike.
        let rows = query(
            &client,
            &format!("SELECT {USER_COLUMNS} FROM users ORDER BY username COLLATE \"C\""),
            &[],
        )
        .await
        .map_err(pg("list users"))?;
        rows.iter().map(decode_user).collect()
    }

    async fn update_user(
        &self,
        id: Uuid,
        change: UserChange,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<User> {
        change.check()?;
        tx!(self, "update user", |tx| update_user(
            &tx, id, &change, now, audit
        )
        .await?)
    }

    async fn record_failed_login(
        &self,
        id: Uuid,
        policy: LockoutPolicy,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<User> {
        tx!(self, "record failed login", |tx| failed_login(
            &tx, id, policy, now, &audit
        )
        .await?)
    }

    async fn create_session(
        &self,
        session: NewSession,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Session> {
        tx!(self, "create session", |tx| create_session(
            &tx, &session, now, &audit
        )
        .await?)
    }

    async fn get_session(&self, id_hash: SecretHash) -> Result<Option<Session>> {
        let client = self.client("get session").await?;
        session(&client, id_hash).await
    }

    async fn delete_session(
        &self,
        id_hash: SecretHash,
        _now: Timestamp,
        audit: AuditEntry,
    ) -> Result<bool> {
        tx!(self, "delete session", |tx| {
            let n = execute(
                &tx,
                "DELETE FROM sessions WHERE id_hash = $1",
                &[&hex(&id_hash.0)],
            )
            .await
            .map_err(pg("delete session"))?;
            if n > 0 {
                audit::append(&tx, &audit).await?;
            }
            n > 0
        })
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let client = self.client("purge sessions").await?;
        execute(
            &client,
            "DELETE FROM sessions WHERE expires_at <= $1",
            &[&ts_to_db("now", now)?],
        )
        .await
        .map_err(pg("purge sessions"))
    }

    async fn create_api_token(
        &self,
        token: NewApiToken,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<ApiToken> {
        token.check()?;
        tx!(self, "create API token", |tx| create_token(
            &tx, &token, now, &audit
        )
        .await?)
    }

    async fn find_api_token(&self, secret_hash: SecretHash) -> Result<Option<ApiToken>> {
        let client = self.client("find API token").await?;
        let row = query_opt(
            &client,
            &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = $1"),
            &[&hex(&secret_hash.0)],
        )
        .await
        .map_err(pg("find API token"))?;
        row.as_ref().map(decode_token).transpose()
    }

    async fn list_api_tokens(&self, user: Option<Uuid>) -> Result<Vec<ApiToken>> {
        let client = self.client("list API tokens").await?;
        let rows = match user {
            Some(u) => {
                query(
                    &client,
                    &format!(
                        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1
                         ORDER BY created_at, id"
                    ),
                    &[&u],
                )
                .await
            }
            None => {
                query(
                    &client,
                    &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"),
                    &[],
                )
                .await
            }
        }
        .map_err(pg("list API tokens"))?;
        rows.iter().map(decode_token).collect()
    }

    async fn revoke_api_token(
        &self,
        id: Uuid,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<ApiToken> {
        tx!(self, "revoke API token", |tx| revoke_token(
            &tx, id, now, &audit
        )
        .await?)
    }
}
