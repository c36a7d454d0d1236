//! The decision function as a table of situations, plus properties that hold for all inputs.

use super::secret::{self, SecretView};
use super::*;
use crate::api::{AcqpAuthorizationSpec, Phase, RevocationPolicy};
use crate::reconcile::conditions::{READY, RECONCILING, STALLED, find, is_true};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ObjectMeta;
use proptest::prelude::*;
use std::time::Duration;

const T0: i64 = 1_800_000_000;
const POLL: Duration = Duration::from_secs(60);

fn at(offset: i64) -> Timestamp {
    Timestamp::from_second(T0 + offset).unwrap()
}

fn resource(products: &[Product]) -> AcqpAuthorization {
    let spec: AcqpAuthorizationSpec = serde_json::from_value(serde_json::json!({
        "applicationRef": {"name": "demo"},
        "acqp": {"id": "1022188000000000001", "name": "Acme Acquiring"},
        "products": products,
    }))
    .unwrap();
    let mut resource = AcqpAuthorization::new("acme", spec);
    resource.metadata = ObjectMeta {
        name: Some("acme".into()),
        namespace: Some("payments".into()),
        uid: Some("6f0c-uid".into()),
        generation: Some(1),
        creation_timestamp: Some(Time(at(-1000))),
        ..Default::default()
    };
    resource
}

/// A scenario: a resource and the world around it, changed step by step.
#[derive(Debug)]
struct World {
    resource: AcqpAuthorization,
    application: ApplicationView,
    remote: RemoteView,
    secret: SecretView,
    rivals: Vec<Claim>,
    now: Timestamp,
    /// How the fake Developer Center answers the next URL request, if not with a URL.
    refusal: Option<(Refusal, &'static str)>,
}

impl World {
    fn new(products: &[Product]) -> Self {
        World {
            resource: resource(products),
            application: ApplicationView::Ready {
                integrated_products: vec![
                    Product::CashierPayment,
                    Product::AutoDebit,
                    Product::UserPresentedModePayment,
                ],
            },
            remote: RemoteView::Absent,
            secret: SecretView::Missing,
            rivals: vec![],
            now: at(0),
            refusal: None,
        }
    }

    fn decide(&self) -> Decision {
        self.decide_with(None)
    }

    fn decide_with(&self, answer: Option<UrlAnswer>) -> Decision {
        decide(&Input {
            resource: &self.resource,
            application: self.application.clone(),
            remote: self.remote.clone(),
            secret: self.secret.clone(),
            rivals: self.rivals.clone(),
            poll_interval: POLL,
            now: self.now,
            answer,
        })
    }

    /// Decides and carries out the decision as the shell would: Secrets are written, a URL
    /// request goes to a fake Developer Center and its answer is decided on once more, and the
    /// status is stored.
    fn step(&mut self) -> Decision {
        let first = self.decide();
        let asked = first.actions.iter().find_map(|a| match a {
            Action::IssueUrl {
                request_id,
                products,
            } => Some((request_id.clone(), products.clone())),
            _ => None,
        });
        let decision = match asked {
            None => first.clone(),
            Some((request_id, products)) => {
                let answer = match self.refusal.take() {
                    Some((refusal, message)) => UrlAnswer::Refused {
                        refusal,
                        message: message.into(),
                    },
                    None => UrlAnswer::Issued(IssuedUrl {
                        url: format!("https://devcenter.example/consent/{request_id}"),
                        expires_at: self.now + SignedDuration::from_hours(24),
                        products,
                    }),
                };
                self.decide_with(Some(answer))
            }
        };
        for action in &first.actions {
            if let Action::WriteSecret(desired) = action {
                self.secret = desired.written();
            }
        }
        self.resource.status = Some(decision.status.clone());
        decision
    }

    fn grant(&mut self, products: &[Product], token: &str) {
        self.remote = RemoteView::Present(RemoteAuthorization {
            status: AcqpStatus::Active,
            products: products.to_vec(),
            token_fingerprint: fingerprint(token),
            update_time: self.now,
        });
    }

