//! `mqtt-lab passwd` end to end: the binary creates, changes and removes users, never storing
//! a password in plain text, and the broker's password file parser accepts what it writes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use mqtt_lab::broker::auth::PasswordFile;

fn passwd(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mqtt-lab"))
        .arg("passwd")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn load(path: &Path) -> (String, PasswordFile) {
    let text = std::fs::read_to_string(path).unwrap();
    let file = PasswordFile::parse("pw", &text).unwrap();
    (text, file)
}

#[test]
fn create_add_change_and_delete_users() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwords");
    let p = pw.to_str().unwrap();

    let out = passwd(&["-c", p, "alice", "--password", "wonderland"], "");
    assert!(out.status.success(), "{out:?}");
    let out = passwd(&["--stdin", p, "bob"], "builder\n");
    assert!(out.status.success(), "{out:?}");
    let (text, file) = load(&pw);
    assert!(
        !text.contains("wonderland") && !text.contains("builder"),
        "{text}"
    );
    assert!(text.lines().all(|l| l.contains(":$argon2id$")), "{text}");
    assert!(file.verify("alice", b"wonderland"));
    assert!(file.verify("bob", b"builder"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pw).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
    }

    // Change by adding again: the old password stops working, the other user is untouched.
    let out = passwd(&[p, "alice", "--password", "looking-glass"], "");
    assert!(out.status.success(), "{out:?}");
    let (_, file) = load(&pw);
    assert!(file.verify("alice", b"looking-glass"));
    assert!(!file.verify("alice", b"wonderland"));
    assert!(file.verify("bob", b"builder"));

    // Delete.
    let out = passwd(&["-D", p, "bob"], "");
    assert!(out.status.success(), "{out:?}");
    let (_, file) = load(&pw);
    assert!(!file.contains("bob"));
    assert!(file.contains("alice"));
    // Deleting again is an error (exit code 2).
    let out = passwd(&["-D", p, "bob"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user \"bob\""));

    // -c replaces the file.
    let out = passwd(&["-c", p, "carol", "--password", "x"], "");
    assert!(out.status.success(), "{out:?}");
    let (_, file) = load(&pw);
    assert_eq!(file.len(), 1);
    assert!(file.contains("carol"));
}

#[test]
fn usage_errors_leave_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwords");
    let p = pw.to_str().unwrap();
    // No file and no -c.
    let out = passwd(&[p, "alice", "--password", "x"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("use -c"));
    assert!(!pw.exists());
    // A bad line is reported with file and line, and the file is not rewritten.
    std::fs::write(&pw, "# users\nalice:plaintext\n").unwrap();
    let out = passwd(&[p, "bob", "--password", "x"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{p}:2:")), "{err}");
    assert_eq!(
        std::fs::read_to_string(&pw).unwrap(),
        "# users\nalice:plaintext\n"
    );
    // Invalid user names and empty passwords are refused.
    let out = passwd(&["-c", p, "a:b", "--password", "x"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = passwd(&["-c", p, "alice", "--stdin"], "\n");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty password"));
    // Without a terminal and without --stdin, the tool says how to give the password instead
    // of reading an empty one.
    let out = passwd(&["-c", p, "alice"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no terminal") && err.contains("--stdin"),
        "{err}"
    );
    assert!(!err.contains("empty password"), "{err}");
}
