//! NumPy's legacy generator (`np.random.seed(s)`, then `uniform`, `normal`,
//! `randn`, `shuffle`), reproduced so that the course's seeded data are the
//! notebooks' own: the Levenberg–Marquardt points and the linear-regression
//! data of notebook 001 were drawn after `np.random.seed(42)`, and with this
//! generator our fits print the notebook's figures. Where a notebook drew
//! unseeded data, the experiments state the seed they use here, so that
//! the same draws can be had in Python with `np.random.seed(seed)`.
//!
//! The algorithms: MT19937 seeded with `init_genrand` (NumPy's
//! `_legacy_seeding` for an integer), doubles from two draws (27 + 26
//! bits, as `random_sample`), and the polar Box–Muller method that caches
//! its second value (`legacy_gauss`).

/// MT19937 with NumPy's legacy draws on top.
#[derive(Clone, Debug)]
pub struct NumpyRng {
    state: [u32; 624],
    index: usize,
    gauss: Option<f64>,
}

impl NumpyRng {
    /// The generator `np.random.seed(seed)` makes.
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self {
            state,
            index: 624,
            gauss: None,
        }
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 == 1 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    /// The next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A double in [0, 1) (`np.random.random_sample`).
    pub fn next_f64(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `np.random.uniform(lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// `np.random.randn()`: a standard normal draw.
    pub fn randn(&mut self) -> f64 {
        if let Some(g) = self.gauss.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.next_f64() - 1.0;
            let x2 = 2.0 * self.next_f64() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.gauss = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// `np.random.normal(mean, std, n)`.
    pub fn normal(&mut self, mean: f64, std: f64, n: usize) -> Vec<f64> {
        (0..n).map(|_| mean + std * self.randn()).collect()
    }

    /// A uniform integer in `0..=max` by masked rejection (NumPy's legacy
    /// `random_interval`).
    pub fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for s in [1, 2, 4, 8, 16] {
            mask |= mask >> s;
        }
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `np.random.shuffle` of a 1-D array: Fisher–Yates from the end.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.interval(i as u32) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `np.random.seed(0); np.random.random_sample()` and
    /// `np.random.seed(42); np.random.randn()`: NumPy's documented first
    /// draws for those seeds.
    #[test]
    fn first_draws_are_numpys() {
        assert_eq!(NumpyRng::new(0).next_f64(), 0.5488135039273248);
        let mut r = NumpyRng::new(42);
        assert!((r.randn() - 0.4967141530112327).abs() < 1e-15);
        assert!((r.randn() - (-0.13826430117118466)).abs() < 1e-15);
    }
}
