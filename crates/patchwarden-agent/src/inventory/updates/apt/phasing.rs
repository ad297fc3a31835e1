//! apt's phased updates: which hosts a `Phased-Update-Percentage` update has reached.
//!
//! Ubuntu (and any archive that sets the field) rolls an update out to a share of machines
//! first. apt decides per machine, reproducibly: it seeds C++'s `std::seed_seq` with the
//! string `<source package>-<source version>-<machine id>`, draws once from a
//! `std::minstd_rand` through `std::uniform_int_distribution(0, 100)` as libstdc++
//! implements it, and includes the host when the draw is at most the percentage. We compute
//! the same draw so the report says what apt would do on this host, and the tests check it
//! against apt's own `apt-get -s upgrade` for many machine ids.
//!
//! The algorithms below are the ones the C++ standard specifies for `seed_seq::generate`
//! ([rand.util.seedseq]) and `linear_congruential_engine`, and libstdc++'s down-scaling
//! `uniform_int_distribution` for an engine whose range is not a power of two.

/// Whether apt would include this host in a phased update of `percentage` per cent.
pub fn host_in_phase(source: &str, source_version: &str, machine_id: &str, percentage: u8) -> bool {
    draw(&format!("{source}-{source_version}-{machine_id}")) <= u32::from(percentage)
}

/// apt's draw in `0..=100` for a seed string.
pub fn draw(seed: &str) -> u32 {
    // `std::seed_seq` holds each `char` as a 32-bit value. Package names, versions (both
    // ASCII by dpkg's rules) and machine ids (hex) never reach the bytes where a signed
    // `char` would differ.
    let v: Vec<u32> = seed.bytes().map(u32::from).collect();
    let mut engine = MinStd::from_seed_seq(&v);
    uniform_0_to_100(&mut engine)
}

/// `std::minstd_rand`: x ← 48271·x mod (2³¹−1).
struct MinStd(u64);

const MINSTD_M: u64 = 2_147_483_647;

impl MinStd {
    /// `linear_congruential_engine::seed(seed_seq&)`: one 32-bit word is enough for a modulus
    /// below 2³², so k = 1 and the state is word 3 of a four-word `generate`, mod m (0 → 1).
    fn from_seed_seq(v: &[u32]) -> MinStd {
        let words = seed_seq_generate4(v);
        let s = u64::from(words[3]) % MINSTD_M;
        MinStd(if s == 0 { 1 } else { s })
    }

    fn next(&mut self) -> u64 {
        self.0 = (self.0 * 48_271) % MINSTD_M;
        self.0
    }
}

/// libstdc++'s `uniform_int_distribution<unsigned>(0, 100)` on `minstd_rand`: the engine's
/// range (1 ..= 2³¹−2) is not a power of two, so it down-scales: rejects draws at or above
/// the largest multiple of 101 that fits, then divides.
fn uniform_0_to_100(engine: &mut MinStd) -> u32 {
    const ENGINE_MIN: u64 = 1;
    const ENGINE_RANGE: u64 = MINSTD_M - 1 - ENGINE_MIN;
    const BUCKETS: u64 = 101;
    const SCALING: u64 = ENGINE_RANGE / BUCKETS;
    const PAST: u64 = BUCKETS * SCALING;
    loop {
        let r = engine.next() - ENGINE_MIN;
        if r < PAST {
            // r / SCALING < 101, so the cast cannot truncate.
            return (r / SCALING) as u32;
        }
    }
}

/// `std::seed_seq::generate` for an output of four words, as [rand.util.seedseq] specifies.
fn seed_seq_generate4(v: &[u32]) -> [u32; 4] {
    const N: usize = 4;
    // t = (n - 1) / 2 for n < 7; p = (n - t) / 2; q = p + t.
    const T: usize = (N - 1) / 2;
    const P: usize = (N - T) / 2;
    const Q: usize = P + T;
    let mut b = [0x8b8b_8b8b_u32; N];
    let s = v.len();
    let m = (s + 1).max(N);
    let mix = |x: u32| x ^ (x >> 27);
    // Indices are always taken mod N, and `k + N - 1` keeps `k - 1` from underflowing.
    for k in 0..m {
        let r1 = 1_664_525_u32.wrapping_mul(mix(b[k % N] ^ b[(k + P) % N] ^ b[(k + N - 1) % N]));
        let r2 = if k == 0 {
            r1.wrapping_add(s as u32)
        } else if k <= s {
            r1.wrapping_add((k % N) as u32)
                .wrapping_add(v.get(k - 1).copied().unwrap_or(0))
        } else {
            r1.wrapping_add((k % N) as u32)
        };
        b[(k + P) % N] = b[(k + P) % N].wrapping_add(r1);
        b[(k + Q) % N] = b[(k + Q) % N].wrapping_add(r2);
        b[k % N] = r2;
    }
    for k in m..m + N {
        let sum = b[k % N]
            .wrapping_add(b[(k + P) % N])
            .wrapping_add(b[(k + N - 1) % N]);
        let r3 = 1_566_083_941_u32.wrapping_mul(mix(sum));
        let r4 = r3.wrapping_sub((k % N) as u32);
        b[(k + P) % N] ^= r3;
        b[(k + Q) % N] ^= r4;
        b[k % N] = r4;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws apt 2.6 made on a Debian 12 host (checked with `apt-get -s upgrade` on a
    /// sandbox root whose `/etc/machine-id` was set to each id; see `tests/updates_apt.rs`
    /// for the live check).
    #[test]
    fn draws_match_apt() {
        assert_eq!(draw("phased-1.0-2-0123456789abcdef0123456789abcdef"), 81);
        assert_eq!(draw("phased-1.0-2-00000000000000000000003f0a1a7c86"), 50);
        assert_eq!(draw("srcx-7.0-1-000000000000000000000000316edc57"), 41);
    }
}
