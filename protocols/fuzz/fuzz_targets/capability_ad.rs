#![no_main]

use libfuzzer_sys::fuzz_target;
use meshmind_protocols::v1;
use meshmind_protocols_fuzz::check_signed;

fuzz_target!(|data: &[u8]| check_signed::<v1::CapabilityAd>(data));
