use std::collections::{BTreeSet, HashSet, VecDeque};

use super::*;

const ALL: Capacities = Capacities {
    request: true,
    approve: true,
    authorise: true,
    implement: true,
};

fn alice() -> ChangeActor {
    // The requester, and an admin who could do everything: the worst case for four eyes.
    ChangeActor::person("alice", ALL)
}
fn bob() -> ChangeActor {
    ChangeActor::person(
        "bob",
        Capacities {
            approve: true,
            authorise: true,
            ..Capacities::default()
        },
    )
}
fn carol() -> ChangeActor {
    ChangeActor::person(
        "carol",
        Capacities {
            approve: true,
            authorise: true,
            ..Capacities::default()
        },
    )
}
fn dave() -> ChangeActor {
    ChangeActor::person(
        "dave",
        Capacities {
            request: true,
            implement: true,
            ..Capacities::default()
        },
    )
}

const IN_WINDOW: Moment = Moment {
    now: Timestamp::UNIX_EPOCH,
    in_window: true,
    in_freeze: false,
};
const OUTSIDE: Moment = Moment {
    now: Timestamp::UNIX_EPOCH,
    in_window: false,
    in_freeze: false,
};
const FREEZE: Moment = Moment {
    now: Timestamp::UNIX_EPOCH,
    in_window: true,
    in_freeze: true,
};

fn ready(kind: ChangeKind, testing: Testing) -> Change {
    let mut c = Change::draft(kind, "alice", testing);
    c.justification = "CVE-2024-3094 in xz on the web servers".into();
    c.rollback_plan = "reinstall xz-utils 5.4.1-0.2 from the agent's cache".into();
    c
}

fn step(c: &Change, e: ChangeEvent, a: &ChangeActor, m: Moment) -> Change {
    match apply(c, &e, a, m) {
        Ok(next) => next,
        Err(r) => panic!("refused: {r}"),
    }
}

fn refused(c: &Change, e: ChangeEvent, a: &ChangeActor, m: Moment) -> String {
    match apply(c, &e, a, m) {
        Ok(next) => panic!("accepted into {}", next.state),
        Err(r) => r.to_string(),
    }
}

#[test]
fn a_normal_change_walks_the_whole_process() {
    let c = ready(ChangeKind::Normal, Testing::Required);
    let c = step(&c, ChangeEvent::Submit, &alice(), OUTSIDE);
    let c = step(&c, ChangeEvent::Approve, &bob(), OUTSIDE);
    let c = step(&c, ChangeEvent::Authorise, &carol(), OUTSIDE);
    let c = step(&c, ChangeEvent::Schedule, &dave(), OUTSIDE);
    let c = step(
        &c,
        ChangeEvent::StartTesting,
        &ChangeActor::System,
        IN_WINDOW,
    );
    let c = step(
        &c,
        ChangeEvent::TestsPassed,
        &ChangeActor::System,
        IN_WINDOW,
    );
    let c = step(&c, ChangeEvent::Deploy, &ChangeActor::System, IN_WINDOW);
    let c = step(&c, ChangeEvent::Verified, &ChangeActor::System, IN_WINDOW);
    let c = step(&c, ChangeEvent::Close, &dave(), OUTSIDE);
    assert_eq!(c.state, ChangeState::Closed);
    assert_eq!(c.approved.as_ref().map(|s| s.by.as_str()), Some("bob"));
    assert_eq!(c.authorised.as_ref().map(|s| s.by.as_str()), Some("carol"));
    assert_eq!(c.tested.as_ref().map(|s| s.by.as_str()), Some("system"));
}

