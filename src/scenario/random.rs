//! The `[random]` section (swarm testing) and the `[network]` section (the baseline network).
//!
//! `[random]` states ranges; each seed draws inside them which fault kinds are on, how often
//! they happen and how long they last (see `plan.rs`). Also their checks. Not here: the drawing
//! itself.

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::checks::{Checks, d};
use super::values::{de_duration_range, de_opt_duration_range};

/// `[network]`: the network when no random latency is drawn.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// One-way latency of each write, drawn per write in `[low, high]`. Default
    /// `["1ms", "10ms"]`. Replaced by the seed's draw when `[random] latency` is set.
    #[serde(deserialize_with = "de_duration_range")]
    pub latency: [Duration; 2],
}

/// Default `[network] latency`.
pub const DEFAULT_LATENCY: [Duration; 2] = [Duration::from_millis(1), Duration::from_millis(10)];

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            latency: DEFAULT_LATENCY,
        }
    }
}

/// `[random]`: the ranges a seed draws its fault mix from.
///
/// Rates are per minute of the faults phase (`[low, high]`, each from 0 to 600). With
/// `swarm = true` (the default) the seed first flips a coin for each kind whose range is
/// given: a kind that loses the toss is off for that seed, so each seed is a different bad
/// day, and some seeds are calm. Random faults start and heal inside the faults phase.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomFaults {
    /// Flip a coin per fault kind. Default `true`; `false` turns on every kind given.
    pub swarm: bool,
    /// Clients random faults may hit. Default: every client.
    pub targets: Option<Vec<String>>,
    /// The seed draws the run's latency range inside this one. Default: `[network] latency`.
    #[serde(deserialize_with = "de_opt_duration_range")]
    pub latency: Option<[Duration; 2]>,
    /// Loss rate range (0 to 0.5) during the faults phase; on simulated TCP a lost write is
    /// retransmitted later, so loss becomes delay and refused connects. Default: no loss.
    pub loss: Option<[f64; 2]>,
    /// Connection cuts per minute.
    pub cuts_per_minute: Option<[f64; 2]>,
    /// Black holes per minute.
    pub blackholes_per_minute: Option<[f64; 2]>,
    /// How long a black hole lasts. Default `["1s", "10s"]`.
    #[serde(deserialize_with = "de_opt_duration_range")]
    pub blackhole_for: Option<[Duration; 2]>,
    /// Extra-delay episodes per minute.
    pub delays_per_minute: Option<[f64; 2]>,
    /// Extra delay of an episode. Default `["50ms", "500ms"]`.
    #[serde(deserialize_with = "de_opt_duration_range")]
    pub delay_extra: Option<[Duration; 2]>,
    /// How long an extra-delay episode lasts. Default `["1s", "10s"]`.
    #[serde(deserialize_with = "de_opt_duration_range")]
    pub delay_for: Option<[Duration; 2]>,
    /// Partitions (a client from the broker) per minute.
    pub partitions_per_minute: Option<[f64; 2]>,
    /// How long a partition lasts. Default `["1s", "10s"]`.
    #[serde(deserialize_with = "de_opt_duration_range")]
    pub partition_for: Option<[Duration; 2]>,
    /// Probability that a partition is one way. Default 0.5.
    pub partition_oneway: Option<f64>,
    /// Client crashes per minute (each restarts after `client_restart_after`).
    pub crashes_per_minute: Option<[f64; 2]>,
    /// Client power-offs per minute (each restarts after `client_restart_after`).
    pub power_offs_per_minute: Option<[f64; 2]>,
    /// How long a crashed or powered-off client stays down. Default `["100ms", "5s"]`.
    #[serde(deserialize_with = "de_opt_duration_range")]
    pub client_restart_after: Option<[Duration; 2]>,
    /// Broker crashes per minute.
    pub broker_crashes_per_minute: Option<[f64; 2]>,
    /// How long a crashed broker stays down. Default `["100ms", "3s"]`.
    #[serde(deserialize_with = "de_opt_duration_range")]
    pub broker_restart_after: Option<[Duration; 2]>,
    /// Pauses per minute (of the broker or a target client).
    pub pauses_per_minute: Option<[f64; 2]>,
    /// How long a pause lasts. Default `["100ms", "3s"]`.
    #[serde(deserialize_with = "de_opt_duration_range")]
    pub pause_for: Option<[Duration; 2]>,
    /// Probability that a target client's connections split writes during the whole faults
    /// phase. Default: never.
    pub split_writes: Option<f64>,
    /// Largest fragment when splitting, drawn per client. Default `[1, 16]` bytes.
    pub split_fragment: Option<[u32; 2]>,
    /// Probability that a random broker crash lands in the middle of a sync of its disk
    /// (persistence `durable`). Default: never.
    pub broker_crash_in_sync: Option<f64>,
    /// Windows of failing syncs of the broker's disk per minute (persistence `durable`).
    pub sync_errors_per_minute: Option<[f64; 2]>,
    /// How long syncs fail. Default `["200ms", "2s"]`.
    #[serde(deserialize_with = "de_opt_duration_range")]
    pub sync_error_for: Option<[Duration; 2]>,
    /// Windows of a full broker disk per minute (persistence `durable`).
    pub disk_full_per_minute: Option<[f64; 2]>,
    /// How long the disk stays full. Default `["500ms", "5s"]`.
    #[serde(deserialize_with = "de_opt_duration_range")]
    pub disk_full_for: Option<[Duration; 2]>,
    /// Windows of slow syncs of the broker's disk per minute (persistence `durable`).
    pub slow_syncs_per_minute: Option<[f64; 2]>,
    /// How long a sync takes in such a window. Default `["10ms", "300ms"]`.
    #[serde(deserialize_with = "de_opt_duration_range")]
    pub slow_sync_latency: Option<[Duration; 2]>,
    /// How long a slow-sync window lasts. Default `["1s", "10s"]`.
    #[serde(deserialize_with = "de_opt_duration_range")]
    pub slow_sync_for: Option<[Duration; 2]>,
}

