//! The `--kernels` reader's parsing (issue 28): any text gives the choices
//! of its first JSON line with a `kernels` object, or a reason, never a
//! panic; the names are then checked as a replay checks them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_train::train::parse_recorded;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    match parse_recorded(&text) {
        Ok(choices) => {
            let _ = wgpu_train::tune::check_choices(&choices);
        }
        Err(why) => assert!(!why.is_empty()),
    }
});
