//! The validator role.

pub mod weights;
