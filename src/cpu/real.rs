//! The float types the CPU twins run in: `f32` to mirror the GPU bit for bit
//! where the order of operations allows, `f64` so that the finite-difference
//! gradient check tests the very same formulas with rounding far below the
//! errors it looks for.

/// `f32` or `f64`.
pub trait Real: ndarray::NdFloat + Default {
    /// The nearest value of this type (exact for the counts and constants the
    /// twins use).
    fn of(x: f64) -> Self;
    /// Widens to `f64` for reports.
    fn to_f64(self) -> f64;
}

impl Real for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}
