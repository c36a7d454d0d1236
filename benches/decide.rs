//! Micro-benchmark of `reconcile::decide`, the pure core every reconcile runs once (twice when
//! it issues a URL): a new resource, a grant to write into the Secret, and the steady state
//! that a poll with no change costs for each of N resources.

use std::{hint::black_box, time::Duration};

use acqp_operator::{
    api::{AcqpAuthorization, AcqpAuthorizationSpec, AcqpStatus, Product},
    devcenter::wire::AgentToken,
    reconcile::{
        self, Action, ApplicationView, Input, IssuedUrl, RemoteAuthorization, RemoteView,
        UrlAnswer, secret::SecretView,
    },
};
use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ObjectMeta;

const PRODUCTS: [Product; 2] = [Product::CashierPayment, Product::AutoDebit];

fn resource(now: Timestamp) -> AcqpAuthorization {
    let spec: AcqpAuthorizationSpec = serde_json::from_value(serde_json::json!({
        "applicationRef": {"name": "demo"},
        "acqp": {"id": "1022188000000000001", "name": "Acme Acquiring"},
        "products": PRODUCTS,
    }))
    .expect("a valid spec");
    let mut resource = AcqpAuthorization::new("acme", spec);
    resource.metadata = ObjectMeta {
        name: Some("acme".into()),
        namespace: Some("payments".into()),
        uid: Some("6f0c-uid".into()),
        generation: Some(1),
        creation_timestamp: Some(Time(now - SignedDuration::from_mins(10))),
        ..Default::default()
    };
    resource
}

fn input(resource: &AcqpAuthorization, remote: RemoteView, secret: SecretView) -> Input<'_> {
    Input {
        resource,
        application: ApplicationView::Ready {
            integrated_products: PRODUCTS.to_vec(),
        },
        remote,
        secret,
        rivals: vec![],
        poll_interval: Duration::from_secs(60),
        now: Timestamp::now(),
        answer: None,
    }
}

/// The three situations, each as the shell would present it: (new, granted, steady).
fn situations() -> [(AcqpAuthorization, RemoteView, SecretView); 3] {
    let now = Timestamp::now();
    let new = resource(now);

    // Issue the URL as the shell does, so the resource awaits the ACQP.
    let mut awaiting = new.clone();
    let answer = UrlAnswer::Issued(IssuedUrl {
        url: "https://devcenter.example/consent/1".into(),
        expires_at: now + SignedDuration::from_hours(24),
        products: PRODUCTS.to_vec(),
    });
    let asked = Input {
        answer: Some(answer),
        ..input(&awaiting, RemoteView::Absent, SecretView::Missing)
    };
    let status = reconcile::decide(&asked).status;
    awaiting.status = Some(status);

    let granted = RemoteView::Present(RemoteAuthorization {
        status: AcqpStatus::Active,
        products: PRODUCTS.to_vec(),
        token_fingerprint: AgentToken::new("token-1").fingerprint(),
        update_time: now,
    });
    // Perform the grant's decision: the Secret written, the status stored.
    let decision = reconcile::decide(&input(&awaiting, granted.clone(), SecretView::Missing));
    let Some(Action::WriteSecret(desired)) = decision
        .actions
        .iter()
        .find(|a| matches!(a, Action::WriteSecret(_)))
    else {
        panic!("a grant writes the Secret: {decision:?}");
    };
    let written = desired.written();
    let mut steady = awaiting.clone();
    steady.status = Some(decision.status);

    [
        (new, RemoteView::Absent, SecretView::Missing),
        (awaiting, granted.clone(), SecretView::Missing),
        (steady, granted, written),
    ]
}

fn bench(c: &mut Criterion) {
    let [new, granted, steady] = situations();
    let mut group = c.benchmark_group("reconcile::decide");
    for (name, (resource, remote, secret)) in [
        ("new resource (issue URL)", new),
        ("grant (write Secret)", granted),
        ("steady state (nothing to do)", steady),
    ] {
        let input = input(&resource, remote, secret);
        group.bench_function(name, |b| b.iter(|| reconcile::decide(black_box(&input))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
