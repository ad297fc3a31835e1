//! The difference between two inventories of one host, so that an agent sends only what
//! changed since its last check-in, and the server rebuilds the new inventory exactly.
//!
//! A delta names the digest of the package list it applies to and the digest of the list it
//! produces. [`apply`] refuses a delta whose base is not the inventory it is given (the agent and
//! the server disagree about the past, and the agent must send a full inventory), and checks the
//! result against the promised digest, so a delta can never silently produce a different list.
//!
//! Packages are a multiset: rpm hosts keep several `kernel` packages of one name and
//! architecture side by side, and a broken dpkg database can list one record twice. Records are
//! matched exactly; a package whose identity (manager, name, architecture) appears once on each
//! side with different contents is reported as *changed*, everything else as *added* or
//! *removed*.
//!
//! The rebuilt inventory lists its packages in canonical order (`Package`'s `Ord`), the order
//! [`Inventory::canonicalize`] gives and the collectors already produce, so
//! `apply(a, delta(a, b)) == b` for every canonical `b`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{AvailableUpdate, HostFacts, Inventory, Manager, Package, PackagesDigest};

/// What changed between two inventories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryDelta {
    /// The digest of the package list this delta applies to.
    pub base: PackagesDigest,
    /// The digest of the package list it produces.
    pub result: PackagesDigest,
    /// Packages that are new, in canonical order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<Package>,
    /// Packages that are gone, each as the old record, in canonical order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<Package>,
    /// Packages whose record changed (an upgrade, a downgrade, a status change), in canonical
    /// order of the old record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<PackageChange>,
    /// The new host facts, when they differ from the old ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostFacts>,
    /// The new available updates and when they were computed, when either differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updates: Option<UpdatesSnapshot>,
}

impl InventoryDelta {
    /// Whether nothing changed at all.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.host.is_none()
            && self.updates.is_none()
    }
}

/// One package whose record changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageChange {
    pub old: Package,
    pub new: Package,
}

/// The available-updates part of an inventory, replaced as a whole when it changes: it is
/// recomputed as a whole on the host, and small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdatesSnapshot {
    #[serde(default)]
    pub updates: Vec<AvailableUpdate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<Timestamp>,
}

/// Why a delta could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error(
        "the delta applies to packages with digest {expected}, but the inventory it was given \
         has {actual}: send a full inventory"
    )]
    BaseMismatch {
        expected: PackagesDigest,
        actual: PackagesDigest,
    },
    #[error("the delta {role} package {package} which the inventory does not list")]
    MissingPackage {
        /// `removes` or `changes`.
        role: &'static str,
        /// `manager name version arch`, for people.
        package: String,
    },
    #[error("applying the delta gave packages with digest {actual}, not the promised {expected}")]
    ResultMismatch {
        expected: PackagesDigest,
        actual: PackagesDigest,
    },
}

impl Inventory {
    /// Sorts the packages into canonical order (`Package`'s `Ord`: manager, name, version,
    /// architecture …). The digest does not depend on order; equality of inventories does.
    pub fn canonicalize(&mut self) {
        self.packages.sort();
    }

    /// The digest of this inventory's packages (see [`PackagesDigest`]).
    pub fn packages_digest(&self) -> PackagesDigest {
        PackagesDigest::of(&self.packages)
    }
}

/// A package's identity across versions: what makes an old and a new record "the same package".
type Identity<'a> = (Manager, &'a str, Option<&'a str>);

fn identity(p: &Package) -> Identity<'_> {
    (p.manager, p.name.as_str(), p.arch.as_deref())
}