    fn annotate(&mut self, key: &str, value: &str) {
        self.resource
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(key.into(), value.into());
    }

    fn status(&self) -> &AcqpAuthorizationStatus {
        self.resource.status.as_ref().unwrap()
    }
}

fn fingerprint(token: &str) -> String {
    crate::devcenter::wire::AgentToken::new(token.to_string()).fingerprint()
}

fn issued(decision: &Decision) -> Vec<&Action> {
    decision
        .actions
        .iter()
        .filter(|a| matches!(a, Action::IssueUrl { .. }))
        .collect()
}

fn events(decision: &Decision) -> Vec<&'static str> {
    decision
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(e.reason.as_str()),
            _ => None,
        })
        .collect()
}

fn reason(status: &AcqpAuthorizationStatus) -> &str {
    &find(&status.conditions, READY).unwrap().reason
}

use Product::{AutoDebit, CashierPayment, MerchantPresentedModePayment};
use jiff::SignedDuration;

#[test]
fn new_resource_gets_a_url_and_waits() {
    let mut world = World::new(&[CashierPayment]);
    let decision = world.decide();
    assert_eq!(issued(&decision).len(), 1);
    world.step();
    let status = world.status();
    assert_eq!(status.phase, Some(Phase::AwaitingAuthorization));
    assert!(status.authorization_url.is_some());
    assert_eq!(status.requested_products, [CashierPayment]);
    assert!(is_true(&status.conditions, RECONCILING));
    assert!(find(&status.conditions, STALLED).is_none());
    assert_eq!(status.observed_generation, Some(1));
}

#[test]
fn a_valid_url_is_reused() {
    let mut world = World::new(&[CashierPayment]);
    world.step();
    let url = world.status().authorization_url.clone();
    world.now = at(3600);
    let decision = world.step();
    assert!(issued(&decision).is_empty());
    assert_eq!(world.status().authorization_url, url);
    assert!(decision.requeue_after.is_some_and(|after| after <= POLL));
}

#[test]
fn an_expired_url_is_replaced_with_a_new_request_id() {
    let mut world = World::new(&[CashierPayment]);
    let first = world.decide();
    world.step();
    world.now = at(24 * 3600);
    let second = world.decide();
    assert_eq!(issued(&second).len(), 1);
    assert_ne!(
        issued(&first),
        issued(&second),
        "a new URL needs a new idempotency key"
    );
}

#[test]
fn the_same_situation_yields_the_same_request_id_after_a_crash() {
    let world = World::new(&[CashierPayment, AutoDebit]);
    assert_eq!(issued(&world.decide()), issued(&world.decide()));
}

#[test]
fn changed_products_while_waiting_get_a_new_url() {
    let mut world = World::new(&[CashierPayment]);
    world.step();
    world.resource.spec.products.push(AutoDebit);
    let decision = world.decide();
    let [Action::IssueUrl { products, .. }] = issued(&decision)[..] else {
        panic!("expected one URL")
    };
    assert_eq!(products, &[CashierPayment, AutoDebit]);
}

#[test]
fn an_active_grant_covering_the_products_is_ready_with_the_token_in_the_secret() {
    let mut world = World::new(&[CashierPayment]);
    world.step();
    world.grant(&[CashierPayment], "token-1");
    let decision = world.step();
    assert!(
        decision
            .actions
            .iter()
            .any(|a| matches!(a, Action::WriteSecret(_)))
    );
    assert_eq!(events(&decision), ["Authorized"]);
    let status = world.status();
    assert_eq!(status.phase, Some(Phase::Active));
    assert!(is_true(&status.conditions, READY));
    assert_eq!(
        status.conditions.len(),
        1,
        "Reconciling and Stalled are absent when Ready"
    );
    assert_eq!(status.token_revision, Some(1));
    assert_eq!(status.token_fingerprint, Some(fingerprint("token-1")));
    assert_eq!(status.authorization_url, None);
    assert_eq!(
        status.token_secret_ref.as_ref().unwrap().name,
        "acme-agent-token"
    );
    // Steady state: nothing to do, nothing to write.
    let again = world.step();
    assert!(again.actions.is_empty());
    assert_eq!(&again.status, world.status());
}