#[test]
fn four_eyes_with_reasons_in_words() {
    let c = ready(ChangeKind::Normal, Testing::Required);
    let c = step(&c, ChangeEvent::Submit, &alice(), OUTSIDE);
    expect_test::expect![
        "cannot approve a change in state submitted: the requester cannot approve their own change"
    ]
    .assert_eq(&refused(&c, ChangeEvent::Approve, &alice(), OUTSIDE));
    expect_test::expect![
        "cannot approve a change in state submitted: dave may not approve changes"
    ]
    .assert_eq(&refused(&c, ChangeEvent::Approve, &dave(), OUTSIDE));
    let c = step(&c, ChangeEvent::Approve, &bob(), OUTSIDE);
    expect_test::expect!["cannot authorise a change in state approved: the requester cannot authorise their own change"]
        .assert_eq(&refused(&c, ChangeEvent::Authorise, &alice(), OUTSIDE));
    expect_test::expect!["cannot authorise a change in state approved: the approver cannot also authorise it: two different people sign"]
        .assert_eq(&refused(&c, ChangeEvent::Authorise, &bob(), OUTSIDE));
    expect_test::expect!["cannot authorise a change in state approved: only a standard change is authorised by a rule"]
        .assert_eq(&refused(&c, ChangeEvent::Authorise, &ChangeActor::Rule("low-risk".into()), OUTSIDE));
}

#[test]
fn the_form_must_be_complete_before_it_is_submitted() {
    let empty = Change::draft(ChangeKind::Normal, "alice", Testing::Required);
    expect_test::expect!["cannot submit a change in state draft: it has no business justification"]
        .assert_eq(&refused(&empty, ChangeEvent::Submit, &alice(), OUTSIDE));
    let no_reason = ready(
        ChangeKind::Normal,
        Testing::NotRequired { reason: " ".into() },
    );
    expect_test::expect![
        "cannot submit a change in state draft: testing is not required but no reason is given"
    ]
    .assert_eq(&refused(&no_reason, ChangeEvent::Submit, &alice(), OUTSIDE));
    let mut hotfix = ready(ChangeKind::Normal, Testing::Required);
    hotfix.hotfix = Some(HotfixConditions {
        specific_issue: true,
        documentation_reviewed: true,
        ..HotfixConditions::default()
    });
    expect_test::expect!["cannot submit a change in state draft: a hotfix needs its conditions confirmed: it was tested in a test environment; not applying it is the greater risk"]
        .assert_eq(&refused(&hotfix, ChangeEvent::Submit, &alice(), OUTSIDE));
    expect_test::expect![
        "cannot submit a change in state draft: only the requester (alice) submits it"
    ]
    .assert_eq(&refused(
        &ready(ChangeKind::Normal, Testing::Required),
        ChangeEvent::Submit,
        &dave(),
        OUTSIDE,
    ));
}

#[test]
fn windows_freezes_and_the_emergency_path() {
    let normal = {
        let c = ready(ChangeKind::Normal, Testing::Required);
        let c = step(&c, ChangeEvent::Submit, &alice(), OUTSIDE);
        let c = step(&c, ChangeEvent::Approve, &bob(), OUTSIDE);
        let c = step(&c, ChangeEvent::Authorise, &carol(), OUTSIDE);
        step(&c, ChangeEvent::Schedule, &dave(), OUTSIDE)
    };
    expect_test::expect!["cannot start testing a change in state scheduled: a change freeze is in force and it is not an emergency"]
        .assert_eq(&refused(&normal, ChangeEvent::StartTesting, &ChangeActor::System, FREEZE));
    expect_test::expect!["cannot start testing a change in state scheduled: it is outside the hosts' maintenance window"]
        .assert_eq(&refused(&normal, ChangeEvent::StartTesting, &ChangeActor::System, OUTSIDE));
    expect_test::expect![
        "cannot deploy a change in state scheduled: its testing is required and has not been done"
    ]
    .assert_eq(&refused(
        &normal,
        ChangeEvent::Deploy,
        &ChangeActor::System,
        IN_WINDOW,
    ));

    // The emergency: approved and authorised through the same two signatures, then deployed
    // at once in a freeze, before any testing; it stays open until the testing is recorded.
    let c = ready(ChangeKind::Emergency, Testing::Required);
    let c = step(&c, ChangeEvent::Submit, &alice(), FREEZE);
    let c = step(&c, ChangeEvent::Approve, &bob(), FREEZE);
    let c = step(&c, ChangeEvent::Authorise, &carol(), FREEZE);
    let c = step(&c, ChangeEvent::Deploy, &dave(), FREEZE);
    let c = step(&c, ChangeEvent::Verified, &ChangeActor::System, FREEZE);
    expect_test::expect!["cannot close a change in state verified: an emergency change stays open until its testing is recorded"]
        .assert_eq(&refused(&c, ChangeEvent::Close, &dave(), FREEZE));
    let c = step(&c, ChangeEvent::RecordTesting, &dave(), FREEZE);
    let c = step(&c, ChangeEvent::Close, &dave(), FREEZE);
    assert_eq!(c.state, ChangeState::Closed);
}

