//! acqp-operator: the Alipay+ Developer Center's "invite the ACQP for authorization" flow as
//! Kubernetes resources.

pub mod accept;
pub mod api;
pub mod backoff;
pub mod cli;
pub mod controller;
pub mod devcenter;
pub mod reconcile;
pub mod simulator;
