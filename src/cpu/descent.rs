//! CPU twin of `shaders/descent.wgsl`: gradient descent with centred
//! differences from many starts, in f32 with the shader's operations in its
//! order (so the two differ only where the GPU fuses a multiply-add).

use crate::error::{Error, Result};
use crate::kernels::descent::{Surface, check_descent};

fn f1(x: f32) -> f32 {
    let d = x - 1.0;
    d * d
}

fn f2(x: f32, y: f32) -> f32 {
    let (xx, yy, d) = (x * x, y * y, x - y);
    xx * xx + yy * yy - 2.0 * (d * d)
}

/// Every start's path, `[starts, steps + 1, dims]` flattened: the start,
/// then the point after each step. Errors as the GPU twin's.
pub fn descent(
    surface: Surface,
    starts: &[f32],
    steps: usize,
    gamma: f32,
    h: f32,
) -> Result<Vec<f32>> {
    let dims = surface.dims();
    if starts.is_empty() || !starts.len().is_multiple_of(dims) {
        return Err(Error::InvalidArgument {
            name: "descent",
            msg: format!(
                "{} start values are not a whole number of {dims}-D points",
                starts.len()
            ),
        });
    }
    let n = starts.len() / dims;
    let len = check_descent(surface, n, steps, gamma, h)?;
    let mut path = Vec::with_capacity(len);
    for s in starts.chunks_exact(dims) {
        match surface {
            Surface::Parabola => {
                let mut x = s[0];
                path.push(x);
                for _ in 0..steps {
                    let d = (f1(x + h) - f1(x - h)) / (2.0 * h);
                    x -= gamma * d;
                    path.push(x);
                }
            }
            Surface::Quartic => {
                let (mut x, mut y) = (s[0], s[1]);
                path.extend([x, y]);
                for _ in 0..steps {
                    let dx = (f2(x + h, y) - f2(x - h, y)) / (2.0 * h);
                    x -= gamma * dx;
                    let dy = (f2(x, y + h) - f2(x, y - h)) / (2.0 * h);
                    y -= gamma * dy;
                    path.extend([x, y]);
                }
            }
        }
    }
    Ok(path)
}