/// What changed from `old` to `new`.
pub fn delta(old: &Inventory, new: &Inventory) -> InventoryDelta {
    let mut old_sorted: Vec<&Package> = old.packages.iter().collect();
    let mut new_sorted: Vec<&Package> = new.packages.iter().collect();
    old_sorted.sort();
    new_sorted.sort();

    // A merge walk over the two sorted lists leaves the records that are not in both (as
    // multisets: two equal records on the left and one on the right leave one on the left).
    let (mut old_only, mut new_only) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    loop {
        match (old_sorted.get(i), new_sorted.get(j)) {
            (Some(a), Some(b)) => match a.cmp(b) {
                std::cmp::Ordering::Equal => {
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => {
                    old_only.push(*a);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    new_only.push(*b);
                    j += 1;
                }
            },
            (Some(a), None) => {
                old_only.push(*a);
                i += 1;
            }
            (None, Some(b)) => {
                new_only.push(*b);
                j += 1;
            }
            (None, None) => break,
        }
    }

    let mut groups: BTreeMap<Identity<'_>, (Vec<&Package>, Vec<&Package>)> = BTreeMap::new();
    for p in old_only {
        groups.entry(identity(p)).or_default().0.push(p);
    }
    for p in new_only {
        groups.entry(identity(p)).or_default().1.push(p);
    }
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for (olds, news) in groups.into_values() {
        match (olds.as_slice(), news.as_slice()) {
            ([o], [n]) => changed.push(PackageChange {
                old: (*o).clone(),
                new: (*n).clone(),
            }),
            _ => {
                removed.extend(olds.into_iter().cloned());
                added.extend(news.into_iter().cloned());
            }
        }
    }
    added.sort();
    removed.sort();
    changed.sort_by(|a, b| a.old.cmp(&b.old));

    let updates = (old.updates != new.updates || old.updates_checked_at != new.updates_checked_at)
        .then(|| UpdatesSnapshot {
            updates: new.updates.clone(),
            checked_at: new.updates_checked_at,
        });
    InventoryDelta {
        base: old.packages_digest(),
        result: new.packages_digest(),
        added,
        removed,
        changed,
        host: (old.host != new.host).then(|| new.host.clone()),
        updates,
    }
}

/// Rebuilds the new inventory from the old one and a delta, with its packages in canonical
/// order.
pub fn apply(old: &Inventory, delta: &InventoryDelta) -> Result<Inventory, DeltaError> {
    let actual = old.packages_digest();
    if actual != delta.base {
        return Err(DeltaError::BaseMismatch {
            expected: delta.base,
            actual,
        });
    }
    // Counts per exact record: a multiset that removal can take from one record at a time.
    let mut counts: BTreeMap<&Package, usize> = BTreeMap::new();
    for p in &old.packages {
        *counts.entry(p).or_default() += 1;
    }
    let removals = delta
        .removed
        .iter()
        .map(|p| ("removes", p))
        .chain(delta.changed.iter().map(|c| ("changes", &c.old)));
    for (role, p) in removals {
        match counts.get_mut(p) {
            Some(n) if *n > 0 => *n -= 1,
            _ => {
                return Err(DeltaError::MissingPackage {
                    role,
                    package: describe(p),
                });
            }
        }
    }
    let mut packages: Vec<Package> = counts
        .into_iter()
        .flat_map(|(p, n)| std::iter::repeat_n(p, n).cloned())
        .chain(delta.added.iter().cloned())
        .chain(delta.changed.iter().map(|c| c.new.clone()))
        .collect();
    packages.sort();

    let actual = PackagesDigest::of(&packages);
    if actual != delta.result {
        return Err(DeltaError::ResultMismatch {
            expected: delta.result,
            actual,
        });
    }
    let (updates, updates_checked_at) = match &delta.updates {
        Some(u) => (u.updates.clone(), u.checked_at),
        None => (old.updates.clone(), old.updates_checked_at),
    };
    Ok(Inventory {
        host: delta.host.clone().unwrap_or_else(|| old.host.clone()),
        packages,
        updates,
        updates_checked_at,
    })
}

fn describe(p: &Package) -> String {
    format!(
        "{} {} {} {}",
        p.manager.name(),
        p.name,
        p.full_version(),
        p.arch.as_deref().unwrap_or("-")
    )
}
