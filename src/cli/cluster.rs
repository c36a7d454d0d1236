//! The cluster of the current kubeconfig, read by `validate --cluster` and `plan
//! --from-cluster`, with errors that say what to check.

use kube::Client;

/// A client for the current kubeconfig, or a message that says what to check.
pub async fn connect() -> anyhow::Result<Client> {
    Client::try_default().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot use the cluster of the current kubeconfig ({e}): set KUBECONFIG or check \
             `kubectl cluster-info`"
        )
    })
}

/// An error of the API server or the connection, in words that say what to check.
pub fn unreachable(error: &kube::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot read from the cluster of the current kubeconfig ({error}): check \
         `kubectl cluster-info` and that you may list acqp-operator.io resources"
    )
}