#[test]
fn scope_growth_keeps_the_old_token_and_asks_for_the_whole_set() {
    let mut world = World::new(&[CashierPayment]);
    world.grant(&[CashierPayment], "token-1");
    world.step();
    world.resource.spec.products.push(AutoDebit);
    world.resource.metadata.generation = Some(2);
    let decision = world.step();
    let status = world.status();
    assert!(
        !decision
            .actions
            .iter()
            .any(|a| matches!(a, Action::WriteSecret(_))),
        "the old token stays"
    );
    assert_eq!(reason(status), "ScopeChangePending");
    assert_eq!(status.requested_products, [CashierPayment, AutoDebit]);
    assert_eq!(status.token_revision, Some(1));
    assert_eq!(status.phase, Some(Phase::AwaitingAuthorization));
}

#[test]
fn a_new_token_is_a_rotation() {
    let mut world = World::new(&[CashierPayment, AutoDebit]);
    world.grant(&[CashierPayment], "token-1");
    world.step();
    world.grant(&[CashierPayment, AutoDebit], "token-2");
    let decision = world.step();
    assert_eq!(events(&decision), ["TokenRotated"]);
    let Some(Action::WriteSecret(desired)) = decision
        .actions
        .iter()
        .find(|a| matches!(a, Action::WriteSecret(_)))
    else {
        panic!("the new token must be written")
    };
    assert_eq!(desired.annotations[secret::REVISION_ANNOTATION], "2");
    assert_eq!(world.status().token_revision, Some(2));
    assert_eq!(world.status().phase, Some(Phase::Active));
}

#[test]
fn inactive_after_a_grant_is_revoked_and_stalled() {
    let mut world = World::new(&[CashierPayment]);
    world.grant(&[CashierPayment], "token-1");
    world.step();
    let RemoteView::Present(record) = &mut world.remote else {
        unreachable!()
    };
    record.status = AcqpStatus::Inactive;
    let decision = world.step();
    let status = world.status();
    assert_eq!(status.phase, Some(Phase::Revoked));
    assert!(is_true(&status.conditions, STALLED));
    assert!(find(&status.conditions, RECONCILING).is_none());
    assert!(
        issued(&decision).is_empty(),
        "Wait never re-invites on its own"
    );
    assert_eq!(events(&decision), ["Revoked"]);
    assert!(
        world.step().actions.is_empty(),
        "the Revoked event fires once"
    );
}

#[test]
fn inactive_after_a_grant_with_reinvite_issues_a_new_url() {
    let mut world = World::new(&[CashierPayment]);
    world.resource.spec.revocation_policy = RevocationPolicy::Reinvite;
    world.grant(&[CashierPayment], "token-1");
    world.step();
    let RemoteView::Present(record) = &mut world.remote else {
        unreachable!()
    };
    record.status = AcqpStatus::Inactive;
    assert_eq!(issued(&world.decide()).len(), 1);
    world.step();
    assert_eq!(reason(world.status()), "Reinvited");
    assert!(issued(&world.decide()).is_empty(), "the new URL is reused");
}

#[test]
fn inactive_without_a_prior_grant_is_an_invitation() {
    let mut world = World::new(&[CashierPayment]);
    world.remote = RemoteView::Present(RemoteAuthorization {
        status: AcqpStatus::Inactive,
        products: vec![CashierPayment],
        token_fingerprint: fingerprint("old"),
        update_time: at(-500),
    });
    assert_eq!(issued(&world.decide()).len(), 1);
    world.step();
    assert_eq!(reason(world.status()), "AwaitingAuthorization");
}

