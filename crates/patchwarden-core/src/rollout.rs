//! The rollout's decisions as a pure function: given the rings of a change and where each host
//! stands, what is the next step — start these hosts, verify this ring, halt, or wait.
//!
//! The rules (seed 001 step 9, seed 000 §6.7; clause P6, P8 of the policy map):
//!
//! - **rings in order**: no host of a ring starts before every earlier ring is verified; the
//!   test ring, when there is one, is the first;
//! - **a ring is verified** when each of its hosts verified (or had nothing to install) and the
//!   soak time has passed since the last of them finished, and an operator released its manual
//!   gate if the plan puts one on it;
//! - **a failure threshold**: when more hosts of a ring failed than the plan allows, the
//!   rollout halts — that ring fails, no later ring starts — and the change rolls back;
//! - **concurrency per failure domain**: at most `max_per_domain` hosts sharing a value of the
//!   plan's domain label (a hypervisor, a site, a rack) are in flight at once, so one bad patch
//!   cannot take down every replica behind one switch;
//! - a host starts only when its own window is open (`window_open`, the calendar's answer for
//!   its group; always true for an emergency).
//!
//! Nothing here reads the clock or the store; the server maps its change document into
//! [`RingInput`]s, applies the [`Step`], and stores the result.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Where a ring stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RingState {
    Waiting,
    Running,
    Verified,
    Failed,
    /// Never started: an earlier ring failed.
    Skipped,
}

/// Where one host of a ring stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HostProgress {
    /// No job yet.
    NotStarted,
    /// Every patch is installed already or does not apply: nothing to do.
    NothingToDo,
    /// Its job is out and not finished.
    InFlight,
    Verified {
        at: Timestamp,
    },
    Failed {
        at: Timestamp,
    },
}

/// One host as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInput {
    pub progress: HostProgress,
    /// Whether a maintenance window of its group is open now (always, for an emergency).
    pub window_open: bool,
    /// Its value of the plan's failure-domain label, if it has one.
    pub domain: Option<String>,
}

/// One ring as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingInput {
    pub state: RingState,
    /// This ring's own soak time, overriding the limits' (a template's wait after the test
    /// ring).
    #[serde(default)]
    pub soak: Option<SignedDuration>,
    /// The plan puts a manual gate before this ring is verified, and no one released it yet.
    pub gate_closed: bool,
    pub hosts: Vec<HostInput>,
}

/// The rollout's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// How many hosts of a ring may fail before the rollout halts (0: the first failure).
    pub max_failures: u32,
    /// How long a ring runs clean after its last host finished before it is verified.
    pub soak: SignedDuration,
    /// At most this many hosts of one failure domain in flight at once (`None`: no limit).
    pub max_per_domain: Option<u32>,
}

/// The next step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Nothing to do now (hosts in flight, a window closed, soaking, a gate closed).
    Wait,
    /// Start these hosts (indices) of ring `ring`; the ring becomes running if it was waiting.
    Start { ring: usize, hosts: Vec<usize> },
    /// Ring `ring` is verified.
    Verify { ring: usize },
    /// Ring `ring` failed on these hosts: halt, skip the later rings, roll back.
    Halt { ring: usize, failed: Vec<usize> },
    /// Every ring is verified.
    Complete,
    /// The rollout halted earlier: nothing more starts.
    Halted,
}

/// How the hosts outside the named rings are split into broad waves: waves of a fixed size, or
/// of percentages of them in order (the last wave takes whatever is left).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Waves {
    Size(u32),
    Percent(Vec<u8>),
}

impl Waves {
    /// Why these waves cannot work, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Waves::Size(0) => Err("a wave holds at least one host".into()),
            Waves::Percent(p) if p.is_empty() || p.len() > 20 => {
                Err("name between 1 and 20 wave percentages".into())
            }
            Waves::Percent(p) if p.iter().any(|&x| x == 0 || x > 100) => {
                Err("a wave percentage is between 1 and 100".into())
            }
            Waves::Percent(p) if p.iter().map(|&x| u32::from(x)).sum::<u32>() > 100 => {
                Err("the wave percentages add up to more than 100".into())
            }
            _ => Ok(()),
        }
    }

    /// The sizes of the waves `hosts` hosts make, in order; they add up to `hosts`, and none is
    /// empty.
    pub fn sizes(&self, hosts: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut left = hosts;
        match self {
            Waves::Size(n) => {
                let n = (*n as usize).max(1);
                while left > 0 {
                    let take = n.min(left);
                    out.push(take);
                    left -= take;
                }
            }
            Waves::Percent(percents) => {
                for &p in percents {
                    if left == 0 {
                        break;
                    }
                    // Rounded up, so a small percentage of a small fleet is still one host.
                    let take = (hosts * usize::from(p)).div_ceil(100).clamp(1, left);
                    out.push(take);
                    left -= take;
                }
                if left > 0 {
                    match out.last_mut() {
                        Some(last) => *last += left,
                        None => out.push(left),
                    }
                }
            }
        }
        out
    }
}

