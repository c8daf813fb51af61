//! meshmind node roles (miner, validator, observer), consensus, the chain, the ledger and operator
//! tooling.
//!
//! Miners serve queries, validators score them, route client queries, publish weights and finalize
//! one snapshot per epoch with a BFT gadget into a RocksDB ledger; observers follow the ledger.
//!
//! # Module map
//!
//! | module | holds |
//! |---|---|
//! | [`runtime`] | `meshmind run`: reads keys, genesis and config, assembles the node, serves the API |
//! | [`cli`], [`wallet`], [`client`] | the `meshmind` commands, transactions and accounts, queries |
//! | [`api`] | HTTP routes, the request/response [`api::types`] every client shares, [`api::client::ApiClient`] |
//! | [`node`], [`service`] | the router: [`service::Service`]s declare topics, request kinds and queries; one cancellation token stops them in order |
//! | [`role`] | `miner/` (service, ads, backends), `quota` (callers' quotas at a miner, by stake), `admission` (why a query is refused) and `validator/` (router with one hedge and backpressure, challenges, weights, metagraph), reference tasks |
//! | [`chain`] | the application of consensus: snapshots (building, checking, replaying a ledger), the `driver` that performs the engine's actions, the consensus service and `sync` serving |
//! | [`consensus`] | the pure Tendermint `core`, the `engine` (inputs to ordered actions: persist, sign, broadcast, schedule, commit), the `App` boundary, `wire` conversions, simulations |
//! | [`ledger`] | storage behind the `Store` trait: RocksDB (`Ledger`) and in memory (`MemStore`) |
//! | [`state`], [`yuma`] | the economy (accounts, stake, subnets with their own rules, transactions, emission and the market among subnets, delegation, hotkey swaps, mempool; canonical encoding and root) and Yuma consensus |
//! | [`topics`], [`scoring`], [`genesis`], [`config`], [`clock`], [`http`] | gossip topics, miner scores, genesis files, node config, wall-clock time, HTTP calls to local servers |

#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod chain;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod consensus;
pub mod genesis;
pub mod http;
pub mod ledger;
pub mod node;
pub mod role;
pub mod runtime;
pub mod scoring;
pub mod service;
pub mod state;
pub mod topics;
pub mod wallet;
pub mod yuma;

pub use meshmind_p2p as p2p;
pub use meshmind_protocols as protocols;
