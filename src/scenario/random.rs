//! The `[random]` section (swarm testing) and the `[network]` section (the baseline network).
//!
//! `[random]` states ranges; each seed draws inside them which fault kinds are on, how often
//! they happen and how long they last (see `plan.rs`). Not here: the drawing itself.

use std::time::Duration;

use serde::Deserialize;

use super::duration::de_opt_duration_range;

/// `[network]`: the network when no random latency is drawn.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// One-way latency of each write, drawn per write in `[low, high]`. Default
    /// `["1ms", "10ms"]`. Replaced by the seed's draw when `[random] latency` is set.
    #[serde(deserialize_with = "de_range")]
    pub latency: [Duration; 2],
}

fn de_range<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[Duration; 2], D::Error> {
    de_opt_duration_range(d).map(|r| r.expect("a range is always present"))
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
/// Highest rate a `*_per_minute` range may reach.
pub const MAX_PER_MINUTE: f64 = 600.0;
/// Highest loss rate.
pub const MAX_LOSS: f64 = 0.5;
