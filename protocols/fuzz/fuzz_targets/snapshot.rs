#![no_main]

use libfuzzer_sys::fuzz_target;
use meshmind_protocols::v1;
use meshmind_protocols_fuzz::check;

fuzz_target!(|data: &[u8]| check::<v1::Snapshot>(data));
