//! `wgpu_train::lab::verify`, the table the browser page shows and the browser
//! tests assert (web/), run natively: every family has cases, every case
//! passes on this adapter.

use crate::common::gpu;
use wgpu_train::lab::verify::{self, Family};

#[test]
fn every_family_has_cases_and_every_case_passes() {
    let rows = pollster::block_on(verify::run_all(gpu(), 7)).expect("verify ran");
    for f in Family::ALL {
        assert!(
            rows.iter().any(|r| r.family == f.name()),
            "{f:?} has no cases"
        );
    }
    let failed: Vec<_> = rows.iter().filter(|r| !r.pass).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    for r in &rows {
        assert!(r.worst_error.is_finite(), "{r:?}");
        assert!(r.gpu_ms > 0.0 && r.cpu_ms >= 0.0, "{r:?}");
    }
}
