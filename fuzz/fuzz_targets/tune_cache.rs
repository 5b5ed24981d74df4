//! The autotune cache reader's parsing (issue 28): any bytes in the cache
//! file's place give choices or a reason, never a panic; and a file that
//! gives choices for one adapter is, for any other adapter, a file of ours
//! (rewritten, not kept as foreign).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_train::gpu::parse_cache;

const ADAPTER: &str = "llvmpipe | Vulkan | vendor 0x10005 device 0x0 | llvmpipe Mesa";

fuzz_target!(|bytes: &[u8]| {
    match parse_cache(bytes, ADAPTER) {
        Ok(_) => match parse_cache(bytes, "another adapter") {
            Err((why, ours)) => assert!(ours && why.contains("another adapter"), "{why}"),
            Ok(_) => panic!("one file gave choices for two adapters"),
        },
        Err((why, _)) => assert!(!why.is_empty()),
    }
});
