//! Shared checks for the decoder fuzz targets.

use meshmind_protocols::validate::Validate;
use meshmind_protocols::{Signed, Wire, decode, decode_frame};

/// Decodes arbitrary bytes as `M`, as bare bytes and as a frame; whatever decodes must re-encode to the
/// same bytes and validate without panicking.
pub fn check<M: Wire + Validate>(data: &[u8]) {
    if let Ok(message) = decode::<M>(data) {
        assert_eq!(message.encode_to_vec(), data, "decode accepted a non-canonical encoding");
        let _ = message.validate();
    }
    if let Ok(message) = decode_frame::<M>(data) {
        let _ = message.validate();
    }
}

/// [`check`], then signature verification of whatever decodes.
pub fn check_signed<M: Wire + Validate + Signed>(data: &[u8]) {
    check::<M>(data);
    if let Ok(message) = decode::<M>(data) {
        let _ = message.verify_signature();
    }
}