#[test]
fn a_missing_secret_is_written_again() {
    let mut world = World::new(&[CashierPayment]);
    world.grant(&[CashierPayment], "token-1");
    world.step();
    world.secret = SecretView::Missing;
    let decision = world.step();
    assert!(
        decision
            .actions
            .iter()
            .any(|a| matches!(a, Action::WriteSecret(_)))
    );
    assert_eq!(events(&decision), ["SecretRepaired"]);
    assert_eq!(
        world.status().token_revision,
        Some(1),
        "a repair is not a rotation"
    );
}

#[test]
fn a_secret_edited_by_hand_is_repaired() {
    let mut world = World::new(&[CashierPayment]);
    world.grant(&[CashierPayment], "token-1");
    world.step();
    let SecretView::Owned {
        data_fingerprint, ..
    } = &mut world.secret
    else {
        unreachable!()
    };
    *data_fingerprint = Some(fingerprint("typed-by-hand"));
    let decision = world.step();
    assert_eq!(events(&decision), ["SecretRepaired"]);
    assert!(
        decision
            .actions
            .iter()
            .any(|a| matches!(a, Action::WriteSecret(_)))
    );
}

#[test]
fn a_foreign_secret_is_never_overwritten() {
    let mut world = World::new(&[CashierPayment]);
    world.secret = SecretView::Foreign {
        owner: "no owner reference".into(),
    };
    world.grant(&[CashierPayment], "token-1");
    let decision = world.step();
    assert!(
        decision
            .actions
            .iter()
            .all(|a| matches!(a, Action::Event(_)))
    );
    assert_eq!(reason(world.status()), "SecretConflict");
    assert!(is_true(&world.status().conditions, STALLED));
}

#[test]
fn the_newer_of_two_claims_on_one_acqp_is_stalled() {
    let mut world = World::new(&[CashierPayment]);
    world.rivals = vec![Claim {
        name: "older".into(),
        created: at(-2000),
    }];
    let decision = world.step();
    assert!(issued(&decision).is_empty());
    assert_eq!(reason(world.status()), "DuplicateAcqp");
    assert!(
        find(&world.status().conditions, READY)
            .unwrap()
            .message
            .contains("older")
    );

    let mut older = World::new(&[CashierPayment]);
    older.rivals = vec![Claim {
        name: "newer".into(),
        created: at(0),
    }];
    assert_eq!(issued(&older.decide()).len(), 1, "the older claim proceeds");
}

#[test]
fn products_not_integrated_are_stalled_with_what_to_do() {
    let mut world = World::new(&[CashierPayment, MerchantPresentedModePayment]);
    let decision = world.step();
    assert!(issued(&decision).is_empty());
    let ready = find(&world.status().conditions, READY).unwrap();
    assert_eq!(ready.reason, "ProductsNotIntegrated");
    assert!(ready.message.contains("MerchantPresentedModePayment"));
    assert!(ready.message.contains("add the payment products"));
}

#[test]
fn products_not_in_contract_stand_until_retry_is_due() {
    let mut world = World::new(&[AutoDebit]);
    world.refusal = Some((
        Refusal::ProductsNotInContract,
        "AutoDebit is not in Beta Pay's contract",
    ));
    let refused = world.step();
    assert_eq!(events(&refused), ["ProductsNotInContract"], "one Warning");
    let decision = world.step();
    assert!(issued(&decision).is_empty());
    assert_eq!(reason(world.status()), "ProductsNotInContract");
    assert!(
        find(&world.status().conditions, READY)
            .unwrap()
            .message
            .contains("contract")
    );
    world.now = at(601);
    assert_eq!(
        issued(&world.decide()).len(),
        1,
        "asks again after the retry period"
    );
}

