//! The resource types: `DeveloperCenterApplication` and `AcqpAuthorization`, API group
//! `acqp-operator.io`, version `v1alpha1`. The CRDs in `crds/` are generated from these.

mod application;
mod authorization;
pub mod duration;
mod email;
mod product;

pub use application::*;
pub use authorization::*;
pub use email::*;
pub use product::Product;

/// A DNS subdomain (RFC 1123), the shape of most Kubernetes object names.
const DNS_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// A Secret data key.
const SECRET_KEY: &str = r"^[-._a-zA-Z0-9]+$";

#[cfg(test)]
mod cel_tests;
