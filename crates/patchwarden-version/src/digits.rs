//! Helpers shared by the schemes for runs of decimal digits of any length.
//!
//! Package versions contain digit runs longer than any machine integer (dates with times,
//! git describe output, 40-digit runs in fuzzers), so numbers are compared as strings: strip
//! leading zeros, the longer run is larger, equal lengths compare byte by byte.

use std::cmp::Ordering;

/// Strips leading `'0'` bytes.
pub(crate) fn trim_zeros(mut s: &[u8]) -> &[u8] {
    while let [b'0', rest @ ..] = s {
        s = rest;
    }
    s
}

/// Compares two runs of ASCII digits numerically, whatever their length.
pub(crate) fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let (a, b) = (trim_zeros(a), trim_zeros(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Where a comparison can resume after two versions' identical prefix: the prefix's length,
/// moved back to the start of the run (of bytes for which `in_run` holds) that it ends in,
/// because a run compares as a whole (`10` vs `9` differ at the first byte, but `10` is the
/// larger). Versions that are compared usually share most of their length (`2.36-9+deb12u3`
/// against `2.36-9+deb12u4`), so this skips most of the character-by-character work.
#[inline]
pub(crate) fn resume_after_common_prefix(a: &[u8], b: &[u8], in_run: impl Fn(u8) -> bool) -> usize {
    let max = a.len().min(b.len());
    let mut n = 0;
    while n + 8 <= max && a[n..n + 8] == b[n..n + 8] {
        n += 8;
    }
    while n < max && a[n] == b[n] {
        n += 1;
    }
    while n > 0 && in_run(a[n - 1]) {
        n -= 1;
    }
    n
}

/// Length of the leading run of ASCII digits.
pub(crate) fn digit_run(s: &[u8]) -> usize {
    s.iter().take_while(|c| c.is_ascii_digit()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_runs_compare_numerically() {
        let forty_nines = [b'9'; 40];
        let one_and_forty_zeros: Vec<u8> = std::iter::once(b'1')
            .chain(std::iter::repeat_n(b'0', 40))
            .collect();
        assert_eq!(
            cmp_digits(&forty_nines, &one_and_forty_zeros),
            Ordering::Less
        );
        assert_eq!(cmp_digits(b"0007", b"7"), Ordering::Equal);
        assert_eq!(cmp_digits(b"", b"0"), Ordering::Equal);
        assert_eq!(cmp_digits(b"10", b"9"), Ordering::Greater);
    }
}
