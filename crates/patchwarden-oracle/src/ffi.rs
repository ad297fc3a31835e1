//! Safe wrappers over the C functions we test against.
//!
//! This is the one module of the workspace that needs `unsafe`: it calls dpkg's
//! `parseversion`/`dpkg_version_compare` and rpm's `rpmvercmp`/`rpmverParse`/`rpmverCmp`
//! through `extern "C"` declarations written from their headers (`dpkg/dpkg-db.h`,
//! `dpkg/version.h`, `dpkg/error.h`, `rpm/rpmver.h`). Each unsafe block states what makes it
//! sound.

use std::cmp::Ordering;
use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

/// `struct dpkg_version` from `dpkg/version.h`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct DpkgVersionC {
    epoch: c_uint,
    version: *const c_char,
    revision: *const c_char,
}

/// `struct dpkg_error` from `dpkg/error.h`.
#[repr(C)]
struct DpkgErrorC {
    /// `enum dpkg_msg_type`: 0 none, 1 warning, 2 error.
    kind: c_int,
    syserrno: c_int,
    text: *mut c_char,
}

const DPKG_MSG_WARN: c_int = 1;

unsafe extern "C" {
    fn parseversion(v: *mut DpkgVersionC, s: *const c_char, err: *mut DpkgErrorC) -> c_int;
    fn dpkg_version_compare(a: *const DpkgVersionC, b: *const DpkgVersionC) -> c_int;
    fn dpkg_error_destroy(err: *mut DpkgErrorC);
    fn nffreeall();

    fn rpmvercmp(a: *const c_char, b: *const c_char) -> c_int;
    fn rpmverParse(evr: *const c_char) -> *mut c_void;
    fn rpmverCmp(a: *mut c_void, b: *mut c_void) -> c_int;
    fn rpmverFree(v: *mut c_void) -> *mut c_void;
}

/// libdpkg allocates parsed versions from one global obstack (`nfmalloc`), which is neither
/// thread-safe nor freed except all at once; this lock makes one user at a time.
static DPKG: Mutex<()> = Mutex::new(());

/// Exclusive use of libdpkg's version parser. Everything it parsed is freed when it drops.
#[derive(Debug)]
pub struct Dpkg {
    _guard: MutexGuard<'static, ()>,
}

/// A version parsed by libdpkg; valid while the [`Dpkg`] that parsed it is borrowed.
#[derive(Debug, Clone, Copy)]
pub struct DpkgParsed<'a> {
    raw: DpkgVersionC,
    _arena: PhantomData<&'a Dpkg>,
}

/// What `parseversion` said about a string.
#[derive(Debug)]
pub enum DpkgParse<'a> {
    Ok(DpkgParsed<'a>),
    /// dpkg warns but still compares (e.g. a version not starting with a digit).
    Warning(DpkgParsed<'a>, String),
    Error(String),
}

impl Dpkg {
    /// Takes the library for this thread (other users wait).
    pub fn lock() -> Dpkg {
        Dpkg {
            _guard: DPKG.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }

    /// `parseversion`.
    pub fn parse(&self, s: &CStr) -> DpkgParse<'_> {
        let mut raw = DpkgVersionC {
            epoch: 0,
            version: std::ptr::null(),
            revision: std::ptr::null(),
        };
        let mut err = DpkgErrorC {
            kind: 0,
            syserrno: 0,
            text: std::ptr::null_mut(),
        };
        // SAFETY: `s` is a valid NUL-terminated string; `raw` and `err` are valid for writes.
        // We hold the lock, so no other thread uses the obstack.
        let rc = unsafe { parseversion(&mut raw, s.as_ptr(), &mut err) };
        let message = if err.text.is_null() {
            String::new()
        } else {
            // SAFETY: libdpkg set `text` to a NUL-terminated string it allocated.
            unsafe { CStr::from_ptr(err.text) }
                .to_string_lossy()
                .into_owned()
        };
        let kind = err.kind;
        // SAFETY: `err` was initialised by parseversion (or is still all-zero); destroy frees
        // its string and resets it.
        unsafe { dpkg_error_destroy(&mut err) };
        let parsed = DpkgParsed {
            raw,
            _arena: PhantomData,
        };
        match (rc, kind) {
            (0, _) => DpkgParse::Ok(parsed),
            (_, DPKG_MSG_WARN) => DpkgParse::Warning(parsed, message),
            _ => DpkgParse::Error(message),
        }
    }

    /// `dpkg_version_compare`.
    pub fn compare(&self, a: &DpkgParsed<'_>, b: &DpkgParsed<'_>) -> Ordering {
        // SAFETY: both were filled by parseversion (fully, as a warning comes after the fields
        // are set) and their strings live in the obstack until `free_all`, which needs
        // `&mut self` and so cannot run while they are borrowed.
        unsafe { dpkg_version_compare(&a.raw, &b.raw) }.cmp(&0)
    }

    /// Frees everything parsed so far (`nffreeall`).
    pub fn free_all(&mut self) {
        // SAFETY: no DpkgParsed can be alive: they borrow `self` immutably.
        unsafe { nffreeall() }
    }
}

impl Drop for Dpkg {
    fn drop(&mut self) {
        self.free_all();
    }
}

/// rpm's `rpmvercmp`.
pub fn rpm_vercmp(a: &CStr, b: &CStr) -> Ordering {
    // SAFETY: both are valid NUL-terminated strings; rpmvercmp only reads them (it copies them
    // into stack buffers of their length, so callers keep them short).
    unsafe { rpmvercmp(a.as_ptr(), b.as_ptr()) }.cmp(&0)
}

/// An EVR parsed by rpm's `rpmverParse`.
#[derive(Debug)]
pub struct RpmEvr(NonNull<c_void>);

impl RpmEvr {
    /// `rpmverParse`; `None` where rpm returns NULL (the empty string).
    pub fn parse(evr: &CStr) -> Option<RpmEvr> {
        // SAFETY: a valid NUL-terminated string; rpm copies it into the object it returns.
        NonNull::new(unsafe { rpmverParse(evr.as_ptr()) }).map(RpmEvr)
    }

    /// `rpmverCmp`, the function behind `rpm.labelCompare`.
    pub fn compare(&self, other: &RpmEvr) -> Ordering {
        // SAFETY: both objects came from rpmverParse and are not freed until drop.
        unsafe { rpmverCmp(self.0.as_ptr(), other.0.as_ptr()) }.cmp(&0)
    }
}

impl Drop for RpmEvr {
    fn drop(&mut self) {
        // SAFETY: the object came from rpmverParse and is freed once.
        unsafe { rpmverFree(self.0.as_ptr()) };
    }
}