#[test]
fn permission_denied_is_stalled() {
    let mut world = World::new(&[CashierPayment]);
    world.application = ApplicationView::PermissionDenied;
    world.step();
    assert_eq!(reason(world.status()), "PermissionDenied");
    assert!(
        find(&world.status().conditions, READY)
            .unwrap()
            .message
            .contains("Developer Admin")
    );
}

#[test]
fn a_missing_application_is_stalled() {
    let mut world = World::new(&[CashierPayment]);
    world.application = ApplicationView::NotFound;
    world.step();
    assert_eq!(reason(world.status()), "ApplicationNotFound");
    assert_eq!(world.status().phase, Some(Phase::Error));
}

#[test]
fn nothing_is_issued_before_the_first_list() {
    let mut world = World::new(&[CashierPayment]);
    world.remote = RemoteView::Unknown;
    let decision = world.step();
    assert!(issued(&decision).is_empty());
    assert_eq!(world.status().phase, Some(Phase::Pending));
}

#[test]
fn a_restart_keeps_the_status_until_the_first_list() {
    let mut world = World::new(&[CashierPayment]);
    world.grant(&[CashierPayment], "token-1");
    world.step();
    let ready = world.status().clone();
    world.remote = RemoteView::Unknown;
    let decision = world.step();
    assert!(decision.actions.is_empty());
    assert_eq!(
        decision.status, ready,
        "a Ready resource must not flap while the list is pending"
    );

    world.resource.spec.products.push(AutoDebit);
    world.resource.metadata.generation = Some(2);
    world.step();
    assert_eq!(
        reason(world.status()),
        "Listing",
        "a new generation is reported as in progress"
    );
}

fn any_world() -> impl Strategy<Value = (World, String)> {
    let products = proptest::sample::subsequence(Product::ALL.to_vec(), 1..=4);
    let remote = prop_oneof![
        Just(None),
        Just(Some(AcqpStatus::Active)),
        Just(Some(AcqpStatus::Inactive))
    ];
    let granted = proptest::sample::subsequence(Product::ALL.to_vec(), 1..=4);
    let secret = 0..3u8;
    (
        products,
        remote,
        granted,
        secret,
        "[A-Za-z0-9]{24,40}",
        any::<bool>(),
        any::<bool>(),
        0..5u8,
    )
        .prop_map(
            |(products, remote, granted, secret, token, reinvite, rival, requests)| {
                let mut world = World::new(&products);
                match requests {
                    0 => {}
                    1 => world.annotate(annotations::PAUSED, "true"),
                    2 => world.annotate(annotations::REFRESH_REQUESTED_AT, "2027-01-01T00:00:00Z"),
                    3 => world.annotate(annotations::REINVITE_REQUESTED_AT, "2027-01-01T00:00:00Z"),
                    _ => world.annotate(annotations::REINVITE_REQUESTED_AT, "soon"),
                }
                if reinvite {
                    world.resource.spec.revocation_policy = RevocationPolicy::Reinvite;
                }
                if let Some(status) = remote {
                    world.remote = RemoteView::Present(RemoteAuthorization {
                        status,
                        products: granted,
                        token_fingerprint: fingerprint(&token),
                        update_time: at(-10),
                    });
                }
                world.secret = match secret {
                    0 => SecretView::Missing,
                    1 => SecretView::Foreign {
                        owner: "someone".into(),
                    },
                    _ => SecretView::Owned {
                        data_fingerprint: Some(fingerprint("stale")),
                        labels: Default::default(),
                        annotations: Default::default(),
                    },
                };
                if rival {
                    world.rivals = vec![Claim {
                        name: "zz-other".into(),
                        created: at(5),
                    }];
                }
                (world, token)
            },
        )
}

