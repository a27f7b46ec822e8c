//! `mqtt-lab passwd`: adds, changes and removes users in a broker password file.
//!
//! The password is read from `--password`, from the first line of standard input with
//! `--stdin`, or asked for twice on the terminal (without echo where `stty` is available);
//! without a terminal and without either flag it is refused with a pointer to `--stdin`. It
//! is stored only as a salted Argon2id hash (salt from the operating system). The file is
//! rewritten through a temporary file and a rename, readable by its owner only (Unix).
//!
//! Not here: the file format (`broker::auth::password`), the broker reading it.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use rand::TryRngCore;

use crate::broker::auth::password::{
    HashCost, PasswordFile, SALT_LEN, hash_password, valid_user_name,
};
use crate::cli::EXIT_USAGE;

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Create the file, replacing any existing one.
    #[arg(short = 'c', long = "create", conflicts_with = "delete")]
    pub create: bool,
    /// Remove USER instead of adding or changing it.
    #[arg(short = 'D', long = "delete")]
    pub delete: bool,
    /// The password (visible in the process list: prefer --stdin or the prompt).
    #[arg(long, conflicts_with_all = ["stdin", "delete"])]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "delete")]
    pub stdin: bool,
    /// The password file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The user to add, change or remove.
    #[arg(value_name = "USER")]
    pub user: String,
}

/// An error and the exit code it ends the command with.
struct Failure(i32, String);

fn usage(msg: String) -> Failure {
    Failure(EXIT_USAGE, msg)
}

pub fn run(args: PasswdArgs) -> i32 {
    match passwd(&args) {
        Ok(msg) => {
            eprintln!("{msg}");
            0
        }
        Err(Failure(code, msg)) => {
            eprintln!("error: {msg}");
            code
        }
    }
}

fn passwd(args: &PasswdArgs) -> Result<String, Failure> {
    if !valid_user_name(&args.user) {
        return Err(usage(format!(
            "invalid user name {:?}: it must be non-empty, without `:`, control characters or surrounding spaces",
            args.user
        )));
    }
    let shown = args.file.display().to_string();
    let mut file = if args.create {
        PasswordFile::default()
    } else {
        let text = std::fs::read_to_string(&args.file)
            .map_err(|e| usage(format!("{shown}: cannot read: {e} (use -c to create it)")))?;
        PasswordFile::parse(&shown, &text).map_err(|e| usage(e.to_string()))?
    };
    let done = if args.delete {
        if !file.remove(&args.user) {
            return Err(usage(format!("{shown}: no user {:?}", args.user)));
        }
        format!("removed user {:?} from {shown}", args.user)
    } else {
        let password = read_password(args)?;
        if password.is_empty() {
            return Err(usage("empty password".into()));
        }
        let mut salt = [0u8; SALT_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut salt)
            .map_err(|e| Failure(1, format!("no randomness for the salt: {e}")))?;
        let verb = if file.contains(&args.user) {
            "changed"
        } else {
            "added"
        };
        file.set(
            &args.user,
            hash_password(password.as_bytes(), &salt, HashCost::DEFAULT),
        );
        format!("{verb} user {:?} in {shown}", args.user)
    };
    replace_file(&args.file, file.to_text().as_bytes())
        .map_err(|e| Failure(1, format!("{shown}: cannot write: {e}")))?;
    Ok(done)
}

fn read_password(args: &PasswdArgs) -> Result<String, Failure> {
    if let Some(p) = &args.password {
        return Ok(p.clone());
    }
    let stdin = std::io::stdin();
    if !args.stdin && !stdin.is_terminal() {
        return Err(usage(
            "no terminal to ask the password on: give it on standard input with --stdin \
             (`echo PASSWORD | mqtt-lab passwd --stdin FILE USER`), or with --password"
                .into(),
        ));
    }
    if args.stdin {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| usage(format!("cannot read the password: {e}")))?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
    }
    let first = prompt("Password: ")?;
    let second = prompt("Reenter password: ")?;
    if first != second {
        return Err(usage("the passwords do not match".into()));
    }
    Ok(first)
}

/// Asks on the terminal with echo off (if `stty` can turn it off).
fn prompt(text: &str) -> Result<String, Failure> {
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let echo_off = stty("-echo");
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        stty("echo");
        eprintln!();
    }
    read.map_err(|e| usage(format!("cannot read the password: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

fn stty(arg: &str) -> bool {
    std::process::Command::new("stty")
        .arg(arg)
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}

/// Replaces the file at `path` with `bytes`, atomically and durably: the bytes go to a hidden
/// temporary file in the same folder (owner-only on Unix), which is flushed to disk, renamed
/// over `path`, and the folder flushed. A reader sees the old file or the new one, never a mix;
/// on error the temporary file is removed and `path` is as it was.
fn replace_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