/// The next step of a rollout over `rings` at `now`.
pub fn next_step(rings: &[RingInput], limits: Limits, now: Timestamp) -> Step {
    if rings.iter().any(|r| r.state == RingState::Failed) {
        return Step::Halted;
    }
    let Some(index) = rings.iter().position(|r| r.state != RingState::Verified) else {
        return Step::Complete;
    };
    let ring = &rings[index];
    // (`position` skipped the verified rings.)
    if matches!(ring.state, RingState::Skipped | RingState::Failed) {
        return Step::Halted;
    }
    let failed: Vec<usize> = ring
        .hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| matches!(h.progress, HostProgress::Failed { .. }))
        .map(|(i, _)| i)
        .collect();
    if failed.len() > limits.max_failures as usize {
        return Step::Halt {
            ring: index,
            failed,
        };
    }
    let startable = startable(ring, limits);
    if !startable.is_empty() {
        return Step::Start {
            ring: index,
            hosts: startable,
        };
    }
    let pending = ring.hosts.iter().any(|h| {
        matches!(
            h.progress,
            HostProgress::NotStarted | HostProgress::InFlight
        )
    });
    if pending {
        // In flight, or waiting for a window to open.
        return Step::Wait;
    }
    // Every host is done, and no more failed than allowed.
    let last = ring
        .hosts
        .iter()
        .filter_map(|h| match h.progress {
            HostProgress::Verified { at } | HostProgress::Failed { at } => Some(at),
            _ => None,
        })
        .max();
    if let Some(last) = last
        && now
            < last
                .checked_add(ring.soak.unwrap_or(limits.soak))
                .unwrap_or(Timestamp::MAX)
    {
        return Step::Wait;
    }
    if ring.gate_closed {
        return Step::Wait;
    }
    Step::Verify { ring: index }
}