impl Default for RandomFaults {
    fn default() -> Self {
        RandomFaults {
            swarm: true,
            targets: None,
            latency: None,
            loss: None,
            cuts_per_minute: None,
            blackholes_per_minute: None,
            blackhole_for: None,
            delays_per_minute: None,
            delay_extra: None,
            delay_for: None,
            partitions_per_minute: None,
            partition_for: None,
            partition_oneway: None,
            crashes_per_minute: None,
            power_offs_per_minute: None,
            client_restart_after: None,
            broker_crashes_per_minute: None,
            broker_restart_after: None,
            pauses_per_minute: None,
            pause_for: None,
            split_writes: None,
            split_fragment: None,
            broker_crash_in_sync: None,
            sync_errors_per_minute: None,
            sync_error_for: None,
            disk_full_per_minute: None,
            disk_full_for: None,
            slow_syncs_per_minute: None,
            slow_sync_latency: None,
            slow_sync_for: None,
        }
    }
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Defaults of the `[random]` duration ranges.
pub const DEFAULT_BLACKHOLE_FOR: [Duration; 2] = [ms(1_000), ms(10_000)];
pub const DEFAULT_DELAY_EXTRA: [Duration; 2] = [ms(50), ms(500)];
pub const DEFAULT_DELAY_FOR: [Duration; 2] = [ms(1_000), ms(10_000)];
pub const DEFAULT_PARTITION_FOR: [Duration; 2] = [ms(1_000), ms(10_000)];
pub const DEFAULT_CLIENT_RESTART_AFTER: [Duration; 2] = [ms(100), ms(5_000)];
pub const DEFAULT_BROKER_RESTART_AFTER: [Duration; 2] = [ms(100), ms(3_000)];
pub const DEFAULT_PAUSE_FOR: [Duration; 2] = [ms(100), ms(3_000)];
pub const DEFAULT_PARTITION_ONEWAY: f64 = 0.5;
pub const DEFAULT_SPLIT_FRAGMENT: [u32; 2] = [1, 16];
pub const DEFAULT_SYNC_ERROR_FOR: [Duration; 2] = [ms(200), ms(2_000)];
pub const DEFAULT_DISK_FULL_FOR: [Duration; 2] = [ms(500), ms(5_000)];
pub const DEFAULT_SLOW_SYNC_LATENCY: [Duration; 2] = [ms(10), ms(300)];
pub const DEFAULT_SLOW_SYNC_FOR: [Duration; 2] = [ms(1_000), ms(10_000)];
/// Highest rate a `*_per_minute` range may reach.
pub const MAX_PER_MINUTE: f64 = 600.0;
/// Highest loss rate.
pub const MAX_LOSS: f64 = 0.5;

impl NetworkConfig {
    pub(crate) fn check(&self, c: &mut Checks<'_>) {
        let lat = self.latency;
        if lat[0] > lat[1] {
            c.fail(
                "network.latency",
                format!("range is reversed: {} is above {}", d(lat[0]), d(lat[1])),
            );
        } else if lat[0] < Duration::from_millis(1) {
            c.fail("network.latency", "the simulator's latency is at least 1ms");
        }
    }
}

impl RandomFaults {
    pub(crate) fn check(&self, c: &mut Checks<'_>) {
        if let Some(targets) = &self.targets {
            if targets.is_empty() {
                c.fail(
                    "random.targets",
                    "lists no client: leave it out to target every client",
                );
            }
            for (i, t) in targets.iter().enumerate() {
                c.client_ref(&format!("random.targets[{i}]"), t);
            }
        }
        if let Some(lat) = &self.latency {
            c.duration_range("random.latency", lat);
        }
        if let Some(loss) = &self.loss {
            c.range("random.loss", loss, 0.0, MAX_LOSS);
        }
        let rates = [
            ("cuts_per_minute", &self.cuts_per_minute),
            ("blackholes_per_minute", &self.blackholes_per_minute),
            ("delays_per_minute", &self.delays_per_minute),
            ("partitions_per_minute", &self.partitions_per_minute),
            ("crashes_per_minute", &self.crashes_per_minute),
            ("power_offs_per_minute", &self.power_offs_per_minute),
            ("broker_crashes_per_minute", &self.broker_crashes_per_minute),
            ("pauses_per_minute", &self.pauses_per_minute),
            ("sync_errors_per_minute", &self.sync_errors_per_minute),
            ("disk_full_per_minute", &self.disk_full_per_minute),
            ("slow_syncs_per_minute", &self.slow_syncs_per_minute),
        ];
        for (name, rate) in rates {
            if let Some(rate) = rate {
                c.range(&format!("random.{name}"), rate, 0.0, MAX_PER_MINUTE);
            }
        }
        self.check_spans(c);
        if let Some(p) = self.partition_oneway {
            c.probability("random.partition_oneway", p, 1.0);
        }
        if let Some(p) = self.split_writes {
            c.probability("random.split_writes", p, 1.0);
        }
        if let Some(p) = self.broker_crash_in_sync {
            c.probability("random.broker_crash_in_sync", p, 1.0);
        }
        if let Some([_, slowest]) = self.slow_sync_latency
            && slowest > super::broker::MAX_SYNC_LATENCY
        {
            c.fail(
                "random.slow_sync_latency",
                format!("at most {}", d(super::broker::MAX_SYNC_LATENCY)),
            );
        }
        if let Some(frag) = &self.split_fragment {
            c.range("random.split_fragment", frag, 1, u32::MAX);
        }
    }

