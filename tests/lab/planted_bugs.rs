//! Proving the lab can see: bugs planted in test doubles of the broker core
//! (`planted.rs`) and of its store (`planted_store.rs`), each run through scenarios of the
//! library. For every bug and scenario:
//! - the named checker reports a violation within the stated seeds;
//! - replaying the first failing seed with the same planted broker gives the same violations
//!   and the same trace fingerprint, both through `run_seed` and through the `replay` command;
//! - the real broker passes the same scenario over the same seeds, so the violation is the
//!   bug's and not the scenario's.
//!
//! docs/testing.md lists the bugs, the scenarios and the bounds.

use crate::planted;
use crate::planted_store::{StoreBug, store_factory};

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use mqtt_lab::cli::EXIT_VIOLATION;
use mqtt_lab::cli::lab::{self, ReplayArgs};
use mqtt_lab::scenario::Scenario;
use mqtt_lab::sim::{RunOptions, RunOutcome, RunStatus, run_seed};

use planted::Bug;

/// The checker name of a scenario's explicit expectations (`will_reaches`, `no_will`, `no_loss`,
/// `receives`).
const EXPECT: &str = mqtt_lab::check::expect::NAME;

/// One proof: a planted bug, a library scenario, the seeds within which `checker` must report
/// it.
pub(crate) struct Case {
    pub(crate) bug: Bug,
    pub(crate) scenario: &'static str,
    pub(crate) seeds: RangeInclusive<u64>,
    pub(crate) checker: &'static str,
}

const fn case(
    bug: Bug,
    scenario: &'static str,
    seeds: RangeInclusive<u64>,
    checker: &'static str,
) -> Case {
    Case {
        bug,
        scenario,
        seeds,
        checker,
    }
}

