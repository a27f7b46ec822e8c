//! Why a message or a will that an expectation counted on never arrived, from the trace alone:
//! the first of the reasons below that the trace shows, so that a failed `receives`,
//! `no_loss` or `will_reaches` says more than a count. A reason is an explanation for the
//! reader, not an excuse: the rules that excuse are the checkers' and the expectations' own.
//!
//! For a message (in this order): its publisher's session lost it; it was never acknowledged
//! to its publisher; an ACL kept it from the publisher or the subscriber; the subscriber held
//! no matching subscription when it was published; it went at most once (QoS 0); the
//! subscriber's session ended after it subscribed; a broker crash without persistence came
//! after it; the subscriber's queue may have overflowed; it carried a message expiry; it was
//! acknowledged in the settle phase (may still be in flight at the end); otherwise nothing in
//! the trace excuses it. Not here: which messages a rule counts (`expect.rs`).

use super::model::{End, Model, Pub};

/// Why `p` never reached `subscriber`, in a few words.
pub fn why_missing(m: &Model<'_>, p: &Pub<'_>, subscriber: &str) -> String {
    if p.lost.is_some() {
        return format!("{}'s session lost it before it was acknowledged", p.client);
    }
    if p.shadowed.is_some() {
        return "its QoS 2 packet identifier was still held by an earlier exchange of the session, so the broker took it for a resend".into();
    }
    let offline_at_end = |client: &str| {
        m.clients
            .get(client)
            .is_none_or(|l| l.epochs.iter().all(|e| e.end.is_some()))
    };
    if p.qos >= 1 && p.acked.is_none() {
        return format!(
            "never acknowledged to {}{}",
            p.client,
            if offline_at_end(p.client) {
                ", which was not connected at the end"
            } else {
                ""
            }
        );
    }
    if !m.may_write(p.client, p.topic) {
        return format!("the ACL denies {} publishing on {}", p.client, p.topic);
    }
    if !m.may_read(subscriber, p.topic) {
        return format!("the ACL denies {subscriber} reading {}", p.topic);
    }
    let Some(held) = m.held_from(subscriber, Some(p.client), p.topic, p.qos, p.pos) else {
        return format!(
            "{subscriber} held no subscription matching {} when it was published",
            p.topic
        );
    };
    if held.qos == 0 {
        let offline = m.epoch_at(subscriber, p.pos).is_none();
        return format!(
            "it went at most once (QoS 0{}){}",
            if p.qos > 0 {
                ", the subscription's"
            } else {
                ""
            },
            if offline {
                format!(" while {subscriber} was offline")
            } else {
                String::new()
            }
        );
    }
    if !m.session_kept_to_end(subscriber, held.granted_at) {
        return format!(
            "{subscriber}'s session (of its subscription to {}) ended afterwards",
            held.filter
        );
    }
    if let Some(end) = m.end
        && let Some(crash) = m.lossy_crash_between(p.pos, end)
    {
        return format!(
            "the broker crashed at {} us without persistence",
            m.us(crash)
        );
    }
    if m.may_overflow(subscriber, held.granted_at) {
        return format!("{subscriber}'s queue may have overflowed (max_queued_messages)");
    }
    if let Some(expiry) = p.expiry_s {
        return format!("it carried a message expiry of {expiry} s");
    }
    if let (Some(acked), Some(settle)) = (p.acked, m.settle)
        && acked >= settle
    {
        return format!(
            "acknowledged at {} us, in the settle phase: it may still have been on its way at the end",
            m.us(acked)
        );
    }
    if offline_at_end(subscriber) {
        return format!(
            "nothing in the trace excuses it; {subscriber} was not connected at the end"
        );
    }
    "nothing in the trace excuses it".into()
}

/// Why no will of `client` reached `subscriber`.
pub fn why_no_will(m: &Model<'_>, client: &str, subscriber: &str) -> String {
    let Some(log) = m.clients.get(client) else {
        return format!("{client} never connected");
    };
    let with_will: Vec<_> = log
        .epochs
        .iter()
        .filter(|e| log.attempts[e.attempt].will.is_some())
        .collect();
    let Some(last) = with_will.last() else {
        return format!("{client} never connected with a will");
    };
    let topic = log.attempts[last.attempt]
        .will
        .map_or("", |w| w.topic.as_str());
    let reached: Vec<&str> = {
        let mut r: Vec<&str> = m
            .dels
            .iter()
            .filter(|d| {
                matches!(
                    crate::trace::payload::parse_label(d.label),
                    Some(crate::trace::payload::LabelKind::Will { client: c, .. }) if c == client
                )
            })
            .map(|d| d.client)
            .collect();
        r.sort_unstable();
        r.dedup();
        r
    };
    if !reached.is_empty() {
        let subscribed = m.clients.get(subscriber).is_some_and(|l| {
            l.subs
                .iter()
                .any(|s| super::topic::matches(s.filter, topic))
        });
        return format!(
            "it reached {} but not {subscriber}{}",
            reached.join(", "),
            if subscribed {
                ""
            } else {
                ", which never subscribed to a filter matching it"
            }
        );
    }
    match last.end {
        None => {
            format!("{client}'s last connection with a will ({topic}) was still open at the end")
        }
        Some((_, End::Disconnect { with_will: false })) => format!(
            "{client}'s last connection with a will ({topic}) ended with a normal DISCONNECT, which discards the will"
        ),
        Some((at, end)) => format!(
            "{client}'s last connection with a will ({topic}) ended at {} us ({}), and no will of it was delivered to anyone",
            m.us(at),
            match end {
                End::Disconnect { .. } => "DISCONNECT with the will".to_string(),
                End::Lost(cause) => format!("lost: {cause:?}"),
                End::Cut => "cut".into(),
                End::ClientGone => "the client crashed or lost power".into(),
                End::BrokerCrash => "the broker crashed".into(),
                End::TakenOver => "taken over".into(),
            }
        ),
    }
}
