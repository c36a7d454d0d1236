//! `kubectl acqp`: the console's day-two moments (search, status, the URL, the Agent-Token,
//! refresh, re-invite, inspecting a Secret) as a kubectl plugin, installed as `kubectl-acqp`.
//! It follows kubectl's conventions (`-n`, `-A`, `--context`, `--kubeconfig`, `-o`) and acts
//! only through the API server with the user's own rights: `refresh` and `reinvite` set the
//! annotations the operator honours, so they work the same from GitOps or `kubectl annotate`.

mod inspect;
mod list;
mod output;
mod request;
mod status;
mod token;
mod url;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use kube::{Api, Client};

use crate::api::AcqpAuthorization;

/// kubectl acqp: search, read and nudge AcqpAuthorizations.
#[derive(Parser, Debug)]
#[command(name = "kubectl acqp", bin_name = "kubectl acqp", version)]
pub struct Plugin {
    #[command(flatten)]
    target: TargetArgs,
    #[command(subcommand)]
    command: Command,
}

/// Which cluster and namespace, as kubectl spells it.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// The namespace [default: the context's namespace].
    #[arg(short, long, global = true)]
    namespace: Option<String>,
    /// Every namespace (list and refresh --all).
    #[arg(short = 'A', long, global = true)]
    all_namespaces: bool,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    context: Option<String>,
    /// The kubeconfig file [default: $KUBECONFIG or ~/.kube/config].
    #[arg(long, global = true, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List AcqpAuthorizations, searched as the console searches: ACQP ID, name, status.
    List(list::ListArgs),
    /// Why an AcqpAuthorization is where it is, and what to do next.
    Status(status::StatusArgs),
    /// Print the current authorization URL, and nothing else.
    Url(url::UrlArgs),
    /// The Agent-Token's fingerprint, revision and Secret; the token itself only with --reveal
    /// or --copy.
    Token(token::TokenArgs),
    /// Ask the operator to check with the Developer Center now.
    Refresh(request::RefreshArgs),
    /// Ask the operator for a fresh authorization URL for the current products.
    Reinvite(request::ReinviteArgs),
    /// Inspect something the operator made.
    Inspect {
        #[command(subcommand)]
        what: inspect::What,
    },
}

impl Plugin {
    /// Runs the subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        let target = Target::connect(&self.target).await?;
        match self.command {
            Command::List(args) => list::run(&target, args).await,
            Command::Status(args) => status::run(&target, args).await,
            Command::Url(args) => url::run(&target, args).await,
            Command::Token(args) => token::run(&target, args).await,
            Command::Refresh(args) => request::refresh(&target, args).await,
            Command::Reinvite(args) => request::reinvite(&target, args).await,
            Command::Inspect { what } => inspect::run(&target, what).await,
        }
    }
}

/// The cluster and namespace a command works in.
pub(crate) struct Target {
    client: Client,
    namespace: String,
    all_namespaces: bool,
}

impl Target {
    async fn connect(args: &TargetArgs) -> anyhow::Result<Target> {
        let (client, default_namespace) =
            super::cluster::connect_to(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
        Ok(Target {
            client,
            namespace: args.namespace.clone().unwrap_or(default_namespace),
            all_namespaces: args.all_namespaces,
        })
    }

    /// Namespaced `Api` of `K` in the target namespace.
    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The AcqpAuthorizations in the namespace, or in all of them with `-A`.
    fn authorizations(&self) -> Api<AcqpAuthorization> {
        if self.all_namespaces {
            Api::all(self.client.clone())
        } else {
            self.api()
        }
    }

    /// The AcqpAuthorization `name`, or an error that says where it looked.
    async fn authorization(&self, name: &str) -> anyhow::Result<AcqpAuthorization> {
        let found = self
            .api::<AcqpAuthorization>()
            .get_opt(name)
            .await
            .map_err(|e| api_error(&e, &format!("get acqpauth {name}"), &self.namespace))?;
        found.ok_or_else(|| {
            anyhow::anyhow!(
                "acqpauth {name} not found in namespace {}: `kubectl acqp list` shows what there \
                 is (-n NAMESPACE or -A to look elsewhere)",
                self.namespace
            )
        })
    }
}

/// An API error in one line that says what was refused and what to check.
fn api_error(error: &kube::Error, doing: &str, namespace: &str) -> anyhow::Error {
    match error {
        kube::Error::Api(status) if status.code == 403 => anyhow::anyhow!(
            "you may not {doing} in namespace {namespace} (forbidden): ask for that permission, \
             or check `kubectl auth can-i {doing}`"
        ),
        kube::Error::Api(status) => {
            anyhow::anyhow!("{doing} in namespace {namespace}: {}", status.message)
        }
        other => super::cluster::unreachable(other),
    }
}