/// Every proof, as listed in docs/testing.md.
pub(crate) const CASES: &[Case] = &[
    case(
        Bug::RefusalsNotCounted,
        "19-figures/01-counters-under-cuts-and-a-crash-v5.toml",
        1..=2,
        "figures",
    ),
    case(
        Bug::CounterPerInterval,
        "19-figures/01-counters-under-cuts-and-a-crash-v5.toml",
        1..=2,
        "figures",
    ),
    case(
        Bug::Qos2ForwardedTwice,
        "04-qos2/01-qos2-exactly-once-under-cuts.toml",
        1..=2,
        "delivery",
    ),
    case(
        Bug::Qos2ForwardedTwice,
        "04-qos2/02-qos2-broker-crash-durable.toml",
        1..=2,
        "delivery",
    ),
    case(
        Bug::Qos2ForwardedTwice,
        "11-swarm/02-swarm-qos2-v5.toml",
        1..=3,
        "delivery",
    ),
    case(
        Bug::Qos1DroppedAfterReconnect,
        "03-qos1/01-qos1-under-cuts.toml",
        1..=2,
        "delivery",
    ),
    case(
        Bug::Qos1DroppedAfterReconnect,
        "07-session/03-broker-restart-durable.toml",
        1..=2,
        "delivery",
    ),
    case(
        Bug::Qos1DroppedAfterReconnect,
        "07-session/01-queued-while-offline.toml",
        1..=2,
        EXPECT,
    ),
    case(
        Bug::WillAfterDisconnect,
        "05-will/04-no-will-after-disconnect.toml",
        1..=2,
        "will",
    ),
    case(
        Bug::NoWillAfterCrash,
        "11-swarm/03-swarm-wills-and-retained.toml",
        1..=5,
        "will",
    ),
    case(
        Bug::NoWillAfterCrash,
        "05-will/03-will-on-cut.toml",
        1..=2,
        EXPECT,
    ),
    case(
        Bug::NoWillAfterCrash,
        "05-will/01-will-on-crash.toml",
        1..=2,
        EXPECT,
    ),
    case(
        Bug::SharedToAll,
        "12-mqtt5/01-shared-two-members-under-cuts.toml",
        1..=2,
        "shared",
    ),
    case(
        Bug::SharedToAll,
        "12-mqtt5/02-shared-three-members-crash.toml",
        1..=2,
        "shared",
    ),
    case(
        Bug::RetainedNotCleared,
        "06-retained/02-retained-clear.toml",
        1..=2,
        "retained",
    ),
    case(
        Bug::Reordered,
        "03-qos1/01-qos1-under-cuts.toml",
        1..=2,
        "ordering",
    ),
    case(
        Bug::Reordered,
        "10-broker-restart/03-broker-stall.toml",
        1..=2,
        "ordering",
    ),
    case(
        Bug::Reordered,
        "11-swarm/01-swarm-qos1-v311.toml",
        1..=3,
        "ordering",
    ),
    case(
        Bug::Reordered,
        "12-mqtt5/02-shared-three-members-crash.toml",
        1..=2,
        "ordering",
    ),
    case(
        Bug::SessionForgotten,
        "07-session/03-broker-restart-durable.toml",
        1..=2,
        "session",
    ),
    case(
        Bug::SessionForgotten,
        "06-retained/04-retained-broker-crash.toml",
        1..=2,
        EXPECT,
    ),
    case(
        Bug::SessionForgotten,
        "03-qos1/03-qos1-broker-crash-durable.toml",
        1..=2,
        "session",
    ),
    case(
        Bug::WillDelayIgnored,
        "05-will/05-will-delay-v5.toml",
        1..=2,
        "will",
    ),
    case(
        Bug::WillDelayIgnored,
        "05-will/08-will-delay-partition-v5.toml",
        1..=2,
        "will",
    ),
    case(
        Bug::DelayedWillLostInCrash,
        "05-will/07-will-delay-broker-crash-durable-v5.toml",
        1..=2,
        "will",
    ),
    case(
        Bug::SessionNeverExpires,
        "07-session/05-session-expiry-broker-crash-durable-v5.toml",
        1..=2,
        "session",
    ),
    case(
        Bug::SessionNeverExpires,
        "07-session/06-session-expiry-partition-v5.toml",
        1..=2,
        "session",
    ),
    case(
        Bug::SessionNeverExpires,
        "07-session/02-session-expiry-v5.toml",
        1..=2,
        "session",
    ),
    case(
        Bug::AliasesKeptAcrossConnections,
        "12-mqtt5/05-topic-aliases-across-reconnects.toml",
        1..=2,
        "integrity",
    ),
    case(
        Bug::ReceiveMaximumIgnored,
        "12-mqtt5/06-client-receive-maximum-burst.toml",
        1..=2,
        "integrity",
    ),
    case(
        Bug::ReceiveMaximumIgnored,
        "12-mqtt5/06-client-receive-maximum-burst.toml",
        1..=2,
        "handshake",
    ),
    case(
        Bug::PubrelNotResent,
        "17-traps/04-qos2-every-handshake-stage-v5.toml",
        1..=1,
        "handshake",
    ),
    case(
        Bug::UnsubscribeIgnored,
        "17-traps/01-unsubscribe-under-cuts.toml",
        1..=1,
        "unsubscribe",
    ),
    case(
        Bug::UnsubackNeverSent,
        "17-traps/01-unsubscribe-under-cuts.toml",
        1..=1,
        "handshake",
    ),
    case(
        Bug::UserPropertiesReordered,
        "12-mqtt5/07-request-response-properties.toml",
        1..=2,
        "integrity",
    ),
    case(
        Bug::NoLocalIgnored,
        "12-mqtt5/08-subscription-options.toml",
        1..=2,
        "subscription",
    ),
    case(
        Bug::RetainAsPublishedIgnored,
        "12-mqtt5/08-subscription-options.toml",
        1..=2,
        "subscription",
    ),
    case(
        Bug::RetainFlagAlwaysSet,
        "12-mqtt5/08-subscription-options.toml",
        1..=2,
        "retained",
    ),
    case(
        Bug::RetainHandlingIgnored,
        "12-mqtt5/08-subscription-options.toml",
        1..=2,
        "retained",
    ),
    case(
        Bug::WrongSubscriptionId,
        "12-mqtt5/08-subscription-options.toml",
        1..=2,
        "subscription",
    ),
    case(
        Bug::AclIgnoredForWildcards,
        "13-auth/01-acl-wildcards-under-cuts.toml",
        1..=2,
        "acl",
    ),
    case(
        Bug::AclIgnoredForWildcards,
        "13-auth/02-acl-patterns-broker-crash-v5.toml",
        1..=2,
        "acl",
    ),
    case(
        Bug::DeniedPublishForwarded,
        "13-auth/01-acl-wildcards-under-cuts.toml",
        1..=2,
        "acl",
    ),
    case(
        Bug::DeniedPublishForwarded,
        "13-auth/02-acl-patterns-broker-crash-v5.toml",
        1..=2,
        "acl",
    ),
    case(
        Bug::AclIgnoredForWildcards,
        "13-auth/03-anonymous-rules-and-wills-under-partition.toml",
        1..=2,
        "acl",
    ),
    case(
        Bug::DeniedPublishForwarded,
        "13-auth/03-anonymous-rules-and-wills-under-partition.toml",
        1..=2,
        "acl",
    ),
    case(
        Bug::WrongPasswordAccepted,
        "13-auth/01-acl-wildcards-under-cuts.toml",
        1..=2,
        "acl",
    ),
    case(
        Bug::WrongPasswordAccepted,
        "13-auth/02-acl-patterns-broker-crash-v5.toml",
        1..=2,
        "acl",
    ),
    case(
        Bug::OverflowDropsWrongEnd,
        "14-limits/01-queue-overflow-drop-newest.toml",
        1..=2,
        EXPECT,
    ),
    case(
        Bug::OverflowDropsWrongEnd,
        "14-limits/02-queue-overflow-drop-oldest.toml",
        1..=2,
        EXPECT,
    ),
    case(
        Bug::RetainAsPublishedIgnored,
        "15-adversarial/03-mixed-protocols-v311-scenario.toml",
        1..=2,
        "subscription",
    ),
    case(
        Bug::DollarTopicsToWildcards,
        "15-adversarial/06-dollar-topics-and-wildcards.toml",
        1..=2,
        "integrity",
    ),
    case(
        Bug::CleanStartIgnored,
        "15-adversarial/07-clean-start-over-a-persistent-session.toml",
        1..=2,
        "session",
    ),
    case(
        Bug::TakeoverDiscardsSession,
        "09-takeover/03-second-process-takes-over-v311.toml",
        1..=2,
        "session",
    ),
    case(
        Bug::TakeoverDiscardsSession,
        "09-takeover/04-second-process-takes-over-v5.toml",
        1..=2,
        "session",
    ),
    case(
        Bug::ResendWithoutDup,
        "16-misses/01-resend-sets-dup.toml",
        1..=3,
        "integrity",
    ),
    case(
        Bug::ResendWithoutDup,
        "16-misses/02-resend-sets-dup-v5.toml",
        1..=3,
        "integrity",
    ),
    case(
        Bug::SessionPresentOnCleanStart,
        "16-misses/03-clean-start-session-present.toml",
        1..=1,
        "integrity",
    ),
    case(
        Bug::ExpiryNotAged,
        "16-misses/04-message-expiry-aged.toml",
        1..=1,
        "integrity",
    ),
    case(
        Bug::ExpiryNotAged,
        "12-mqtt5/03-message-expiry-offline.toml",
        1..=1,
        "integrity",
    ),
    case(
        Bug::OverlapLowestQos,
        "16-misses/05-overlapping-subscriptions.toml",
        1..=2,
        "delivery",
    ),
    case(
        Bug::OverlapLowestQos,
        "16-misses/06-overlapping-subscriptions-v5.toml",
        1..=2,
        "delivery",
    ),
    case(
        Bug::RetainedCopyAtQos0,
        "06-retained/01-retained-late-subscriber.toml",
        1..=1,
        "integrity",
    ),
    case(
        Bug::RetainedCopyAtQos0,
        "06-retained/04-retained-broker-crash.toml",
        1..=1,
        "integrity",
    ),
];

