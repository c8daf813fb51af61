//! Local meshmind testnets: generate keys and a genesis, launch real `meshmind` processes, inject
//! faults (kill, restart, pause, wipe, partition), play scenario files with assertions, and write reports.

#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod assertion;
pub mod hostile;
pub mod launcher;
pub mod load;
pub mod manifest;
pub mod netns;
pub mod operator;
pub mod partition;
pub mod peer;
pub mod process;
pub mod report;
pub mod run;
pub mod scenario;
pub mod status;

pub use meshmind_node as node;
