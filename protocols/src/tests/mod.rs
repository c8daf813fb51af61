//! Tests of the wire contract: golden vectors, round trips, signing properties, key files, validation.

mod codec;
mod golden;
mod keyfile;
mod samples;
mod signing;
mod validation;
