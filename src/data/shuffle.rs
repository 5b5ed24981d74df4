//! Seeded permutations for per-epoch shuffles and the train/validation split.
//!
//! The generator is spelled out here (SplitMix64 to derive the state,
//! xoshiro256** to draw, Lemire's unbiased bounded integers, Fisher–Yates)
//! rather than taken from `rand`, whose `StdRng` may change algorithm between
//! releases: a run's `(seed, epoch)` must give the same minibatches after a
//! dependency update, and the same on every platform.

/// Domains keep the split's stream apart from the epochs' streams, so that
/// epoch `k` never replays the split's permutation.
pub(crate) const DOMAIN_EPOCH: u64 = 0x45_50_4f_43_48; // "EPOCH"
pub(crate) const DOMAIN_SPLIT: u64 = 0x53_50_4c_49_54; // "SPLIT"

/// The permutation of `0..n` used for epoch `epoch` of a run seeded `seed`.
///
/// Deterministic: the same `(n, seed, epoch)` gives the same order on every
/// platform and release of this crate (a test pins the values).
pub fn permutation(n: u32, seed: u64, epoch: u64) -> Vec<u32> {
    permutation_in(n, seed, DOMAIN_EPOCH, epoch)
}

pub(crate) fn permutation_in(n: u32, seed: u64, domain: u64, index: u64) -> Vec<u32> {
    let mut rng = Xoshiro256::new(seed, domain, index);
    let mut p: Vec<u32> = (0..n).collect();
    for i in (1..p.len()).rev() {
        // i + 1 <= n <= u32::MAX
        let j = rng.below(i as u32 + 1) as usize;
        p.swap(i, j);
    }
    p
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Xoshiro256 {
    s: [u64; 4],
}

impl Xoshiro256 {
    /// Chained hashing, so that (seed, domain, index) triples that differ in
    /// any part start from unrelated states.
    fn new(seed: u64, domain: u64, index: u64) -> Self {
        let mut x = seed;
        let mut y = splitmix64(&mut x) ^ domain;
        let mut z = splitmix64(&mut y) ^ index;
        let mut sm = splitmix64(&mut z);
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Xoshiro256 { s }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` without modulo bias (Lemire 2019). `n > 0`.
    fn below(&mut self, n: u32) -> u32 {
        let n64 = u64::from(n);
        let mut m = (self.next_u64() >> 32) * n64;
        if (m as u32) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u32) < threshold {
                m = (self.next_u64() >> 32) * n64;
            }
        }
        (m >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_hits_every_value() {
        let mut rng = Xoshiro256::new(1, 2, 3);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            seen[rng.below(7) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn tiny_permutations() {
        assert!(permutation(0, 5, 0).is_empty());
        assert_eq!(permutation(1, 5, 0), vec![0]);
    }
}