#[test]
fn a_standard_change_is_pre_approved_by_its_rule_and_can_skip_testing_with_a_reason() {
    let rule = ChangeActor::Rule("low-risk-workstations".into());
    let c = ready(
        ChangeKind::Standard,
        Testing::NotRequired {
            reason: "vendor-tested definitions update on workstations".into(),
        },
    );
    let c = step(&c, ChangeEvent::Submit, &alice(), OUTSIDE);
    let c = step(&c, ChangeEvent::Approve, &rule, OUTSIDE);
    let c = step(&c, ChangeEvent::Authorise, &rule, OUTSIDE);
    let c = step(&c, ChangeEvent::Schedule, &dave(), OUTSIDE);
    let c = step(&c, ChangeEvent::Deploy, &ChangeActor::System, IN_WINDOW);
    assert_eq!(c.state, ChangeState::Deploying);
    assert_eq!(
        c.approved.map(|s| s.by),
        Some("rule:low-risk-workstations".to_owned())
    );
}

#[test]
fn a_rule_raises_submits_and_schedules_its_own_standard_change_and_no_other() {
    let rule = ChangeActor::Rule("low-risk".into());
    let mut c = ready(ChangeKind::Standard, Testing::Required);
    c.requester = "rule:low-risk".into();
    let c = step(&c, ChangeEvent::Submit, &rule, OUTSIDE);
    let c = step(&c, ChangeEvent::Approve, &rule, OUTSIDE);
    let c = step(&c, ChangeEvent::Authorise, &rule, OUTSIDE);
    let c = step(&c, ChangeEvent::Schedule, &rule, OUTSIDE);
    assert_eq!(c.state, ChangeState::Scheduled);
    // Another rule, or the same rule on a normal change, may not.
    let mut other = ready(ChangeKind::Standard, Testing::Required);
    other.requester = "rule:low-risk".into();
    expect_test::expect![
        "cannot submit a change in state draft: only the requester (rule:low-risk) submits it"
    ]
    .assert_eq(&refused(
        &other,
        ChangeEvent::Submit,
        &ChangeActor::Rule("other".into()),
        OUTSIDE,
    ));
    let mut normal = ready(ChangeKind::Normal, Testing::Required);
    normal.requester = "rule:low-risk".into();
    expect_test::expect![
        "cannot submit a change in state draft: only the requester (rule:low-risk) submits it"
    ]
    .assert_eq(&refused(&normal, ChangeEvent::Submit, &rule, OUTSIDE));
}

#[test]
fn a_failed_test_fails_the_change_and_nothing_is_cancelled_once_hosts_changed() {
    let c = ready(ChangeKind::Normal, Testing::Required);
    let c = step(&c, ChangeEvent::Submit, &alice(), OUTSIDE);
    let c = step(&c, ChangeEvent::Approve, &bob(), OUTSIDE);
    let c = step(&c, ChangeEvent::Authorise, &carol(), OUTSIDE);
    let c = step(&c, ChangeEvent::Schedule, &dave(), OUTSIDE);
    let c = step(
        &c,
        ChangeEvent::StartTesting,
        &ChangeActor::System,
        IN_WINDOW,
    );
    expect_test::expect!["cannot cancel a change in state testing: packages have changed on hosts (testing): it fails and rolls back instead"]
        .assert_eq(&refused(&c, ChangeEvent::Cancel { reason: "no".into() }, &alice(), IN_WINDOW));
    let c = step(
        &c,
        ChangeEvent::TestsFailed {
            reason: "demo-lib 1.2 postinst exited 1 on test-1".into(),
        },
        &ChangeActor::System,
        IN_WINDOW,
    );
    assert_eq!(c.state, ChangeState::Failed);
    let c = step(&c, ChangeEvent::RolledBack, &ChangeActor::System, IN_WINDOW);
    expect_test::expect!["cannot deploy a change in state rolled_back: the change is finished"]
        .assert_eq(&refused(
            &c,
            ChangeEvent::Deploy,
            &ChangeActor::System,
            IN_WINDOW,
        ));
}

