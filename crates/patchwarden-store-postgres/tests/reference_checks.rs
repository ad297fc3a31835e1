//! `0013_findings_reference_checks` (whenever `PATCHWARDEN_TEST_POSTGRES` names a database):
//! the findings' foreign keys became statement triggers, and the rules they kept still hold
//! for a hand-made change — a finding cannot name a host or a body that does not exist, nor
//! (`0018_finding_subjects`) a subject other than its body's, on insert or on update; a body
//! still named cannot be deleted; a deleted host takes its findings with it.

use std::sync::Arc;

use patchwarden_store::Store;
use patchwarden_store::conformance::fixtures::{at, debian_inventories, enrolled, entry};
use patchwarden_store_postgres::PgStore;
use tokio_postgres::error::SqlState;

mod common;

fn refused(r: Result<u64, tokio_postgres::Error>, what: &str) {
    match r {
        Err(e) => assert_eq!(
            e.code(),
            Some(&SqlState::FOREIGN_KEY_VIOLATION),
            "{what}: {e}"
        ),
        Ok(n) => panic!("{what}: accepted ({n} rows)"),
    }
}

#[tokio::test]
async fn findings_name_only_hosts_and_bodies_that_exist() {
    let Some((client, config, schema)) =
        common::scratch_schema("the findings reference checks test").await
    else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(
        PgStore::connect(config, format!("{} schema {schema}", common::VAR))
            .await
            .unwrap(),
    );
    let host = enrolled(&store, "web", "web-1").await;
    let other = enrolled(&store, "web", "web-2").await;
    let (before, after) = debian_inventories(3);
    let current = |i: usize, vuln: &str| common::high_finding(&before, &after, i, vuln);
    for h in [host.id, other.id] {
        store
            .sync_findings(
                h,
                &[current(0, "CVE-2024-0001"), current(1, "CVE-2024-0002")],
                &before.packages,
                at(10),
                entry(at(10), "findings.sync", "h"),
            )
            .await
            .unwrap();
    }
    let count = |sql: &'static str| {
        let client = &client;
        async move {
            let row = client.query_one(sql, &[]).await.unwrap();
            row.get::<_, i64>(0)
        }
    };
    assert_eq!(count("SELECT count(*) FROM findings").await, 4);
    // A closed copy of one of the host's findings (closed, so that the open key lets it in),
    // naming the host, the body and the subject given.
    let copy_of = |host_expr: &str, body_expr: &str, subject_expr: &str| {
        format!(
            "INSERT INTO findings (host, subject, state, body_id, first_seen, last_seen,
                                   closed_at, class, due_at)
             SELECT {host_expr}, {subject_expr}, 'closed', {body_expr}, first_seen, last_seen,
                    last_seen, class, due_at
             FROM findings
             WHERE subject = (SELECT id FROM finding_subjects
                              WHERE vulnerability = 'CVE-2024-0001')
               AND host = $1"
        )
    };
    let copy = |host_expr: &str, body_expr: &str| copy_of(host_expr, body_expr, "subject");
    // The body of the host's other finding, whose subject is another.
    let other_body = "(SELECT body_id FROM findings
                       WHERE subject = (SELECT id FROM finding_subjects
                                        WHERE vulnerability = 'CVE-2024-0002')
                         AND host = $1)";

    // Inserted rows naming nothing: refused, each reference on its own.
    refused(
        client.execute(&copy("host", "-1"), &[&host.id]).await,
        "a finding with a body that does not exist",
    );
    refused(
        client
            .execute(&copy("gen_random_uuid()", "body_id"), &[&host.id])
            .await,
        "a finding with a host that does not exist",
    );
    refused(
        client.execute(&copy("host", other_body), &[&host.id]).await,
        "a finding with a body of another subject",
    );
    refused(
        client
            .execute(
                &copy_of(
                    "host",
                    "body_id",
                    "(SELECT max(id) + 1 FROM finding_subjects)",
                ),
                &[&host.id],
            )
            .await,
        "a finding with a subject that does not exist",
    );
    // The copy with its references intact is accepted (the check does not refuse everything).
    assert_eq!(
        client
            .execute(&copy("host", "body_id"), &[&host.id])
            .await
            .unwrap(),
        1
    );

    // Updates that change a reference to nothing: refused; updates of other columns pass.
    refused(
        client
            .execute(
                "UPDATE findings SET body_id = -1 WHERE host = $1",
                &[&host.id],
            )
            .await,
        "a finding moved to a body that does not exist",
    );
    refused(
        client
            .execute(
                &format!("UPDATE findings SET body_id = {other_body} WHERE host = $1"),
                &[&host.id],
            )
            .await,
        "a finding moved to a body of another subject",
    );
    refused(
        client
            .execute(
                "UPDATE findings
                 SET subject = (SELECT id FROM finding_subjects
                                WHERE vulnerability = 'CVE-2024-0002')
                 WHERE host = $1 AND state = 'closed'",
                &[&host.id],
            )
            .await,
        "a finding moved to another subject than its body's",
    );
    refused(
        client
            .execute(
                "UPDATE findings SET host = gen_random_uuid() WHERE host = $1",
                &[&host.id],
            )
            .await,
        "a finding moved to a host that does not exist",
    );
    assert_eq!(
        client
            .execute(
                "UPDATE findings SET last_seen = last_seen + 1 WHERE host = $1",
                &[&host.id]
            )
            .await
            .unwrap(),
        3
    );

    // A body still named cannot be deleted; one named by no finding can.
    refused(
        client.execute("DELETE FROM finding_bodies", &[]).await,
        "deleting bodies still named",
    );
    client
        .execute(
            "INSERT INTO finding_bodies (digest, body, subject)
             SELECT '\\x00', '{}', min(id) FROM finding_subjects",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        client
            .execute("DELETE FROM finding_bodies WHERE digest = '\\x00'", &[])
            .await
            .unwrap(),
        1
    );

    // A deleted host takes its findings, and only its, with it.
    client
        .execute("DELETE FROM hosts WHERE id = $1", &[&host.id])
        .await
        .unwrap();
    assert_eq!(count("SELECT count(*) FROM findings").await, 2);
    let left: Vec<uuid::Uuid> = client
        .query("SELECT DISTINCT host FROM findings", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, vec![other.id]);

    drop(store);
    common::drop_schema(&client).await;
}
