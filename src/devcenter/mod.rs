//! The Developer Center API: message signing, wire types, the client, and what the client may
//! hold ([`limits`]) and reach ([`policy`]).
//!
//! [`signing`] and [`wire`] are shared with the simulator, so both ends of every call are built
//! from one definition of the contract; [`DevCenterClient`] is the operator's end.

mod authenticity;
mod client;
mod error;
pub mod limits;
pub mod policy;
mod rate;
mod replay;
pub mod signing;
pub mod wire;

pub use authenticity::MAX_CLOCK_SKEW;
pub use client::{
    AuthorizationFilter, ClientConfig, DevCenterClient, JSON_UTF8, MAX_RESPONSE_BYTES,
};
pub use error::Error;
pub use rate::RateLimit;
