//! A generator of nasty version pairs for differential testing.
//!
//! Random strings rarely hit the interesting paths of a version comparison, so the generator
//! builds versions from the pieces that matter — epochs (including the ones `strtol` reads
//! oddly), `~` and `^`, `+`, letters against digits, leading zeros, digit runs longer than any
//! integer, empty and multiple revisions, characters the tools reject — and pairs each version
//! with a *mutation of itself* most of the time, so that comparisons run deep into shared
//! prefixes instead of stopping at the first character. Real version strings (from Debian's
//! and AlmaLinux's archives) are mutated the same way.

/// SplitMix64: small, fast, and reproducible from a printed seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Which package manager's strings to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Debian versions: `[epoch:]upstream[-revision]`.
    Dpkg,
    /// rpm version or release strings, as `rpmvercmp` takes them.
    RpmVercmp,
    /// rpm `[epoch:]version[-release]`.
    RpmEvr,
}

/// Makes version pairs of one flavour.
#[derive(Debug)]
pub struct Generator {
    rng: Rng,
    flavor: Flavor,
    real: Vec<String>,
}

const DPKG_EPOCHS: [&str; 16] = [
    "0:",
    "1:",
    "2:",
    "10:",
    "00:",
    "01:",
    "2147483647:",
    "2147483648:",
    "+1:",
    "-0:",
    "-1:",
    ":",
    "a:",
    "1a:",
    "\n1:",
    "99999999999999999999:",
];
const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DPKG_SUFFIXES: [&str; 12] = [
    "~rc1",
    "~beta2",
    "+b1",
    "~deb12u1",
    "+deb12u2",
    "-1",
    "-0",
    "+really2.0",
    "~~",
    "~",
    ".1",
    "+dfsg-1~bpo12+1",
];
const RPM_SUFFIXES: [&str; 12] = [
    "~rc1",
    "^git20240101",
    "^",
    "~",
    ".el9",
    ".el9_4",
    "+1",
    "_1",
    "-1",
    ".fc39",
    "a",
    "^post1",
];

impl Generator {
    /// A generator seeded with `seed`, mutating `real` strings part of the time.
    pub fn new(seed: u64, flavor: Flavor, real: Vec<String>) -> Generator {
        Generator {
            rng: Rng::new(seed),
            flavor,
            real,
        }
    }

    /// The next pair: mostly a version and a mutation of it, sometimes equal strings,
    /// sometimes two unrelated versions.
    pub fn pair(&mut self) -> (String, String) {
        let a = self.version();
        match self.rng.below(10) {
            0..=5 => {
                let b = self.mutate(&a);
                (a, b)
            }
            6 => (a.clone(), a),
            _ => {
                let b = self.version();
                (a, b)
            }
        }
    }

    /// One version: a mutated real one or a synthetic one.
    pub fn version(&mut self) -> String {
        if !self.real.is_empty() && self.rng.chance(40) {
            let base = self.rng.pick(&self.real).clone();
            if self.rng.chance(30) {
                base
            } else {
                self.mutate(&base)
            }
        } else {
            self.synthetic()
        }
    }

    fn digits(&mut self) -> String {
        let len = if self.rng.chance(4) {
            15 + self.rng.below(31)
        } else {
            1 + self.rng.below(3)
        };
        let mut s = String::new();
        if self.rng.chance(10) {
            s.push('0');
        }
        for _ in 0..len {
            s.push(char::from(b'0' + self.rng.below(10) as u8));
        }
        s
    }

    fn letters(&mut self) -> String {
        let n = 1 + self.rng.below(3);
        (0..n)
            .map(|_| char::from(*self.rng.pick(LETTERS)))
            .collect()
    }

    /// A character that the flavour's tool treats oddly or rejects.
    fn odd_char(&mut self) -> char {
        match self.flavor {
            Flavor::Dpkg => *self
                .rng
                .pick(&['!', '_', '@', 'é', '\t', ' ', '\n', '^', '%', 'α']),
            Flavor::RpmVercmp | Flavor::RpmEvr => *self
                .rng
                .pick(&['%', '{', '}', 'é', 'α', ',', '/', '=', '@', '!']),
        }
    }

    fn separator(&mut self) -> char {
        match self.flavor {
            Flavor::Dpkg => *self.rng.pick(&['.', '.', '.', '+', '~', ':', '-']),
            Flavor::RpmVercmp => *self.rng.pick(&['.', '.', '.', '_', '+', '~', '^', '-']),
            Flavor::RpmEvr => *self.rng.pick(&['.', '.', '.', '_', '+', '~', '^']),
        }
    }

    /// Alternating runs of digits, letters and separators.
    fn body(&mut self, tokens: usize) -> String {
        let mut s = String::new();
        for i in 0..tokens {
            match self.rng.below(10) {
                0..=4 => s.push_str(&self.digits()),
                5..=6 => s.push_str(&self.letters()),
                7 if self.rng.chance(20) => s.push(self.odd_char()),
                _ => {
                    if i > 0 {
                        s.push(self.separator());
                    }
                }
            }
        }
        if s.is_empty() { self.digits() } else { s }
    }