/// The hosts of `ring` that may start now: not started, window open, within their failure
/// domain's limit (counting the hosts already in flight).
fn startable(ring: &RingInput, limits: Limits) -> Vec<usize> {
    let mut in_flight: std::collections::BTreeMap<&str, u32> = Default::default();
    for h in &ring.hosts {
        if h.progress == HostProgress::InFlight
            && let Some(d) = h.domain.as_deref()
        {
            *in_flight.entry(d).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    for (i, h) in ring.hosts.iter().enumerate() {
        if h.progress != HostProgress::NotStarted || !h.window_open {
            continue;
        }
        if let (Some(max), Some(d)) = (limits.max_per_domain, h.domain.as_deref()) {
            let n = in_flight.entry(d).or_default();
            if *n >= max {
                continue;
            }
            *n += 1;
        }
        out.push(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn host(progress: HostProgress, domain: Option<&str>) -> HostInput {
        HostInput {
            progress,
            window_open: true,
            domain: domain.map(str::to_owned),
        }
    }

    fn ring(state: RingState, hosts: Vec<HostInput>) -> RingInput {
        RingInput {
            state,
            soak: None,
            gate_closed: false,
            hosts,
        }
    }

    #[test]
    fn the_first_unverified_ring_starts_and_the_next_waits_for_it() {
        let rings = vec![
            ring(
                RingState::Waiting,
                vec![host(HostProgress::NotStarted, None)],
            ),
            ring(
                RingState::Waiting,
                vec![host(HostProgress::NotStarted, None)],
            ),
        ];
        assert_eq!(
            next_step(&rings, Limits::default(), t(0)),
            Step::Start {
                ring: 0,
                hosts: vec![0]
            }
        );
    }

    #[test]
    fn soak_and_gate_hold_a_finished_ring() {
        let limits = Limits {
            soak: SignedDuration::from_mins(30),
            ..Limits::default()
        };
        let mut rings = vec![ring(
            RingState::Running,
            vec![host(HostProgress::Verified { at: t(0) }, None)],
        )];
        assert_eq!(next_step(&rings, limits, t(60)), Step::Wait);
        assert_eq!(next_step(&rings, limits, t(1800)), Step::Verify { ring: 0 });
        rings[0].gate_closed = true;
        assert_eq!(next_step(&rings, limits, t(1800)), Step::Wait);
        // A ring's own soak (a template's week after the test ring) overrides the limits'.
        rings[0].gate_closed = false;
        rings[0].soak = Some(SignedDuration::from_hours(24 * 7));
        assert_eq!(next_step(&rings, limits, t(1800)), Step::Wait);
        assert_eq!(
            next_step(&rings, limits, t(7 * 86_400)),
            Step::Verify { ring: 0 }
        );
    }

    #[test]
    fn failures_beyond_the_threshold_halt() {
        let limits = Limits {
            max_failures: 1,
            ..Limits::default()
        };
        let mut rings = vec![ring(
            RingState::Running,
            vec![
                host(HostProgress::Failed { at: t(0) }, None),
                host(HostProgress::InFlight, None),
                host(HostProgress::Verified { at: t(0) }, None),
            ],
        )];
        assert_eq!(next_step(&rings, limits, t(1)), Step::Wait);
        rings[0].hosts[1].progress = HostProgress::Failed { at: t(1) };
        assert_eq!(
            next_step(&rings, limits, t(2)),
            Step::Halt {
                ring: 0,
                failed: vec![0, 1]
            }
        );
    }

    #[test]
    fn a_failure_domain_never_has_more_than_its_limit_in_flight() {
        let limits = Limits {
            max_per_domain: Some(1),
            ..Limits::default()
        };
        let rings = vec![ring(
            RingState::Running,
            vec![
                host(HostProgress::InFlight, Some("hv-1")),
                host(HostProgress::NotStarted, Some("hv-1")),
                host(HostProgress::NotStarted, Some("hv-2")),
                host(HostProgress::NotStarted, Some("hv-2")),
                host(HostProgress::NotStarted, None),
            ],
        )];
        assert_eq!(
            next_step(&rings, limits, t(0)),
            Step::Start {
                ring: 0,
                hosts: vec![2, 4]
            }
        );
    }

    #[test]
    fn waves_split_the_broad_hosts_by_size_or_percentage_and_lose_none() {
        assert_eq!(Waves::Size(3).sizes(7), [3, 3, 1]);
        assert_eq!(Waves::Size(3).sizes(0), Vec::<usize>::new());
        assert_eq!(Waves::Percent(vec![10, 40, 50]).sizes(20), [2, 8, 10]);
        // Rounded up: 10 % of 3 hosts is one host; the rest fill the later waves.
        assert_eq!(Waves::Percent(vec![10, 40, 50]).sizes(3), [1, 2]);
        // Percentages short of 100: the last wave takes the rest.
        assert_eq!(Waves::Percent(vec![25]).sizes(8), [8]);
        assert_eq!(Waves::Percent(vec![10, 20]).sizes(10), [1, 9]);
        for n in 0..200 {
            for w in [Waves::Size(7), Waves::Percent(vec![1, 9, 30, 60])] {
                let sizes = w.sizes(n);
                assert_eq!(sizes.iter().sum::<usize>(), n);
                assert!(sizes.iter().all(|&s| s > 0));
            }
        }
        assert!(Waves::Size(0).check().is_err());
        assert!(Waves::Percent(vec![60, 60]).check().is_err());
        assert!(Waves::Percent(vec![]).check().is_err());
        assert!(Waves::Percent(vec![10, 90]).check().is_ok());
    }

    /// A small deterministic generator, so the exploration needs no dependency and replays.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Property: over thousands of random rollouts — random ring sizes, domains, windows
    /// opening and closing, hosts succeeding and failing at random times, gates released at
    /// random — applying the steps never starts a host of a ring before every earlier ring is
    /// verified, never starts anything after a halt, never has more than the domain limit in
    /// flight, never verifies a ring before its soak time, and always ends (complete or halted).
    #[test]
    fn no_random_rollout_breaks_the_ring_order_the_halt_the_soak_or_the_domain_limit() {
        for seed in 1..=3000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let limits = Limits {
                max_failures: rng.below(3) as u32,
                soak: SignedDuration::from_mins(rng.below(3) as i64 * 10),
                max_per_domain: if rng.below(2) == 0 {
                    None
                } else {
                    Some(1 + rng.below(2) as u32)
                },
            };
            let domains = ["a", "b", "c"];
            let mut rings: Vec<RingInput> = (0..1 + rng.below(4))
                .map(|_| RingInput {
                    state: RingState::Waiting,
                    soak: None,
                    gate_closed: rng.below(4) == 0,
                    hosts: (0..1 + rng.below(5))
                        .map(|_| HostInput {
                            progress: if rng.below(6) == 0 {
                                HostProgress::NothingToDo
                            } else {
                                HostProgress::NotStarted
                            },
                            window_open: rng.below(3) != 0,
                            domain: (rng.below(3) != 0)
                                .then(|| domains[rng.below(3) as usize].to_owned()),
                        })
                        .collect(),
                })
                .collect();
            let mut now = t(0);
            let mut halted = false;
            let mut finished = false;
            for _ in 0..500 {
                now += SignedDuration::from_mins(rng.below(20) as i64);
                // The world moves: windows open and close, jobs finish, gates are released.
                for r in &mut rings {
                    if rng.below(5) == 0 {
                        r.gate_closed = false;
                    }
                    for h in &mut r.hosts {
                        if rng.below(4) == 0 {
                            h.window_open = !h.window_open;
                        }
                        if h.progress == HostProgress::InFlight && rng.below(3) == 0 {
                            h.progress = if rng.below(5) == 0 {
                                HostProgress::Failed { at: now }
                            } else {
                                HostProgress::Verified { at: now }
                            };
                        }
                    }
                }
                match next_step(&rings, limits, now) {
                    Step::Wait => {}
                    Step::Start { ring, hosts } => {
                        assert!(!halted, "seed {seed}: started after a halt");
                        assert!(!hosts.is_empty());
                        for earlier in &rings[..ring] {
                            assert_eq!(
                                earlier.state,
                                RingState::Verified,
                                "seed {seed}: ring {ring} started before an earlier one verified"
                            );
                        }
                        let r = &mut rings[ring];
                        r.state = RingState::Running;
                        for i in hosts {
                            assert_eq!(r.hosts[i].progress, HostProgress::NotStarted);
                            assert!(
                                r.hosts[i].window_open,
                                "seed {seed}: started outside its window"
                            );
                            r.hosts[i].progress = HostProgress::InFlight;
                        }
                        if let Some(max) = limits.max_per_domain {
                            for d in domains {
                                let n = r
                                    .hosts
                                    .iter()
                                    .filter(|h| {
                                        h.progress == HostProgress::InFlight
                                            && h.domain.as_deref() == Some(d)
                                    })
                                    .count();
                                assert!(n as u32 <= max, "seed {seed}: {n} in flight in {d}");
                            }
                        }
                    }
                    Step::Verify { ring } => {
                        let r = &rings[ring];
                        assert!(
                            !r.gate_closed,
                            "seed {seed}: verified through a closed gate"
                        );
                        let last = r
                            .hosts
                            .iter()
                            .filter_map(|h| match h.progress {
                                HostProgress::Verified { at } | HostProgress::Failed { at } => {
                                    Some(at)
                                }
                                HostProgress::NothingToDo => None,
                                other => panic!("seed {seed}: verified with a host {other:?}"),
                            })
                            .max();
                        if let Some(last) = last {
                            assert!(now >= last + limits.soak, "seed {seed}: soak cut short");
                        }
                        rings[ring].state = RingState::Verified;
                    }
                    Step::Halt { ring, failed } => {
                        assert!(failed.len() > limits.max_failures as usize);
                        rings[ring].state = RingState::Failed;
                        for r in &mut rings[ring + 1..] {
                            r.state = RingState::Skipped;
                        }
                        halted = true;
                    }
                    Step::Halted => {
                        assert!(halted, "seed {seed}: halted without a halt");
                        finished = true;
                        break;
                    }
                    Step::Complete => {
                        assert!(rings.iter().all(|r| r.state == RingState::Verified));
                        finished = true;
                        break;
                    }
                }
            }
            assert!(finished, "seed {seed}: the rollout never ended: {rings:#?}");
        }
    }
}
