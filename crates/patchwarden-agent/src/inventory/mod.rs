//! Inventory collectors: each reads one package manager's real database under a root.

pub mod apk;
pub mod collect;
pub mod dpkg;
pub mod rpm;
pub mod sbom;
pub mod updates;