fn scenario_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(relative)
}

fn planted_options(bug: Bug) -> RunOptions {
    RunOptions {
        broker: planted::factory(bug),
        ..RunOptions::default()
    }
}

/// Runs `seeds` of the scenario with `bug` planted until `checker` reports a violation, and
/// returns that run. Fails if no seed in the range shows it.
fn first_caught(
    s: &Scenario,
    bug: &dyn std::fmt::Debug,
    options: &RunOptions,
    seeds: &RangeInclusive<u64>,
    checker: &str,
) -> RunOutcome {
    for seed in seeds.clone() {
        let out = run_seed(s, seed, options);
        assert_eq!(
            out.status,
            RunStatus::Completed,
            "{bug:?} on {:?} seed {seed}: the run must complete to be judged",
            s.name
        );
        if out.violations.iter().any(|v| v.checker == checker) {
            return out;
        }
    }
    panic!(
        "{bug:?} on {:?}: checker {checker:?} reported nothing over seeds {seeds:?}",
        s.name
    );
}

/// The whole proof for one planted bug and one scenario of the library.
fn prove(bug: Bug, relative: &str, seeds: RangeInclusive<u64>, checker: &str) {
    prove_with(&bug, &planted_options(bug), relative, seeds, checker);
}

/// The whole proof for one bug planted through `options`, and one scenario of the library.
fn prove_with(
    bug: &dyn std::fmt::Debug,
    options: &RunOptions,
    relative: &str,
    seeds: RangeInclusive<u64>,
    checker: &str,
) {
    let path = scenario_path(relative);
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    if checker == EXPECT {
        let e = &s.expect;
        assert!(
            !(e.will_reaches.is_empty()
                && e.no_will.is_empty()
                && e.no_loss.is_empty()
                && e.receives.is_empty()
                && e.overflow.is_empty()),
            "{relative} states no explicit expectation"
        );
    } else {
        assert!(
            s.expect.checkers.iter().any(|c| c.name() == checker),
            "{relative} does not run the {checker:?} checker"
        );
    }

    // (a) caught within the stated seeds.
    let caught = first_caught(&s, bug, options, &seeds, checker);

    // (b) the replay reproduces it: same violations, same fingerprint.
    let again = run_seed(&s, caught.seed, options);
    assert_eq!(
        again.violations, caught.violations,
        "{bug:?} on {relative} seed {}: the replay found other violations",
        caught.seed
    );
    assert_eq!(
        again.fingerprint(),
        caught.fingerprint(),
        "{bug:?} on {relative} seed {}: the replay took another course",
        caught.seed
    );
    let args = ReplayArgs {
        scenario: path.clone(),
        seed: caught.seed,
        trace: None,
        timeline: false,
        no_timeline: true,
        html: None,
    };
    let mut text = Vec::new();
    let code = lab::replay_with(&args, |s, seed| run_seed(s, seed, options), &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert_eq!(code, EXIT_VIOLATION, "{text}");
    for v in &caught.violations {
        assert!(
            text.contains(&v.to_string()),
            "the replay output lacks {v}:\n{text}"
        );
    }

    // (c) the real broker passes the same scenario over the same seeds.
    for seed in seeds {
        let real = run_seed(&s, seed, &RunOptions::default());
        assert!(
            real.passed(),
            "the real broker fails {relative} seed {seed} ({:?}): {:#?}",
            real.status,
            real.violations
        );
    }
}

/// Every case of `bug`, each proved in full.
fn prove_all(bug: Bug) {
    let cases: Vec<&Case> = CASES.iter().filter(|c| c.bug == bug).collect();
    assert!(!cases.is_empty(), "no scenario proves {bug:?}");
    for c in cases {
        prove(c.bug, c.scenario, c.seeds.clone(), c.checker);
    }
}

#[test]
fn refusals_not_counted_are_caught() {
    prove_all(Bug::RefusalsNotCounted);
}

#[test]
fn a_counter_per_interval_is_caught() {
    prove_all(Bug::CounterPerInterval);
}

#[test]
fn qos2_forwarded_twice_is_caught() {
    prove_all(Bug::Qos2ForwardedTwice);
}

#[test]
fn qos1_dropped_after_reconnect_is_caught() {
    prove_all(Bug::Qos1DroppedAfterReconnect);
}

#[test]
fn will_after_disconnect_is_caught() {
    prove_all(Bug::WillAfterDisconnect);
}

#[test]
fn no_will_after_crash_is_caught() {
    prove_all(Bug::NoWillAfterCrash);
}

#[test]
fn retained_not_cleared_is_caught() {
    prove_all(Bug::RetainedNotCleared);
}

#[test]
fn shared_message_sent_to_every_member_is_caught() {
    prove_all(Bug::SharedToAll);
}

#[test]
fn reordered_publishes_are_caught() {
    prove_all(Bug::Reordered);
}

#[test]
fn session_forgotten_on_restart_is_caught() {
    prove_all(Bug::SessionForgotten);
}

#[test]
fn will_delay_ignored_is_caught() {
    prove_all(Bug::WillDelayIgnored);
}

#[test]
fn delayed_will_lost_in_a_durable_crash_is_caught() {
    prove_all(Bug::DelayedWillLostInCrash);
}

#[test]
fn session_that_never_expires_is_caught() {
    prove_all(Bug::SessionNeverExpires);
}

#[test]
fn topic_aliases_kept_across_connections_are_caught() {
    prove_all(Bug::AliasesKeptAcrossConnections);
}

#[test]
fn client_receive_maximum_ignored_is_caught() {
    prove_all(Bug::ReceiveMaximumIgnored);
}

#[test]
fn pubrel_not_resent_is_caught() {
    prove_all(Bug::PubrelNotResent);
}

/// [MQTT-3.10.4-2]
#[test]
fn mqtt_3_10_4_2_unsubscribe_ignored_is_caught() {
    prove_all(Bug::UnsubscribeIgnored);
}

/// [MQTT-3.10.4-4]
#[test]
fn mqtt_3_10_4_4_unsuback_never_sent_is_caught() {
    prove_all(Bug::UnsubackNeverSent);
}

#[test]
fn user_properties_reordered_are_caught() {
    prove_all(Bug::UserPropertiesReordered);
}

#[test]
fn no_local_ignored_is_caught() {
    prove_all(Bug::NoLocalIgnored);
}

#[test]
fn retain_as_published_ignored_is_caught() {
    prove_all(Bug::RetainAsPublishedIgnored);
}

#[test]
fn retain_flag_always_set_is_caught() {
    prove_all(Bug::RetainFlagAlwaysSet);
}

#[test]
fn retain_handling_ignored_is_caught() {
    prove_all(Bug::RetainHandlingIgnored);
}

#[test]
fn wrong_subscription_id_is_caught() {
    prove_all(Bug::WrongSubscriptionId);
}

#[test]
fn wildcard_delivery_beyond_read_rights_is_caught() {
    prove_all(Bug::AclIgnoredForWildcards);
}

#[test]
fn denied_publish_forwarded_is_caught() {
    prove_all(Bug::DeniedPublishForwarded);
}

#[test]
fn wrong_password_accepted_is_caught() {
    prove_all(Bug::WrongPasswordAccepted);
}

#[test]
fn overflow_dropping_the_wrong_end_is_caught() {
    prove_all(Bug::OverflowDropsWrongEnd);
}

/// [MQTT-4.7.2-1]
#[test]
fn mqtt_4_7_2_1_dollar_topics_forwarded_to_wildcards_are_caught() {
    prove_all(Bug::DollarTopicsToWildcards);
}

/// [MQTT-3.1.2-6] (3.1.1)
#[test]
fn mqtt_3_1_2_6_clean_start_ignored_is_caught() {
    // 5.0 [MQTT-3.1.2-4]: the scenario's `keeper5` reconnects with clean start too.
    prove_all(Bug::CleanStartIgnored);
}

/// 3.1.1 [MQTT-3.1.4-3] [MQTT-3.2.2-2]: the CONNECT that takes a session over resumes it.
#[test]
fn mqtt_3_1_4_3_takeover_discarding_the_session_is_caught() {
    // 5.0 [MQTT-3.1.4-4] [MQTT-3.2.2-3] in the 5.0 scenario.
    prove_all(Bug::TakeoverDiscardsSession);
}

#[test]
fn resend_without_dup_is_caught() {
    prove_all(Bug::ResendWithoutDup);
}

#[test]
fn session_present_on_clean_start_is_caught() {
    prove_all(Bug::SessionPresentOnCleanStart);
}

#[test]
fn expiry_not_aged_is_caught() {
    prove_all(Bug::ExpiryNotAged);
}

#[test]
fn overlap_at_the_lowest_qos_is_caught() {
    prove_all(Bug::OverlapLowestQos);
}

#[test]
fn retained_copy_at_qos0_is_caught() {
    prove_all(Bug::RetainedCopyAtQos0);
}

/// Every planted bug has at least one proof, and each proof runs the checker it names.
#[test]
fn every_bug_is_proved_by_some_scenario() {
    for bug in Bug::ALL {
        assert!(CASES.iter().any(|c| c.bug == bug), "{bug:?}");
    }
}

/// The double itself is faithful: with a bug planted that a scenario never triggers, the run
/// is the real broker's run, event for event.
#[test]
fn a_planted_broker_whose_bug_is_not_triggered_runs_like_the_real_one() {
    let s = Scenario::load(scenario_path("01-connect/01-connect-and-publish.toml")).unwrap();
    let real = run_seed(&s, 1, &RunOptions::default());
    assert!(real.passed(), "{:#?}", real.violations);
    // The scenario is 3.1.1 at QoS 0 on one connection per client: no DISCONNECT, no will,
    // no empty retained publish, no broker restart, no resumed session, no shared subscription,
    // no subscription options or identifiers, no properties, no users or ACL, no full queue.
    let untriggered = [
        Bug::Qos2ForwardedTwice,
        Bug::Qos1DroppedAfterReconnect,
        Bug::WillAfterDisconnect,
        Bug::NoWillAfterCrash,
        Bug::RetainedNotCleared,
        Bug::Reordered,
        Bug::SessionForgotten,
        Bug::SharedToAll,
        Bug::WillDelayIgnored,
        Bug::DelayedWillLostInCrash,
        Bug::SessionNeverExpires,
        Bug::AliasesKeptAcrossConnections,
        Bug::ReceiveMaximumIgnored,
        Bug::PubrelNotResent,
        Bug::UnsubscribeIgnored,
        Bug::UnsubackNeverSent,
        Bug::UserPropertiesReordered,
        Bug::NoLocalIgnored,
        Bug::RetainAsPublishedIgnored,
        Bug::RetainHandlingIgnored,
        Bug::WrongSubscriptionId,
        Bug::AclIgnoredForWildcards,
        Bug::DeniedPublishForwarded,
        Bug::WrongPasswordAccepted,
        Bug::OverflowDropsWrongEnd,
        Bug::ResendWithoutDup,
        Bug::ExpiryNotAged,
        Bug::OverlapLowestQos,
        Bug::RetainedCopyAtQos0,
        Bug::TakeoverDiscardsSession,
    ];
    let differing: Vec<Bug> = untriggered
        .into_iter()
        .filter(|&bug| run_seed(&s, 1, &planted_options(bug)).fingerprint() != real.fingerprint())
        .collect();
    assert_eq!(differing, vec![]);
}

/// Every proof of a bug planted in the broker's store, as listed in docs/testing.md: the bug,
/// a library scenario, the seeds within which the checker must report it.
const STORE_CASES: &[(StoreBug, &str, RangeInclusive<u64>, &str)] = &[
    (
        StoreBug::AckBeforeSync,
        "18-disk/03-crashes-in-the-middle-of-syncs.toml",
        1..=8,
        "delivery",
    ),
    (
        StoreBug::AckBeforeSync,
        "18-disk/03-crashes-in-the-middle-of-syncs.toml",
        1..=8,
        "handshake",
    ),
    (
        StoreBug::SyncErrorIgnored,
        "18-disk/01-sync-errors-v311-and-v5.toml",
        1..=1,
        "delivery",
    ),
    (
        StoreBug::SyncErrorIgnored,
        "18-disk/01-sync-errors-v311-and-v5.toml",
        1..=1,
        EXPECT,
    ),
    (
        StoreBug::LastBatchIgnoredAtRecovery,
        "18-disk/03-crashes-in-the-middle-of-syncs.toml",
        1..=1,
        "delivery",
    ),
    (
        StoreBug::LastBatchIgnoredAtRecovery,
        "18-disk/03-crashes-in-the-middle-of-syncs.toml",
        1..=2,
        "integrity",
    ),
    (
        StoreBug::TornBatchAccepted,
        "18-disk/03-crashes-in-the-middle-of-syncs.toml",
        1..=1,
        "delivery",
    ),
    (
        StoreBug::TornBatchAccepted,
        "18-disk/03-crashes-in-the-middle-of-syncs.toml",
        1..=1,
        EXPECT,
    ),
];

/// Every case of a storage bug, each proved in full with the bug's store factory.
fn prove_store(bug: StoreBug) {
    let options = RunOptions {
        store: store_factory(bug),
        ..RunOptions::default()
    };
    let cases: Vec<_> = STORE_CASES.iter().filter(|c| c.0 == bug).collect();
    assert!(!cases.is_empty(), "no scenario proves {bug:?}");
    for (bug, scenario, seeds, checker) in cases {
        prove_with(bug, &options, scenario, seeds.clone(), checker);
    }
}

#[test]
fn acknowledgement_before_the_sync_is_caught() {
    prove_store(StoreBug::AckBeforeSync);
}

#[test]
fn sync_error_ignored_is_caught() {
    prove_store(StoreBug::SyncErrorIgnored);
}

#[test]
fn last_batch_ignored_at_recovery_is_caught() {
    prove_store(StoreBug::LastBatchIgnoredAtRecovery);
}

#[test]
fn a_torn_batch_accepted_as_whole_is_caught() {
    prove_store(StoreBug::TornBatchAccepted);
}
