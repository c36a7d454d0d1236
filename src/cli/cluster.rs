//! The cluster of the current kubeconfig, read by `validate --cluster`, `plan --from-cluster`
//! and `kubectl acqp`, with errors that say what to check.

use std::path::Path;

use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

/// A client for the current kubeconfig, or a message that says what to check.
pub async fn connect() -> anyhow::Result<Client> {
    Ok(connect_to(None, None).await?.0)
}

/// A client for `kubeconfig` (else `KUBECONFIG`, `~/.kube/config` or the in-cluster account)
/// and `context` (else its current context), with the context's namespace, as kubectl picks
/// them.
pub async fn connect_to(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> anyhow::Result<(Client, String)> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = match (kubeconfig, context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| anyhow::anyhow!("cannot read kubeconfig {} ({e})", path.display()))?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| cannot_use(&e))
        }
        (None, Some(_)) => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| cannot_use(&e)),
        (None, None) => Config::infer().await.map_err(|e| cannot_use(&e)),
    }?;
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| cannot_use(&e))?;
    Ok((client, namespace))
}

fn cannot_use(error: &dyn std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot use the cluster of the current kubeconfig ({error}): set KUBECONFIG or check \
         `kubectl cluster-info`"
    )
}

/// An error of the API server or the connection, in words that say what to check.
pub fn unreachable(error: &kube::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot read from the cluster of the current kubeconfig ({error}): check \
         `kubectl cluster-info` and that you may list acqp-operator.io resources"
    )
}