fn events() -> Vec<ChangeEvent> {
    let r = || "because".to_owned();
    vec![
        ChangeEvent::Submit,
        ChangeEvent::Approve,
        ChangeEvent::Authorise,
        ChangeEvent::Reject { reason: r() },
        ChangeEvent::Reject {
            reason: String::new(),
        },
        ChangeEvent::Schedule,
        ChangeEvent::StartTesting,
        ChangeEvent::TestsPassed,
        ChangeEvent::TestsFailed { reason: r() },
        ChangeEvent::Deploy,
        ChangeEvent::Verified,
        ChangeEvent::DeploymentFailed { reason: r() },
        ChangeEvent::RolledBack,
        ChangeEvent::RollBack { reason: r() },
        ChangeEvent::RecordTesting,
        ChangeEvent::Close,
        ChangeEvent::Cancel { reason: r() },
    ]
}

/// Every change reachable from every kind of draft by any sequence of events, any actor (the
/// requester holding every capacity among them) and any moment, explored to the end: the state
/// space is small once equal changes are merged, so this checks every sequence, not a sample.
#[test]
fn no_sequence_of_events_breaks_the_rules() {
    let actors = [
        alice(),
        bob(),
        carol(),
        dave(),
        ChangeActor::Rule("low-risk".into()),
        ChangeActor::System,
    ];
    let moments = [IN_WINDOW, OUTSIDE, FREEZE];
    let events = events();
    let mut starts = Vec::new();
    for kind in [
        ChangeKind::Standard,
        ChangeKind::Normal,
        ChangeKind::Emergency,
    ] {
        for testing in [
            Testing::Required,
            Testing::NotRequired {
                reason: "no test ring for appliances".into(),
            },
        ] {
            starts.push(ready(kind, testing.clone()));
            let mut hotfix = ready(kind, testing);
            hotfix.hotfix = Some(HotfixConditions {
                specific_issue: true,
                documentation_reviewed: true,
                tested_in_test_environment: true,
                greater_risk_not_applying: true,
            });
            starts.push(hotfix);
        }
    }
    starts.push(Change::draft(
        ChangeKind::Normal,
        "alice",
        Testing::Required,
    ));

    let key = |c: &Change| serde_json::to_string(c).expect("a change serialises");
    let mut seen: HashSet<String> = starts.iter().map(key).collect();
    let mut queue: VecDeque<Change> = starts.into_iter().collect();
    let mut reached: BTreeSet<(String, ChangeState)> = BTreeSet::new();
    let mut transitions = 0_u64;
    while let Some(c) = queue.pop_front() {
        reached.insert((format!("{:?}", c.kind), c.state));
        for e in &events {
            for a in &actors {
                for m in moments {
                    let Ok(next) = apply(&c, e, a, m) else {
                        continue;
                    };
                    transitions += 1;
                    assert!(!c.state.is_final(), "{:?} left final {}", e, c.state);
                    // Four eyes.
                    if let Some(ap) = &next.approved {
                        assert_ne!(ap.by, next.requester, "requester approved");
                        if ap.by.starts_with("rule:") {
                            assert_eq!(next.kind, ChangeKind::Standard);
                        }
                    }
                    if let Some(au) = &next.authorised {
                        assert_ne!(au.by, next.requester, "requester authorised");
                        let ap = next.approved.as_ref().expect("authorised before approved");
                        assert!(
                            au.by != ap.by || au.by.starts_with("rule:"),
                            "one person approved and authorised"
                        );
                    }
                    // Hosts are touched only once signed, and for anything but an emergency
                    // only in a window, outside a freeze, after the tests it requires.
                    let touches =
                        matches!(next.state, ChangeState::Testing | ChangeState::Deploying)
                            && next.state != c.state;
                    if touches {
                        assert!(next.approved.is_some() && next.authorised.is_some());
                        if next.kind != ChangeKind::Emergency {
                            assert!(m.in_window && !m.in_freeze, "{e:?} at {m:?}");
                            if next.state == ChangeState::Deploying
                                && next.testing == Testing::Required
                            {
                                assert!(next.tested.is_some(), "deployed untested");
                            }
                        }
                    }
                    if next.state == ChangeState::Closed {
                        assert!(next.authorised.is_some());
                        if next.kind == ChangeKind::Emergency || next.testing == Testing::Required {
                            assert!(next.tested.is_some(), "closed without testing");
                        }
                    }
                    if seen.insert(key(&next)) {
                        queue.push_back(next);
                    }
                }
            }
        }
    }
    // The rules are not so strict that nothing works: every kind can reach every state its
    // path has (a standard or normal change never deploys before testing unless it needs none).
    for kind in ["Standard", "Normal", "Emergency"] {
        for state in ChangeState::ALL {
            if state == ChangeState::Draft {
                continue;
            }
            assert!(
                reached.contains(&(kind.to_owned(), state)),
                "{kind} never reaches {state}"
            );
        }
    }
    assert!(transitions > 1000, "explored {transitions} transitions");
}