proptest! {
    /// Once a decision is carried out, deciding again finds nothing to do and nothing to change.
    #[test]
    fn deciding_again_after_acting_changes_nothing((mut world, _token) in any_world()) {
        world.step();
        world.step();
        let settled = world.status().clone();
        let again = world.step();
        prop_assert!(again.actions.is_empty(), "{:?}", again.actions);
        prop_assert_eq!(&again.status, &settled);
    }

    /// The token never appears in a decision: status, events, Secret metadata.
    #[test]
    fn the_token_never_leaves_the_secret_write((mut world, token) in any_world()) {
        for _ in 0..3 {
            let decision = world.step();
            let printed = format!("{decision:?} {}", serde_json::to_string(&decision.status).unwrap());
            prop_assert!(!printed.contains(&token));
        }
    }
}

#[test]
fn a_released_secret_for_the_same_acqp_is_adopted_not_a_conflict() {
    let mut world = World::new(&[CashierPayment]);
    world.secret = SecretView::Released;
    world.grant(&[CashierPayment], "token-1");
    let decision = world.step();
    assert!(
        decision
            .actions
            .iter()
            .any(|a| matches!(a, Action::WriteSecret(_))),
        "the write takes the Secret over"
    );
    assert_eq!(events(&decision), ["Authorized", "SecretAdopted"]);
    assert_eq!(world.status().phase, Some(Phase::Active));
    assert!(world.step().actions.is_empty());
}

// Request annotations: refresh, reinvite, pause.

fn url_of(world: &World) -> Option<String> {
    world.status().authorization_url.clone()
}

#[test]
fn a_refresh_request_asks_the_developer_center_once_per_value() {
    let mut world = World::new(&[CashierPayment]);
    world.grant(&[CashierPayment], "token-1");
    world.step();
    world.annotate(annotations::REFRESH_REQUESTED_AT, "2027-01-01T00:00:00Z");
    let decision = world.step();
    assert_eq!(decision.actions, [Action::RefreshRemote]);
    assert_eq!(
        world.status().last_handled_refresh_at.as_deref(),
        Some("2027-01-01T00:00:00Z")
    );
    assert!(world.step().actions.is_empty(), "handled once per value");
    world.annotate(annotations::REFRESH_REQUESTED_AT, "2027-01-01T00:05:00Z");
    assert_eq!(world.step().actions, [Action::RefreshRemote]);
}

#[test]
fn a_refresh_request_retries_a_standing_refusal_at_once() {
    let mut world = World::new(&[AutoDebit]);
    world.refusal = Some((Refusal::ProductsNotInContract, "no"));
    world.step();
    assert!(issued(&world.decide()).is_empty());
    world.annotate(annotations::REFRESH_REQUESTED_AT, "2027-01-01T00:00:00Z");
    let decision = world.decide();
    assert_eq!(issued(&decision).len(), 1, "refresh to retry");
    assert!(decision.actions.contains(&Action::RefreshRemote));
}

#[test]
fn a_reinvite_request_replaces_a_valid_url_once_per_value() {
    let mut world = World::new(&[CashierPayment]);
    world.step();
    let first = url_of(&world);
    world.annotate(annotations::REINVITE_REQUESTED_AT, "2027-01-01T00:00:00Z");
    // A crash between the Developer Center's answer and the status write decides again on the
    // same status: the same request ID, so the Developer Center returns the same URL.
    assert_eq!(issued(&world.decide()), issued(&world.decide()));
    world.step();
    let second = url_of(&world);
    assert_ne!(second, first, "the old URL is no longer offered");
    assert_eq!(
        world.status().last_handled_reinvite_at.as_deref(),
        Some("2027-01-01T00:00:00Z")
    );
    assert!(issued(&world.step()).is_empty(), "one URL per value");
    assert_eq!(url_of(&world), second);
    world.annotate(annotations::REINVITE_REQUESTED_AT, "2027-01-02T00:00:00Z");
    world.step();
    assert_ne!(url_of(&world), second, "a new value, a new URL");
}

