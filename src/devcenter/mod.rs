//! The Developer Center API: message signing, wire types, the client, and what the client may
//! hold ([`limits`]) and reach ([`policy`]).
//!
//! [`signing`] and [`wire`] are shared with the simulator, so both ends of every call are built
//! from one definition of the contract; [`DevCenterClient`] is the operator's end.

mod client;
mod error;
pub mod limits;
pub mod policy;
pub mod signing;
pub mod wire;

pub use client::{
    AuthorizationFilter, ClientConfig, DevCenterClient, JSON_UTF8, MAX_CLOCK_SKEW,
    MAX_RESPONSE_BYTES, RateLimit,
};
pub use error::Error;