    /// The fields given that need the broker's disk.
    pub(crate) fn storage_fields(&self) -> Vec<&'static str> {
        [
            ("broker_crash_in_sync", self.broker_crash_in_sync.is_some()),
            (
                "sync_errors_per_minute",
                self.sync_errors_per_minute.is_some(),
            ),
            ("sync_error_for", self.sync_error_for.is_some()),
            ("disk_full_per_minute", self.disk_full_per_minute.is_some()),
            ("disk_full_for", self.disk_full_for.is_some()),
            (
                "slow_syncs_per_minute",
                self.slow_syncs_per_minute.is_some(),
            ),
            ("slow_sync_latency", self.slow_sync_latency.is_some()),
            ("slow_sync_for", self.slow_sync_for.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }

    /// The ranges of how long faults last: ordered, positive, and able to heal in time.
    fn check_spans(&self, c: &mut Checks<'_>) {
        let until = c.faults_until;
        let spans = [
            ("blackhole_for", &self.blackhole_for),
            ("delay_extra", &self.delay_extra),
            ("delay_for", &self.delay_for),
            ("partition_for", &self.partition_for),
            ("client_restart_after", &self.client_restart_after),
            ("broker_restart_after", &self.broker_restart_after),
            ("pause_for", &self.pause_for),
            ("sync_error_for", &self.sync_error_for),
            ("disk_full_for", &self.disk_full_for),
            ("slow_sync_latency", &self.slow_sync_latency),
            ("slow_sync_for", &self.slow_sync_for),
        ];
        for (name, span) in spans {
            if let Some(span) = span {
                let field = format!("random.{name}");
                c.duration_range(&field, span);
                if !matches!(name, "delay_extra" | "slow_sync_latency") && span[0] >= until {
                    c.fail(
                        field,
                        format!("{} is not shorter than the faults phase ({}): no such fault could heal in time", d(span[0]), d(until)),
                    );
                }
            }
        }
    }
}

/// A 64-bit seed for one purpose, derived from the run seed: the first eight bytes of
/// SHA-256 over `"mqtt-lab"`, the seed (little endian) and the purpose's name.
pub fn sub_seed(seed: u64, purpose: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(b"mqtt-lab");
    h.update(seed.to_le_bytes());
    h.update(purpose.as_bytes());
    let digest = h.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("eight bytes"))
}

/// A ChaCha8 stream for one purpose of one seed.
pub fn stream(seed: u64, purpose: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(sub_seed(seed, purpose))
}