#[test]
fn a_reinvite_request_for_an_authorized_acqp_issues_nothing() {
    let mut world = World::new(&[CashierPayment]);
    world.grant(&[CashierPayment], "token-1");
    world.step();
    world.annotate(annotations::REINVITE_REQUESTED_AT, "2027-01-01T00:00:00Z");
    let decision = world.step();
    assert!(issued(&decision).is_empty());
    assert_eq!(events(&decision), ["ReinviteNotNeeded"]);
    assert_eq!(
        world.status().last_handled_reinvite_at.as_deref(),
        Some("2027-01-01T00:00:00Z")
    );
    assert!(world.step().actions.is_empty());
}

#[test]
fn a_reinvite_request_is_not_honoured_under_revocation_policy_wait() {
    let mut world = World::new(&[CashierPayment]);
    world.grant(&[CashierPayment], "token-1");
    world.step();
    let RemoteView::Present(record) = &mut world.remote else {
        unreachable!()
    };
    record.status = AcqpStatus::Inactive;
    world.step();
    world.annotate(annotations::REINVITE_REQUESTED_AT, "2027-01-01T00:00:00Z");
    let decision = world.step();
    assert!(issued(&decision).is_empty());
    let stalled = find(&world.status().conditions, STALLED).unwrap();
    assert_eq!(stalled.reason, "Revoked");
    assert!(
        stalled.message.contains("not honoured"),
        "{}",
        stalled.message
    );
    assert_eq!(world.status().last_handled_reinvite_at, None);

    world.resource.spec.revocation_policy = RevocationPolicy::Reinvite;
    world.resource.metadata.generation = Some(2);
    world.step();
    assert!(url_of(&world).is_some());
}

#[test]
fn a_paused_resource_is_left_alone_and_says_so() {
    let mut world = World::new(&[CashierPayment]);
    world.step();
    let before = world.status().clone();
    world.annotate(annotations::PAUSED, "true");
    world.grant(&[CashierPayment, AutoDebit], "token-1");
    world.resource.spec.products.push(AutoDebit);
    world.resource.metadata.generation = Some(2);
    let decision = world.step();
    assert!(decision.actions.is_empty(), "{:?}", decision.actions);
    let status = world.status();
    let paused = find(&status.conditions, conditions::PAUSED).unwrap();
    assert_eq!(
        (paused.status.as_str(), paused.reason.as_str()),
        ("True", "Paused")
    );
    assert!(
        paused.message.contains("acqp-operator.io/paused-"),
        "{}",
        paused.message
    );
    assert_eq!(
        status.observed_generation,
        Some(1),
        "the new spec was not acted on"
    );
    assert_eq!(status.phase, before.phase);
    assert_eq!(status.authorization_url, before.authorization_url);

    world.resource.metadata.annotations = None;
    let decision = world.step();
    assert!(
        decision
            .actions
            .iter()
            .any(|a| matches!(a, Action::WriteSecret(_)))
    );
    assert_eq!(world.status().phase, Some(Phase::Active));
    assert!(find(&world.status().conditions, conditions::PAUSED).is_none());
    assert_eq!(world.status().observed_generation, Some(2));
}

#[test]
fn a_malformed_annotation_is_a_condition_and_nothing_else() {
    let mut world = World::new(&[CashierPayment]);
    world.annotate(annotations::REINVITE_REQUESTED_AT, "now please");
    world.step();
    let url = url_of(&world);
    let malformed = find(&world.status().conditions, conditions::MALFORMED).unwrap();
    assert_eq!(malformed.status, "True");
    assert!(
        malformed.message.contains("RFC 3339"),
        "{}",
        malformed.message
    );
    assert!(issued(&world.step()).is_empty(), "the value is ignored");
    assert_eq!(url_of(&world), url);

    world.annotate(annotations::REINVITE_REQUESTED_AT, "2027-01-01T00:00:00Z");
    world.step();
    assert!(find(&world.status().conditions, conditions::MALFORMED).is_none());
    assert_ne!(url_of(&world), url);
}
