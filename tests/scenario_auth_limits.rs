//! The `[broker]` users, ACL and limits, the clients' credentials and the `overflow`
//! expectation: valid files load, mistakes get errors naming the file, line, field and reason.

use mqtt_lab::scenario::Scenario;

const GOOD: &str = r#"
name = "auth"
protocol = "3.1.1"
duration = "30s"

[broker]
allow_anonymous = false
max_topic_length = 32
users = [{ name = "alice", password = "pw" }]
acl = """
user alice
topic readwrite home/#
"""

[[client]]
id = "monitor"
username = "alice"
password = "pw"
clean_session = false
subscribe = [{ filter = "home/#", qos = 1 }]
disconnect_at = "5s"
reconnect_at = "15s"

[[workload]]
client = "monitor"
topic = "home/a"
qos = 1
count = 10

[expect]
checkers = ["acl"]
overflow = ["monitor"]
"#;

fn error_after(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "test edit {from:?} does not apply");
    match Scenario::from_str(&GOOD.replacen(from, to, 1), "bad.toml") {
        Ok(_) => panic!("accepted after replacing {from:?} by {to:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_problem(text: &str, line: usize, field: &str, reason: &str) {
    let expected = format!("bad.toml: line {line}: {field}: ");
    let found = text
        .lines()
        .find(|l| l.starts_with(&expected))
        .unwrap_or_else(|| panic!("no problem starting {expected:?} in:\n{text}"));
    assert!(found.contains(reason), "{found:?} does not say {reason:?}");
}

#[test]
fn the_base_file_is_valid_and_hashes_its_users_once() {
    let s = Scenario::from_str(GOOD, "good.toml").unwrap();
    let auth = s.auth();
    let users = auth.passwords.as_ref().unwrap();
    assert!(users.verify("alice", b"pw"));
    assert!(!users.verify("alice", b"wrong"));
    assert!(auth.acl.is_some());
    assert!(s.broker.has_auth());
    assert_eq!(s.clients[0].username.as_deref(), Some("alice"));
}

#[test]
fn a_bad_acl_line_is_named() {
    let e = error_after("topic readwrite home/#", "topic sometimes home/#");
    assert_problem(&e, 10, "broker.acl", "ACL line 2");
}

#[test]
fn users_must_be_valid_and_unique() {
    let e = error_after(
        r#"users = [{ name = "alice", password = "pw" }]"#,
        r#"users = [{ name = "alice", password = "pw" }, { name = "alice", password = "x" }]"#,
    );
    assert_problem(&e, 9, "broker.users[1].name", "listed twice");
    let e = error_after(r#"name = "alice", password"#, r#"name = "a:b", password"#);
    assert!(
        e.contains("broker.users[0].name") && e.contains("not a user name"),
        "{e}"
    );
}

#[test]
fn credentials_need_users_and_a_3_1_1_password_needs_a_username() {
    let e = error_after("username = \"alice\"\n", "");
    assert!(
        e.contains("client[0].password") && e.contains("MQTT-3.1.2-22"),
        "{e}"
    );
    let e = error_after(r#"users = [{ name = "alice", password = "pw" }]"#, "");
    assert!(
        e.contains("client[0].username") && e.contains("no users"),
        "{e}"
    );
}

#[test]
fn limits_are_checked_and_workloads_beyond_them_must_say_so() {
    let e = error_after("max_topic_length = 32", "max_topic_length = 0");
    assert_problem(&e, 8, "broker.max_topic_length", "outside 1 to 65535");
    let e = error_after(
        "topic = \"home/a\"",
        "topic = \"home/a/topic/name/far/too/long/for/us\"",
    );
    assert!(
        e.contains("workload[0].topic") && e.contains("beyond_limits"),
        "{e}"
    );
    let e = error_after(
        "topic = \"home/a\"",
        "topic = \"home/a\"\nbeyond_limits = true",
    );
    assert!(
        e.contains("workload[0].beyond_limits") && e.contains("breaks none"),
        "{e}"
    );
    let e = error_after(
        "topic = \"home/a\"",
        "topic = \"home/a/topic/name/far/too/long/for/us\"\nbeyond_limits = true",
    );
    assert!(e.contains("workload[0].qos") && e.contains("QoS 0"), "{e}");
}

#[test]
fn overflow_needs_an_offline_persistent_subscriber() {
    let e = error_after("reconnect_at = \"15s\"\n", "");
    assert!(
        e.contains("expect.overflow[0]") && e.contains("reconnect_at"),
        "{e}"
    );
    let e = error_after("clean_session = false\n", "");
    assert!(e.contains("persistent session"), "{e}");
}
