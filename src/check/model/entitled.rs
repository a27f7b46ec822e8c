//! What a client is owed: the subscriptions that cover a message for it ([`Model::held`],
//! [`Model::held_shared`]), whether a delivery was forwarded or a retained copy
//! ([`Model::forwarded`]), the entitlement rule ([`Model::entitled`], docs/checkers.md, "Entitled") and
//! its excuses: expiry ([`Model::may_expire`], [`Model::offline_past_expiry`]) and queue
//! overflow ([`Model::may_overflow`]).

use super::{Del, Held, Model, Pos, Pub, SubEv, SubKind};
use crate::check::topic;

impl<'t> Model<'t> {
    /// The plain (not shared) subscription of `client` that covers `topic` for a message of
    /// QoS `qos` requested at `before`: granted before `before` and never unsubscribed or refused afterwards. The
    /// one with the highest effective QoS wins.
    pub fn held(&self, client: &str, topic: &str, qos: u8, before: Pos) -> Option<Held<'t>> {
        self.held_from(client, None, topic, qos, before)
    }

    /// [`held`](Model::held) for a message published by `origin`: a subscription whose
    /// request had No Local set does not cover the client's own messages [MQTT-3.8.3-3].
    pub fn held_from(
        &self,
        client: &str,
        origin: Option<&str>,
        topic: &str,
        qos: u8,
        before: Pos,
    ) -> Option<Held<'t>> {
        let log = self.clients.get(client)?;
        let mut best: Option<Held<'t>> = None;
        let mut filters: Vec<&'t str> = log.subs.iter().map(|s| s.filter).collect();
        filters.sort_unstable();
        filters.dedup();
        // A shared subscription entitles its group, not one member ("shared" checker).
        for f in filters
            .into_iter()
            .filter(|f| topic::shared(f).is_none() && topic::matches(f, topic))
        {
            let evs: Vec<&SubEv<'t>> = log.subs.iter().filter(|s| s.filter == f).collect();
            let Some(start) = evs
                .iter()
                .rposition(|s| s.pos < before && matches!(s.kind, SubKind::Granted(_)))
            else {
                continue;
            };
            let no_local = evs[..start]
                .iter()
                .rev()
                .find(|s| matches!(s.kind, SubKind::Requested(_)))
                .is_some_and(|s| s.options.no_local);
            if no_local && origin == Some(client) {
                continue;
            }
            let mut eff = qos;
            let mut ok = true;
            for s in &evs[start..] {
                match s.kind {
                    SubKind::Granted(Some(g)) => eff = eff.min(g),
                    SubKind::Granted(None) | SubKind::UnsubRequested => ok = false,
                    SubKind::Requested(_) => {}
                }
            }
            if ok && best.is_none_or(|b| eff > b.qos) {
                best = Some(Held {
                    filter: f,
                    granted_at: evs[start].pos,
                    qos: eff,
                });
            }
        }
        best
    }

    /// Whether delivery `d` is a forwarded message (`Some(true)`: it went out because it
    /// matched an established subscription) or a retained copy (`Some(false)`: sent because of
    /// a new subscription), or either (`None`). A delivery without the retain flag is
    /// forwarded. One with it is a retained copy, unless it may have been forwarded through a
    /// subscription with Retain As Published (5.0) [MQTT-3.3.1-13]: the client asked for a
    /// matching filter with that option before it, and the label was published retained. It
    /// may be both when, in the same session, the client also asked for a matching filter
    /// (retain handling 0 or 1) whose SUBACK came after the label was requested; a shared
    /// filter counts too, since brokers differ on sending retained messages to a new shared
    /// subscription.
    pub fn forwarded(&self, d: &Del<'_>) -> Option<bool> {
        if !d.retain {
            return Some(true);
        }
        let Some(log) = self.clients.get(d.client) else {
            return Some(false);
        };
        let pubs: Vec<&Pub<'t>> = self
            .pubs_with(d.label)
            .filter(|p| p.retain && p.topic == d.topic && p.pos < d.pos)
            .collect();
        let rap = !pubs.is_empty()
            && log.subs.iter().any(|s| {
                s.pos < d.pos
                    && s.options.retain_as_published
                    && matches!(s.kind, SubKind::Requested(_))
                    && topic::subscription_matches(s.filter, d.topic)
            });
        if !rap {
            return Some(false);
        }
        let chain = self.chain_at(d.client, d.pos);
        let copy = log.subs.iter().enumerate().any(|(i, s)| {
            if s.pos >= d.pos
                || !matches!(s.kind, SubKind::Requested(_))
                || s.options.retain_handling == 2
                || !topic::subscription_matches(s.filter, d.topic)
                || self.chain_at(d.client, s.pos) != chain
            {
                return false;
            }
            let answer = log.subs[i + 1..]
                .iter()
                .find(|g| g.filter == s.filter && !matches!(g.kind, SubKind::Requested(_)))
                .map_or(d.pos, |g| g.pos);
            pubs.iter().any(|p| p.pos < answer)
        });
        if copy { None } else { Some(true) }
    }

    /// The latest grant of shared subscription `share` to `client` before `before`, if the
    /// client never refused, lost (a refused re-grant) or unsubscribed it afterwards.
    pub fn held_shared(&self, client: &str, share: &str, before: Pos) -> Option<Pos> {
        let log = self.clients.get(client)?;
        let evs: Vec<&SubEv<'t>> = log.subs.iter().filter(|s| s.filter == share).collect();
        let start = evs
            .iter()
            .rposition(|s| s.pos < before && matches!(s.kind, SubKind::Granted(Some(_))))?;
        evs[start..]
            .iter()
            .all(|s| !matches!(s.kind, SubKind::Granted(None) | SubKind::UnsubRequested))
            .then_some(evs[start].pos)
    }

    /// Whether publish `p` may have expired before the broker could send it to `client`
    /// (docs/checkers.md, "Entitled", rule 6). A message without an expiry interval never expires. One
    /// with interval `e`, requested at `r`, cannot expire on its way to `client` only when:
    /// `e` exceeds the network slack; `client` was connected in one connection from before `r`
    /// to `r + e`; no fault disturbed that connection and the broker was not stalled in
    /// `[r, r + e]`; and nothing requested before `r` on a topic `client` had asked for was
    /// still waiting for its first delivery to `client` at `r` (no backlog in front of it).
    pub fn may_expire(&self, client: &str, p: &Pub<'_>, slack_us: u64) -> bool {
        let Some(e) = p.expiry_s else {
            return false;
        };
        let e_us = u64::from(e) * 1_000_000;
        if e_us <= slack_us {
            return true;
        }
        let r_us = self.us(p.pos);
        let until = self.pos_at_us(r_us + e_us);
        let Some(epoch) = self.epoch_at(client, p.pos) else {
            return true;
        };
        if epoch.end.is_some_and(|(end, _)| end <= until)
            || self.disturbed(client, p.pos, until)
            || self.broker_stalled_us(r_us, r_us + e_us) > 0
        {
            return true;
        }
        let Some(log) = self.clients.get(client) else {
            return true;
        };
        self.pubs.iter().filter(|q| q.pos < p.pos).any(|q| {
            let asked = log.subs.iter().any(|s| {
                s.pos < p.pos
                    && matches!(s.kind, SubKind::Requested(_))
                    && topic::subscription_matches(s.filter, q.topic)
            });
            asked
                && self
                    .dels_of(q.label, client)
                    .find(|d| d.pos > q.pos)
                    .is_none_or(|d| d.pos > p.pos)
        })
    }

    /// Whether `client` was without a connection, by its own account, throughout
    /// `[r, r + e + slack + broker stall]` for publish `p` with expiry interval `e`: the
    /// broker cannot have sent it `p` before it expired.
    pub fn offline_past_expiry(&self, client: &str, p: &Pub<'_>, slack_us: u64) -> bool {
        let Some(e) = p.expiry_s else {
            return false;
        };
        let r_us = self.us(p.pos);
        let mut until_us = r_us + u64::from(e) * 1_000_000 + slack_us;
        until_us += self.broker_stalled_us(r_us, until_us);
        let until = self.pos_at_us(until_us);
        let Some(log) = self.clients.get(client) else {
            return false;
        };
        !log.epochs
            .iter()
            .any(|ep| ep.start < until && ep.end.is_none_or(|(end, _)| end >= p.pos))
    }

    /// Whether `client` is owed a message of QoS `qos` on `topic` requested at `requested`;
    /// the exact rule is in docs/checkers.md ("Entitled").
    pub fn entitled(&self, client: &str, topic: &str, qos: u8, requested: Pos) -> Option<Held<'t>> {
        self.entitled_from(client, None, topic, qos, requested)
    }

    /// [`entitled`](Model::entitled) for a message published by `origin` (No Local, see
    /// [`held_from`](Model::held_from)).
    pub fn entitled_from(
        &self,
        client: &str,
        origin: Option<&str>,
        topic: &str,
        qos: u8,
        requested: Pos,
    ) -> Option<Held<'t>> {
        if !self.may_read(client, topic) {
            return None;
        }
        let held = self
            .held_from(client, origin, topic, qos, requested)
            .filter(|h| h.qos >= 1)?;
        let end = self.end?;
        if !self.session_kept_to_end(client, held.granted_at)
            || self.lossy_crash_between(requested, end).is_some()
            || (held.qos == 2 && self.gone_between(client, requested, end).is_some())
            || self.may_overflow(client, requested)
        {
            return None;
        }
        Some(held)
    }

    /// Whether the queue of `client` may have overflowed at some point from `from` to the
    /// end: more messages outstanding for it than `max_queued_messages`. A message counts as
    /// outstanding for it from its request (or, if later, the client's first SUBSCRIBE of a
    /// matching filter; a message published before that counts only if retained) until its
    /// first delivery to the client or the start of the client's next session, whichever
    /// comes first. This over-estimates what the broker holds, so it errs towards forgiving.
    pub fn may_overflow(&self, client: &str, from: Pos) -> bool {
        let Some((&name, _)) = self.clients.get_key_value(client) else {
            return false;
        };
        if let Some(last) = self.overflow.borrow().get(name) {
            return last.is_some_and(|l| l >= from);
        }
        let last = self.last_overflow(name);
        self.overflow.borrow_mut().insert(name, last);
        last.is_some_and(|l| l >= from)
    }

    /// The last position at which more than `max_queued_messages` messages were outstanding
    /// for `client` (see [`may_overflow`](Model::may_overflow)).
    fn last_overflow(&self, client: &str) -> Option<Pos> {
        let limit = i64::try_from(self.max_queued?).unwrap_or(i64::MAX);
        let log = self.clients.get(client)?;
        let new_sessions: Vec<Pos> = log
            .epochs
            .iter()
            .filter(|e| !e.session_present)
            .map(|e| e.start)
            .collect();
        let mut steps: Vec<(Pos, i64)> = Vec::new();
        for p in &self.pubs {
            let Some(first_sub) = log
                .subs
                .iter()
                .filter(|s| {
                    matches!(s.kind, SubKind::Requested(_))
                        && topic::subscription_matches(s.filter, p.topic)
                })
                .map(|s| s.pos)
                .min()
            else {
                continue;
            };
            if p.pos < first_sub && !p.retain {
                continue;
            }
            let start = p.pos.max(first_sub);
            let delivered = self
                .dels_of(p.label, client)
                .find(|d| d.pos > p.pos)
                .map_or(usize::MAX, |d| d.pos);
            let reset = new_sessions
                .iter()
                .copied()
                .find(|&n| n > start)
                .unwrap_or(usize::MAX);
            steps.push((start, 1));
            steps.push((delivered.min(reset), -1));
        }
        steps.sort_unstable();
        let mut count: i64 = 0;
        let mut last = None;
        for (i, &(pos, d)) in steps.iter().enumerate() {
            count += d;
            // Over the limit from `pos` until the next step.
            if count > limit {
                last = Some(
                    steps
                        .get(i + 1)
                        .map_or(pos, |n| n.0.saturating_sub(1).max(pos)),
                );
            }
        }
        last
    }
}