#[test]
fn an_implementer_rolls_back_a_change_that_touched_hosts_and_no_one_else_does() {
    let c = ready(ChangeKind::Normal, Testing::Required);
    let c = step(&c, ChangeEvent::Submit, &alice(), OUTSIDE);
    let c = step(&c, ChangeEvent::Approve, &bob(), OUTSIDE);
    let c = step(&c, ChangeEvent::Authorise, &carol(), OUTSIDE);
    let roll = |reason: &str| ChangeEvent::RollBack {
        reason: reason.into(),
    };
    // Before anything was installed there is nothing to roll back.
    assert_eq!(
        refused(&c, roll("web tier slow"), &dave(), IN_WINDOW),
        "cannot roll back a change in state authorised: nothing has been installed yet: \
         cancel it instead"
    );
    let c = step(&c, ChangeEvent::Schedule, &dave(), OUTSIDE);
    let c = step(
        &c,
        ChangeEvent::StartTesting,
        &ChangeActor::System,
        IN_WINDOW,
    );
    let c = step(
        &c,
        ChangeEvent::TestsPassed,
        &ChangeActor::System,
        IN_WINDOW,
    );
    let c = step(&c, ChangeEvent::Deploy, &ChangeActor::System, IN_WINDOW);
    // Approvers, the server and rules do not decide a rollback; a reason is required.
    assert_eq!(
        refused(&c, roll("slow"), &bob(), IN_WINDOW),
        "cannot roll back a change in state deploying: bob may not roll back changes"
    );
    assert_eq!(
        refused(&c, roll("slow"), &ChangeActor::System, IN_WINDOW),
        "cannot roll back a change in state deploying: system may not roll back changes"
    );
    assert_eq!(
        refused(&c, roll("  "), &dave(), IN_WINDOW),
        "cannot roll back a change in state deploying: a rollback needs a reason"
    );
    // Outside a window too: the rollback plan runs at once.
    let failed = step(&c, roll("web tier slow"), &dave(), OUTSIDE);
    assert_eq!(failed.state, ChangeState::Failed);
    assert_eq!(failed.outcome_reason.as_deref(), Some("web tier slow"));
    assert_eq!(
        refused(&failed, roll("again"), &dave(), IN_WINDOW),
        "cannot roll back a change in state failed: it failed already and is being rolled back"
    );
    let back = step(
        &failed,
        ChangeEvent::RolledBack,
        &ChangeActor::System,
        IN_WINDOW,
    );
    assert_eq!(back.state, ChangeState::RolledBack);
}