    fn synthetic(&mut self) -> String {
        match self.flavor {
            Flavor::Dpkg => {
                let mut s = String::new();
                if self.rng.chance(25) {
                    let epoch = if self.rng.chance(85) {
                        *self.rng.pick(&DPKG_EPOCHS[..8])
                    } else {
                        *self.rng.pick(&DPKG_EPOCHS)
                    };
                    s.push_str(epoch);
                }
                if self.rng.chance(95) {
                    s.push_str(&self.digits());
                }
                let n = self.rng.below(7);
                s.push_str(&self.body(n));
                if self.rng.chance(50) {
                    s.push('-');
                    if self.rng.chance(97) {
                        let n = 1 + self.rng.below(4);
                        s.push_str(&self.body(n).replace([':', '-'], "."));
                    }
                }
                if self.rng.chance(3) {
                    // dpkg trims blanks around a version.
                    s = format!(" {s}\t");
                }
                s
            }
            Flavor::RpmVercmp => {
                let n = 1 + self.rng.below(7);
                self.body(n)
            }
            Flavor::RpmEvr => {
                let mut s = String::new();
                if self.rng.chance(30) {
                    if self.rng.chance(90) {
                        s.push_str(&self.digits());
                    }
                    s.push(':');
                }
                let n = 1 + self.rng.below(6);
                s.push_str(&self.body(n));
                let hyphens = match self.rng.below(10) {
                    0 => 0,
                    1 => 2,
                    _ => 1,
                };
                for _ in 0..hyphens {
                    s.push('-');
                    if self.rng.chance(97) {
                        let n = 1 + self.rng.below(4);
                        s.push_str(&self.body(n));
                    }
                }
                s
            }
        }
    }

    /// One to three edits: change a digit, insert a suffix, delete or duplicate a character,
    /// add an epoch, change case.
    pub fn mutate(&mut self, base: &str) -> String {
        let mut chars: Vec<char> = base.chars().collect();
        let edits = 1 + self.rng.below(3);
        for _ in 0..edits {
            let at = if chars.is_empty() {
                0
            } else {
                self.rng.below(chars.len() + 1)
            };
            match self.rng.below(9) {
                0 | 1 => {
                    let digits: Vec<usize> = (0..chars.len())
                        .filter(|&i| chars[i].is_ascii_digit())
                        .collect();
                    if !digits.is_empty() {
                        let i = *self.rng.pick(&digits);
                        chars[i] = char::from(b'0' + self.rng.below(10) as u8);
                    }
                }
                2 => {
                    let suffixes: &[&str] = match self.flavor {
                        Flavor::Dpkg => &DPKG_SUFFIXES,
                        _ => &RPM_SUFFIXES,
                    };
                    let suffix = *self.rng.pick(suffixes);
                    chars.splice(at..at, suffix.chars());
                }
                3 => {
                    let suffix = match self.flavor {
                        Flavor::Dpkg => *self.rng.pick(&DPKG_SUFFIXES),
                        _ => *self.rng.pick(&RPM_SUFFIXES),
                    };
                    chars.extend(suffix.chars());
                }
                4 if at < chars.len() => {
                    chars.remove(at);
                }
                5 if at < chars.len() => {
                    let c = chars[at];
                    chars.insert(at, c);
                }
                6 => {
                    let epoch = match self.flavor {
                        Flavor::Dpkg => (*self.rng.pick(&DPKG_EPOCHS[..8])).to_owned(),
                        _ => format!("{}:", self.rng.below(3)),
                    };
                    if !chars.contains(&':') {
                        chars.splice(0..0, epoch.chars());
                    }
                }
                7 if at < chars.len() => {
                    let c = chars[at];
                    chars[at] = if c.is_ascii_lowercase() {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    };
                }
                _ => {
                    let d = self.digits();
                    chars.splice(at..at, d.chars());
                }
            }
        }
        chars.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_from_the_seed() {
        let mut a = Generator::new(7, Flavor::Dpkg, vec!["1.2-3".into()]);
        let mut b = Generator::new(7, Flavor::Dpkg, vec!["1.2-3".into()]);
        for _ in 0..1000 {
            assert_eq!(a.pair(), b.pair());
        }
    }

    #[test]
    fn makes_the_nasty_cases() {
        let mut g = Generator::new(1, Flavor::Dpkg, vec![]);
        let all: Vec<String> = (0..20_000).map(|_| g.version()).collect();
        let has = |p: &dyn Fn(&str) -> bool| all.iter().any(|v| p(v));
        assert!(has(&|v| v.contains('~')));
        assert!(has(&|v| v.contains(':')));
        assert!(has(&|v| v.bytes().filter(u8::is_ascii_digit).count() > 40));
        assert!(has(&|v| v.ends_with('-')));
        assert!(has(&|v| v.contains('é')));
        let mut g = Generator::new(1, Flavor::RpmEvr, vec![]);
        let all: Vec<String> = (0..20_000).map(|_| g.version()).collect();
        assert!(all.iter().any(|v| v.contains('^')));
        assert!(all.iter().any(|v| v.matches('-').count() >= 2));
    }
}
