//! `jwe-session`: make and rotate key rings, encrypt, decrypt and inspect session tokens,
//! and revoke sessions through Redis, PostgreSQL or the service's revocation file.
//!
//! ```text
//! jwe-session keygen [--kid KID] [--enc A256GCM] [--set]   # one oct JWK (or a one-key JWK Set)
//! jwe-session rotate --keys FILE [--keep N]                # prepend a new active key, keep N old
//! jwe-session rotate --keys FILE --stage [--kid KID] [--enc ENC]   # add a key that opens only
//! jwe-session rotate --keys FILE --activate KID [--at TIME]         # KID seals from now (or TIME)
//! jwe-session rotate --keys FILE --retire KID [--force]             # remove a key nothing needs
//! jwe-session encrypt --keys FILE [--kid KID]              # stdin claims JSON -> compact JWE
//! jwe-session decrypt --keys FILE [--validate] [--raw]     # stdin compact JWE -> claims JSON
//! jwe-session inspect                                      # stdin compact JWE -> header and sizes
//! jwe-session revoke (--redis URL [--prefix P] | --postgres URL [--schema S] | --file PATH) (--sid S | --sids-from FILE | --sub U | --all | --refresh --sub U) [--before TIME] [--force]
//! jwe-session sessions (--redis URL [--prefix P] | --postgres URL [--schema S] | --file PATH) --sub U   # a user's live sessions, JSON lines
//! ```
//!
//! Every command reads at most one item from stdin (surrounding whitespace trimmed). On
//! success it prints the result and exits 0. On failure it prints one line to stderr,
//! nothing to stdout, and exits with: 2 usage error, 3 bad input (a malformed token, claims
//! or key file), 4 a token that does not open (wrong keys, another purpose, or modified),
//! 5 a token that opens but fails `--validate`, 1 anything else (I/O, Redis, PostgreSQL). Keys never
//! appear in errors.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use jwe_session_core::{
    Claims, Clock, Enc, Key, KeyError, KeyRing, Lifetimes, OpenError, Revocation, SystemClock,
    TokenOptions, UnixMicros, UnixTime, Validation,
};
use rand::RngCore;
use serde_json::Value;
use zeroize::Zeroizing;

/// Exit codes, one per kind of failure.
mod code {
    pub(crate) const FAILURE: u8 = 1;
    pub(crate) const USAGE: u8 = 2;
    pub(crate) const BAD_INPUT: u8 = 3;
    pub(crate) const DOES_NOT_OPEN: u8 = 4;
    pub(crate) const INVALID: u8 = 5;
}

#[derive(Parser)]
#[command(
    name = "jwe-session",
    version,
    about = "Make and rotate jwe-session key rings; encrypt, decrypt, inspect and revoke session tokens."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print one oct JWK with a fresh random key.
    Keygen(KeygenArgs),
    /// Rotate a key ring file: stage a key, activate it (now or at a moment), retire an old
    /// one; or, without a step, add a new key and make it active at once.
    Rotate(RotateArgs),
    /// Read one claims JSON object from stdin; print one compact JWE.
    Encrypt(EncryptArgs),
    /// Read one compact JWE from stdin; print its claims (no time checks unless --validate).
    Decrypt(DecryptArgs),
    /// Read one compact JWE from stdin; print its header and sizes (no key needed).
    Inspect,
    /// Revoke sessions: through Redis, or in the service's revocation file (running or not).
    Revoke(RevokeArgs),
    /// List a user's live sessions (the session registry), one JSON object a line, oldest
    /// first; end one with `revoke --sid`.
    Sessions(SessionsArgs),
}

#[derive(Clone, Copy, ValueEnum)]
#[allow(clippy::enum_variant_names)] // named as JOSE names them
enum EncArg {
    #[value(name = "A256GCM")]
    A256Gcm,
    #[value(name = "A192GCM")]
    A192Gcm,
    #[value(name = "A128GCM")]
    A128Gcm,
}

impl From<EncArg> for Enc {
    fn from(e: EncArg) -> Self {
        match e {
            EncArg::A256Gcm => Enc::A256Gcm,
            EncArg::A192Gcm => Enc::A192Gcm,
            EncArg::A128Gcm => Enc::A128Gcm,
        }
    }
}

#[derive(Args)]
struct KeygenArgs {
    /// Key id (default: today's UTC date and a random suffix, e.g. 2026-11-29-3fa2).
    #[arg(long)]
    kid: Option<String>,
    /// Content encryption (key size).
    #[arg(long, value_enum, default_value = "A256GCM")]
    enc: EncArg,
    /// Print a JWK Set holding the key instead of the bare JWK.
    #[arg(long)]
    set: bool,
}

#[derive(Args)]
struct RotateArgs {
    /// The JWK Set file to rotate (replaced atomically, mode 0600).
    #[arg(long)]
    keys: PathBuf,
    /// Add a new key that opens tokens but does not seal yet. Stage it on every instance
    /// before activating it anywhere.
    #[arg(long, conflicts_with_all = ["activate", "retire"])]
    stage: bool,
    /// Make KID the key that seals: now, or from --at on.
    #[arg(long, value_name = "KID", conflicts_with = "retire")]
    activate: Option<String>,
    /// With --activate: the moment KID starts sealing, by each instance's own clock: `now`,
    /// Unix seconds, or YYYY-MM-DDTHH:MM:SSZ.
    #[arg(long, value_name = "TIME", requires = "activate")]
    at: Option<String>,
    /// Remove KID from the ring. Refused while tokens it sealed could still be renewed
    /// (from when it stopped sealing and the lifetimes below).
    #[arg(long, value_name = "KID")]
    retire: Option<String>,
    /// With --retire: remove the key even so, ending every session it still holds.
    #[arg(long, requires = "retire")]
    force: bool,
    /// Without a step: how many old keys to keep after the new one.
    #[arg(long, default_value_t = 2, conflicts_with_all = ["stage", "activate", "retire"])]
    keep: usize,
    /// Key id of the new key (default as for keygen).
    #[arg(long, conflicts_with_all = ["activate", "retire"])]
    kid: Option<String>,
    /// Content encryption (key size) of the new key.
    #[arg(long, value_enum, default_value = "A256GCM", conflicts_with_all = ["activate", "retire"])]
    enc: EncArg,
    /// The service's access lifetime (`exp`): seconds, or a number with s, m, h or d.
    #[arg(long, visible_alias = "access-lifetime", value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    access: Duration,
    /// The service's idle lifetime (how long past `exp` a token still renews).
    #[arg(long, visible_alias = "idle-lifetime", value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    idle: Duration,
    /// The service's absolute lifetime (how long a session lasts from its login).
    #[arg(long, visible_alias = "absolute-lifetime", value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    absolute: Duration,
}

impl RotateArgs {
    /// Until when a token sealed at `at` could still be renewed, by the layer's own rule:
    /// its `exp` plus the idle window, never past the absolute lifetime of a session that
    /// began by `at`.
    fn renewable_until(&self, at: UnixTime) -> UnixTime {
        Lifetimes::new(self.access, self.idle, self.absolute).renewable_until(at, at)
    }
}

/// `900`, `90s`, `15m`, `24h`, `7d`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?}: use seconds, or a number with s, m, h or d (e.g. 15m)"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit is one of s, m, h, d")),
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

#[derive(Args)]
struct EncryptArgs {
    /// The JWK Set file.
    #[arg(long)]
    keys: PathBuf,
    /// Seal with this key instead of the active one.
    #[arg(long)]
    kid: Option<String>,
    /// Bind the token to this purpose (the header's typ), e.g. jwe-session/cookie/session.
    #[arg(long)]
    purpose: Option<String>,
}

#[derive(Args)]
struct DecryptArgs {
    /// The JWK Set file.
    #[arg(long)]
    keys: PathBuf,
    /// Also check exp and nbf against the current time.
    #[arg(long)]
    validate: bool,
    /// Print the payload as it is (for tokens whose payload is not a JSON object).
    #[arg(long, conflicts_with = "validate")]
    raw: bool,
    /// Require this purpose (the header's typ).
    #[arg(long)]
    purpose: Option<String>,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["sid", "sids_from", "sub", "all"])))]
#[command(group(clap::ArgGroup::new("target").required(true).args(["redis", "postgres", "file"])))]
struct RevokeArgs {
    /// Redis URL, e.g. redis://127.0.0.1:6379/ (rediss:// for TLS); with --cluster, one or
    /// more cluster nodes, comma-separated.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// PostgreSQL URL of the service's database, e.g. postgres://user:pass@host/db
    /// (`?sslmode=verify-full` for TLS).
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Schema of the service's PostgreSQL store: what the app passes to `.schema(..)`
    /// [default: jwe_session].
    #[arg(long, value_name = "S", requires = "postgres")]
    schema: Option<String>,
    /// The service's revocation file (its FileStore, e.g. the demo's
    /// JWE_SESSION_REVOCATIONS): written directly when no process has it open, else handed
    /// to the running service through the spool folder beside it.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// With --file: how long to wait for the running service to make it durable, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, requires = "file")]
    wait: u64,
    /// Write even where no service reads yet: a --prefix no service has connected with, a
    /// --schema no service has created (created), or a --file that does not exist
    /// (created). Without it, such a revocation is refused, since it would protect nothing.
    #[arg(long)]
    force: bool,
    /// The URL names nodes of a Redis Cluster.
    #[arg(long, requires = "redis", conflicts_with = "file")]
    cluster: bool,
    /// PEM file of CA certificates to trust for rediss:// instead of the system's.
    #[arg(long, value_name = "FILE", requires = "redis", conflicts_with = "file")]
    ca_file: Option<PathBuf>,
    /// Revoke one session (logout).
    #[arg(long)]
    sid: Option<String>,
    /// Revoke many sessions: one sid a line (blank lines skipped), `-` for stdin. Sent
    /// pipelined; prints how many.
    #[arg(long, value_name = "FILE")]
    sids_from: Option<PathBuf>,
    /// Revoke every session of this subject begun at or before --before.
    #[arg(long)]
    sub: Option<String>,
    /// Revoke every session begun at or before --before.
    #[arg(long)]
    all: bool,
    /// With --sub: refresh that subject's claims instead of revoking. Its tokens issued at
    /// or before --before are not refused but renewed on their next request (the
    /// service's renew hook gives the new claims).
    #[arg(long, requires = "sub", conflicts_with_all = ["sid", "sids_from", "all"])]
    refresh: bool,
    /// Cut-off for --sub/--all, inclusive: `now` (default, to the microsecond), Unix
    /// seconds, or YYYY-MM-DDTHH:MM:SSZ.
    #[arg(long, conflicts_with_all = ["sid", "sids_from"])]
    before: Option<String>,
    /// The service's absolute session lifetime in seconds: how long the revocation must be
    /// kept (plus the grace period the layer adds, `REVOCATION_GRACE`: a minute).
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    lifetime: u64,
    /// The service's access lifetime in seconds (its tokens' `exp`): how long a --refresh
    /// must be kept; after it every token issued before renews anyway.
    #[arg(long, default_value_t = 15 * 60, requires = "refresh")]
    access_lifetime: u64,
    /// Key prefix of the service's store: what the app passes to `.prefix(..)`
    /// [default: jwe-session:].
    #[arg(long, requires = "redis", conflicts_with = "file")]
    prefix: Option<String>,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["redis", "postgres", "file"])))]
struct SessionsArgs {
    /// Redis URL (rediss:// for TLS); with --cluster, cluster nodes, comma-separated.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// PostgreSQL URL of the service's database (`?sslmode=verify-full` for TLS).
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Schema of the service's PostgreSQL store [default: jwe_session].
    #[arg(long, value_name = "S", requires = "postgres")]
    schema: Option<String>,
    /// The service's revocation file (its FileStore): read directly when no process has it
    /// open, else asked of the running service through the spool folder beside it.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// With --file: how long to wait for the running service's answer, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, requires = "file")]
    wait: u64,
    /// The URL names nodes of a Redis Cluster.
    #[arg(long, requires = "redis", conflicts_with = "file")]
    cluster: bool,
    /// PEM file of CA certificates to trust for rediss:// instead of the system's.
    #[arg(long, value_name = "FILE", requires = "redis", conflicts_with = "file")]
    ca_file: Option<PathBuf>,
    /// Key prefix of the service's store [default: jwe-session:].
    #[arg(long, requires = "redis", conflicts_with = "file")]
    prefix: Option<String>,
    /// Whose sessions.
    #[arg(long, value_name = "U")]
    sub: String,
}

/// A failure: one line for stderr and an exit code.
struct Fail {
    code: u8,
    message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Fail {
    Fail {
        code,
        message: message.into(),
    }
}

type Out = Result<String, Fail>;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                print!("{e}");
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                eprintln!("error: no command given (see 'jwe-session --help')");
                return ExitCode::from(code::USAGE);
            }
            // clap's message, on one line: everything before its usage block.
            let text = e.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("{} (see 'jwe-session --help')", message.join(" "));
            return ExitCode::from(code::USAGE);
        }
    };
    let result = match cli.cmd {
        Cmd::Keygen(a) => keygen(&a),
        Cmd::Rotate(a) => rotate(&a),
        Cmd::Encrypt(a) => encrypt(&a),
        Cmd::Decrypt(a) => decrypt(&a),
        Cmd::Inspect => inspect(),
        Cmd::Revoke(a) => revoke(&a),
        Cmd::Sessions(a) => sessions(&a),
    };
    match result {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::from(code::FAILURE);
            }
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn default_kid() -> String {
    let (y, m, d) = civil_from_days(UnixTime::now().as_secs() / 86_400);
    let mut suffix = [0u8; 2];
    rand::rngs::OsRng.fill_bytes(&mut suffix);
    format!("{y:04}-{m:02}-{d:02}-{:04x}", u16::from_be_bytes(suffix))
}

fn new_key(kid: Option<&str>, enc: EncArg) -> Result<Key, Fail> {
    let kid = kid.map_or_else(default_kid, str::to_owned);
    Key::generate(&kid, enc.into()).map_err(|e| fail(code::BAD_INPUT, e.to_string()))
}

fn keygen(a: &KeygenArgs) -> Out {
    let key = new_key(a.kid.as_deref(), a.enc)?;
    let jwk = key.to_jwk_secret();
    Ok(if a.set {
        format!("{{\"keys\":[{}]}}\n", *jwk)
    } else {
        format!("{}\n", *jwk)
    })
}

fn no_stdin_keys(path: &Path) -> Result<(), Fail> {
    if path == Path::new("-") {
        return Err(fail(
            code::USAGE,
            "--keys - is not available here: stdin carries the token or claims; \
             pass the key set as a file, e.g. --keys <(printf %s \"$JWE_SESSION_KEYS\")",
        ));
    }
    Ok(())
}

fn load_ring(path: &Path) -> Result<KeyRing, Fail> {
    no_stdin_keys(path)?;
    KeyRing::from_file(path).map_err(|e| match e {
        KeyError::Io { .. } => fail(code::FAILURE, format!("{e}: {}", io_reason(&e))),
        e => fail(code::BAD_INPUT, format!("{}: {e}", path.display())),
    })
}

fn io_reason(e: &KeyError) -> String {
    std::error::Error::source(e)
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Reads stdin whole, trimmed; it must hold something.
fn read_stdin(what: &str) -> Result<Zeroizing<String>, Fail> {
    let mut s = Zeroizing::new(String::new());
    std::io::stdin().read_to_string(&mut s).map_err(|e| {
        fail(
            code::BAD_INPUT,
            format!("could not read stdin as UTF-8: {e}"),
        )
    })?;
    let trimmed = Zeroizing::new(s.trim().to_owned());
    if trimmed.is_empty() {
        return Err(fail(
            code::BAD_INPUT,
            format!("stdin is empty: pipe in {what}"),
        ));
    }
    Ok(trimmed)
}

fn read_token() -> Result<Zeroizing<String>, Fail> {
    let t = read_stdin("one compact JWE")?;
    if t.contains(char::is_whitespace) {
        return Err(fail(
            code::BAD_INPUT,
            "stdin holds more than one item: pipe in exactly one token",
        ));
    }
    Ok(t)
}

fn encrypt(a: &EncryptArgs) -> Out {
    let ring = load_ring(&a.keys)?;
    let claims = read_stdin("one claims JSON object")?;
    // One JSON value and nothing after it, and an object.
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&claims) {
        return Err(fail(
            code::BAD_INPUT,
            format!(
                "stdin is not one JSON object (line {}, column {})",
                e.line(),
                e.column()
            ),
        ));
    }
    if !claims.starts_with('{') {
        return Err(fail(
            code::BAD_INPUT,
            "stdin is JSON but not an object: claims are {\"name\": value, ...}",
        ));
    }
    let mut opts = TokenOptions::new();
    if let Some(p) = &a.purpose {
        opts = opts.with_purpose(p.clone());
    }
    let kid = a
        .kid
        .clone()
        .unwrap_or_else(|| ring.active().kid().to_owned());
    let token = ring
        .seal_bytes_with_kid(&kid, claims.as_bytes(), &opts)
        .map_err(|e| fail(code::BAD_INPUT, e.to_string()))?;
    Ok(format!("{}\n", token.as_str()))
}

fn open_error(e: &OpenError) -> Fail {
    let code = match e {
        OpenError::UnknownKid { .. }
        | OpenError::EncMismatch { .. }
        | OpenError::PurposeMismatch { .. }
        | OpenError::Decrypt => code::DOES_NOT_OPEN,
        _ => code::BAD_INPUT,
    };
    let hint = match e {
        OpenError::Decrypt => ": wrong key ring, or the token was modified",
        OpenError::UnknownKid { .. } => ": the key ring does not have the key that sealed it",
        OpenError::PurposeMismatch { .. } => ": pass the token's purpose with --purpose",
        OpenError::ClaimsNotObject => "; use --raw to print it as it is",
        _ => "",
    };
    fail(code, format!("{e}{hint}"))
}

fn decrypt(a: &DecryptArgs) -> Out {
    let ring = load_ring(&a.keys)?;
    let token = read_token()?;
    let mut opts = TokenOptions::new();
    if let Some(p) = &a.purpose {
        opts = opts.with_purpose(p.clone());
    }
    let opened = ring.open_bytes(&token, &opts).map_err(|e| open_error(&e))?;
    let payload = opened.payload();
    if a.raw {
        let text = std::str::from_utf8(payload)
            .map_err(|_| fail(code::BAD_INPUT, "payload is not UTF-8 text"))?;
        return Ok(format!("{text}\n"));
    }
    let claims: Claims<serde_json::Map<String, serde_json::Value>> =
        jwe_session_core::parse_claims(payload).map_err(|e| open_error(&e))?;
    if a.validate {
        Validation::new().validate(&claims).map_err(|e| {
            fail(
                code::INVALID,
                format!("token opens but is not valid now: {e}"),
            )
        })?;
    }
    let text =
        std::str::from_utf8(payload).map_err(|_| fail(code::BAD_INPUT, "payload is not UTF-8"))?;
    Ok(format!("{}\n", text.trim()))
}

fn inspect() -> Out {
    let token = read_token()?;
    let info =
        jwe_session_core::inspect(&token, &TokenOptions::new()).map_err(|e| open_error(&e))?;
    let out = serde_json::json!({
        "header": info.header,
        "sizes": {
            "token": token.len(),
            "protected_header": info.header_len,
            "encrypted_key": 0,
            "iv": info.iv_len,
            "ciphertext": info.ciphertext_len,
            "tag": info.tag_len,
        },
        "note": "the payload is encrypted; `jwe-session decrypt --keys FILE` opens it",
    });
    let mut s =
        serde_json::to_string_pretty(&out).map_err(|e| fail(code::FAILURE, e.to_string()))?;
    s.push('\n');
    Ok(s)
}

fn rotate(a: &RotateArgs) -> Out {
    no_stdin_keys(&a.keys)?;
    let now = UnixTime::now();
    let at = match a.at.as_deref() {
        None => None,
        Some(t) => Some(parse_time(t, now).ok_or_else(|| {
            fail(
                code::USAGE,
                format!("--at {t:?}: use now, Unix seconds, or YYYY-MM-DDTHH:MM:SSZ"),
            )
        })?),
    };
    let (keys, named) = settle(load_ring(&a.keys)?, now);
    let (ring, mut summary) = if a.stage {
        stage(a, keys, &named)?
    } else if let Some(kid) = &a.activate {
        activate(keys, &named, kid, at.filter(|t| *t > now), now)?
    } else if let Some(kid) = &a.retire {
        retire(a, keys, &named, kid, now)?
    } else {
        return rotate_at_once(a, keys, &named, now);
    };
    write_ring(&a.keys, &ring)?;
    summary["keys"] = key_states(a, &ring, now);
    Ok(format!("{summary}\n"))
}

/// The ring's keys with every scheduled moment already past applied: the key that took
/// over is named active and the one before it records when it stopped sealing. Returns
/// the keys and the kid named active.
fn settle(ring: KeyRing, now: UnixTime) -> (Vec<Key>, String) {
    let mut named = ring.named_active().kid().to_owned();
    let due: Vec<(UnixTime, String)> = ring
        .schedule()
        .filter(|(at, _)| *at <= now)
        .map(|(at, k)| (at, k.kid().to_owned()))
        .collect();
    let mut keys = ring.into_keys();
    for (at, kid) in due {
        if kid != named {
            keys = edit(keys, &named, |k| k.with_sealed_until(Some(at)));
        }
        keys = edit(keys, &kid, |k| {
            k.with_seals_from(None).with_sealed_until(None)
        });
        named = kid;
    }
    (keys, named)
}

/// `keys` with the key named `kid` passed through `f`.
fn edit(keys: Vec<Key>, kid: &str, f: impl Fn(Key) -> Key) -> Vec<Key> {
    keys.into_iter()
        .map(|k| if k.kid() == kid { f(k) } else { k })
        .collect()
}

fn build_ring(keys: Vec<Key>, named: &str) -> Result<KeyRing, Fail> {
    KeyRing::new(keys, Some(named)).map_err(|e| fail(code::BAD_INPUT, e.to_string()))
}

fn write_ring(path: &Path, ring: &KeyRing) -> Result<(), Fail> {
    write_atomically(path, ring.to_jwks_secret().as_bytes()).map_err(|e| {
        fail(
            code::FAILURE,
            format!("could not replace {}: {e}", path.display()),
        )
    })
}

fn find_key<'k>(keys: &'k [Key], kid: &str) -> Result<&'k Key, Fail> {
    keys.iter().find(|k| k.kid() == kid).ok_or_else(|| {
        fail(
            code::BAD_INPUT,
            format!("kid {kid:?} is not in the key set"),
        )
    })
}

/// The new key of `--kid`/`--enc`, whose kid none of `keys` has.
fn key_beside(a: &RotateArgs, keys: &[Key]) -> Result<Key, Fail> {
    let new = new_key(a.kid.as_deref(), a.enc)?;
    if keys.iter().any(|k| k.kid() == new.kid()) {
        return Err(fail(
            code::BAD_INPUT,
            format!(
                "kid {:?} is already in the ring; pick another --kid",
                new.kid()
            ),
        ));
    }
    Ok(new)
}

/// A new key that opens but does not seal, after the others.
fn stage(a: &RotateArgs, mut keys: Vec<Key>, named: &str) -> Result<(KeyRing, Value), Fail> {
    let new = key_beside(a, &keys)?;
    let kid = new.kid().to_owned();
    let enc = new.enc();
    keys.push(new);
    let ring = build_ring(keys, named)?;
    let summary = serde_json::json!({
        "staged": kid, "enc": enc.as_str(), "active_kid": named,
    });
    Ok((ring, summary))
}

/// `kid` seals from now (`at` is `None`) or from the future moment `at`.
fn activate(
    keys: Vec<Key>,
    named: &str,
    kid: &str,
    at: Option<UnixTime>,
    now: UnixTime,
) -> Result<(KeyRing, Value), Fail> {
    let key = find_key(&keys, kid)?;
    if !key.can_seal() {
        return Err(fail(
            code::BAD_INPUT,
            format!("key {kid:?} is decrypt-only (key_ops); it cannot seal"),
        ));
    }
    if let Some(at) = at {
        if kid == named {
            return Err(fail(
                code::BAD_INPUT,
                format!("key {kid:?} already seals; nothing to schedule"),
            ));
        }
        let keys = edit(keys, kid, |k| {
            k.with_seals_from(Some(at)).with_sealed_until(None)
        });
        let ring = build_ring(keys, named)?;
        let summary = serde_json::json!({
            "scheduled": kid, "at": at.as_secs(), "at_utc": utc(at), "active_kid": named,
        });
        return Ok((ring, summary));
    }
    let keys = if kid == named {
        keys
    } else {
        let keys = edit(keys, named, |k| k.with_sealed_until(Some(now)));
        edit(keys, kid, |k| {
            k.with_seals_from(None).with_sealed_until(None)
        })
    };
    let ring = build_ring(keys, kid)?;
    let summary = serde_json::json!({
        "active_kid": kid, "previous": named, "at": now.as_secs(), "at_utc": utc(now),
    });
    Ok((ring, summary))
}

/// Removes `kid`, if nothing it sealed can still be renewed (or with --force).
fn retire(
    a: &RotateArgs,
    keys: Vec<Key>,
    named: &str,
    kid: &str,
    now: UnixTime,
) -> Result<(KeyRing, Value), Fail> {
    let key = find_key(&keys, kid)?;
    if kid == named {
        return Err(fail(
            code::BAD_INPUT,
            format!("key {kid:?} seals now; activate another key first"),
        ));
    }
    let scheduled = key.seals_from().is_some_and(|at| at > now);
    if !scheduled && !a.force {
        match key.sealed_until() {
            Some(stopped) => {
                let until = a.renewable_until(stopped);
                if now < until {
                    return Err(fail(
                        code::FAILURE,
                        format!(
                            "not retiring {kid:?}: it stopped sealing at {}; tokens it sealed can be \
                             renewed until {} ({}s access + {}s idle, at most {}s absolute); \
                             retire it after then, or pass --force to end those sessions now",
                            utc(stopped),
                            utc(until),
                            a.access.as_secs(),
                            a.idle.as_secs(),
                            a.absolute.as_secs()
                        ),
                    ));
                }
            }
            None => {
                return Err(fail(
                    code::FAILURE,
                    format!(
                        "not retiring {kid:?}: the key set has no record of when it stopped sealing \
                         (sealed_until; key sets from before staged rotation, or edited by hand, \
                         lack it); pass --force if nothing it sealed can still be renewed, as for \
                         a staged key that never sealed"
                    ),
                ));
            }
        }
    }
    let keys: Vec<Key> = keys.into_iter().filter(|k| k.kid() != kid).collect();
    let ring = build_ring(keys, named)?;
    let summary = serde_json::json!({"retired": kid, "forced": a.force, "active_kid": named});
    Ok((ring, summary))
}

/// Plain `rotate`: a new key, active at once, first; keeps `--keep` old keys.
fn rotate_at_once(a: &RotateArgs, keys: Vec<Key>, named: &str, now: UnixTime) -> Out {
    let new = key_beside(a, &keys)?;
    let new_kid = new.kid().to_owned();
    // Old keys, the previously active one first, then the rest in file order.
    let keys = edit(keys, named, |k| k.with_sealed_until(Some(now)));
    let (active, rest): (Vec<Key>, Vec<Key>) = keys.into_iter().partition(|k| k.kid() == named);
    let old: Vec<Key> = active.into_iter().chain(rest).collect();
    let kept: Vec<String> = old
        .iter()
        .take(a.keep)
        .map(|k| k.kid().to_owned())
        .collect();
    let dropped: Vec<String> = old
        .iter()
        .skip(a.keep)
        .map(|k| k.kid().to_owned())
        .collect();
    let ring = build_ring(
        std::iter::once(new)
            .chain(old.into_iter().take(a.keep))
            .collect(),
        &new_kid,
    )?;
    write_ring(&a.keys, &ring)?;
    eprintln!(
        "warning: the new key {new_kid:?} seals at once; on a fleet, an instance that has not \
         loaded it yet cannot open the cookies it seals. Stage first: rotate --stage, roll the \
         file out, then rotate --activate KID --at TIME"
    );
    let summary = serde_json::json!({ "active_kid": new_kid, "kept": kept, "dropped": dropped });
    Ok(format!("{summary}\n"))
}

/// Each key of the ring and where it stands at `now`.
fn key_states(a: &RotateArgs, ring: &KeyRing, now: UnixTime) -> Value {
    let active = ring.active_at(now).kid();
    let named = ring.named_active();
    // In the file's order: the named active key first.
    let states: Vec<Value> = std::iter::once(named)
        .chain(ring.keys().iter().filter(|k| k.kid() != named.kid()))
        .map(|k| {
            let mut v = serde_json::json!({"kid": k.kid(), "enc": k.enc().as_str()});
            if k.kid() == active {
                v["state"] = "active".into();
            } else if let Some(at) = k.seals_from().filter(|at| *at > now) {
                v["state"] = "scheduled".into();
                v["seals_from"] = at.as_secs().into();
            } else if let Some(stopped) = k.sealed_until() {
                let until = a.renewable_until(stopped);
                v["state"] = if now < until { "retiring" } else { "retirable" }.into();
                v["sealed_until"] = stopped.as_secs().into();
                v["renewable_until"] = until.as_secs().into();
            } else {
                // Staged, or a key whose end of sealing was never recorded.
                v["state"] = "opens".into();
            }
            v
        })
        .collect();
    Value::Array(states)
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(t: UnixTime) -> String {
    let s = t.as_secs();
    let (y, m, d) = civil_from_days(s / 86_400);
    let r = s % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        r / 3600,
        r / 60 % 60,
        r % 60
    )
}

/// Replaces `path` with `bytes`: a temporary file in the same folder, mode 0600, synced,
/// then renamed over the original, and the folder synced.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("keys");
    let mut suffix = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut suffix);
    let tmp = dir.join(format!(
        ".{name}.tmp-{}",
        suffix.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn revoke(a: &RevokeArgs) -> Out {
    // The same rule as the session layer's: sessions begun at or before this moment, to the
    // microsecond (`now`), or from the first microsecond of a given second.
    let now_us = SystemClock.now_micros();
    let now = now_us.secs();
    let lifetime = Duration::from_secs(a.lifetime);
    let at = match a.before.as_deref() {
        None | Some("now") => now_us,
        Some(t) => parse_time(t, now).map(UnixMicros::from).ok_or_else(|| {
            fail(
                code::USAGE,
                format!("--before {t:?}: use now, Unix seconds, or YYYY-MM-DDTHH:MM:SSZ"),
            )
        })?,
    };
    // The layer's rules, from the core: a session could have begun as late as now and
    // could be renewed up to its absolute lifetime (the idle timeout is not known here, so
    // the longest it could be); each kept a grace period past that.
    let lifetimes = Lifetimes::new(Duration::from_secs(a.access_lifetime), lifetime, lifetime);
    let session = |sid: String| Revocation::session(sid, None, now, &lifetimes);
    let revocations = match (&a.sid, &a.sids_from, &a.sub) {
        (Some(sid), _, _) => vec![session(sid.clone())],
        (None, Some(from), _) => read_sids(from)?.into_iter().map(session).collect(),
        (None, None, Some(sub)) if a.refresh => {
            vec![Revocation::tokens(sub.clone(), at, &lifetimes)]
        }
        (None, None, Some(sub)) => vec![Revocation::subject(sub.clone(), at, &lifetimes)],
        (None, None, None) => vec![Revocation::everyone(at, &lifetimes)],
    };
    let session_until = session(String::new()).until();
    match (&a.redis, &a.postgres, &a.file) {
        (_, _, Some(path)) => revoke_in_file(a, path, &revocations)?,
        (_, Some(url), None) => revoke_in_postgres(a, url, &revocations, now)?,
        (Some(url), None, None) => revoke_in_redis(a, url, &revocations)?,
        (None, None, None) => {
            return Err(fail(
                code::USAGE,
                "give --redis URL, --postgres URL or --file PATH",
            ))
        }
    }
    let summary = match (&a.sids_from, revocations.first()) {
        (Some(_), _) => serde_json::json!({
            "revoked": "sessions", "count": revocations.len(), "until": session_until,
        }),
        (None, Some(Revocation::Session { sid, until })) => {
            serde_json::json!({"revoked": "session", "sid": sid, "until": until})
        }
        // `before` stays whole seconds as before d92def7; `before_us` is the exact cut-off.
        (None, Some(Revocation::Subject { sub, at, until })) => serde_json::json!({
            "revoked": "subject", "sub": sub, "before": at.secs(),
            "before_us": at.as_micros(), "until": until,
        }),
        (None, Some(Revocation::Tokens { sub, at, until })) => serde_json::json!({
            "revoked": "refresh", "sub": sub, "before": at.secs(),
            "before_us": at.as_micros(), "until": until,
        }),
        (None, Some(Revocation::All { at, until })) => serde_json::json!({
            "revoked": "all", "before": at.secs(), "before_us": at.as_micros(), "until": until,
        }),
        // Every scope gives one revocation; `--sids-from` is the only way to none.
        (None, None) => serde_json::json!({}),
    };
    Ok(format!("{summary}\n"))
}

/// Records `revocations` in the service's revocation file, refusing a path no service uses
/// unless `--force`.
fn revoke_in_file(a: &RevokeArgs, path: &Path, revocations: &[Revocation]) -> Result<(), Fail> {
    let wait = Duration::from_secs(a.wait);
    jwe_session_file::deliver(path, revocations, wait, a.force)
        .map(|_| ())
        .map_err(|e| fail(code::FAILURE, e.to_string()))
}

/// Records `revocations` through Redis, refusing a prefix no service has connected with
/// unless `--force`.
fn revoke_in_redis(a: &RevokeArgs, url: &str, revocations: &[Revocation]) -> Result<(), Fail> {
    let target = RedisTarget {
        url,
        cluster: a.cluster,
        ca_file: a.ca_file.as_deref(),
        prefix: a.prefix.as_deref(),
        nothing: "nothing was revoked",
    };
    let (runtime, builder) = target.connect()?;
    let prefix = target.prefix();
    runtime.block_on(async {
        let builder = builder();
        // A writer: no mirror to load, so the command starts at once whatever is stored.
        let writer = builder
            .connect_writer()
            .await
            .map_err(|e| fail(code::FAILURE, format!("{e}; nothing was revoked")))?;
        let serving = writer
            .serving()
            .await
            .map_err(|e| fail(code::FAILURE, format!("{e}; nothing was revoked")))?;
        if !serving && !a.force {
            return Err(fail(
                code::FAILURE,
                format!(
                    "no service uses prefix {:?} on this Redis (its key {{{}}}epoch does not \
                     exist), so nothing was revoked: pass the app's .prefix(..) as --prefix, \
                     or --force to write under a prefix no service has used yet",
                    prefix, prefix
                ),
            ));
        }
        writer.revoke_batch(revocations).await.map_err(|e| {
            fail(
                code::FAILURE,
                format!("{e}; it may be recorded in part: running the command again is safe"),
            )
        })
    })?;
    Ok(())
}

fn sessions(a: &SessionsArgs) -> Out {
    let now = SystemClock.now();
    let records = match (&a.redis, &a.postgres, &a.file) {
        (_, _, Some(path)) => {
            jwe_session_file::sessions_of(path, &a.sub, Duration::from_secs(a.wait))
                .map_err(|e| fail(code::FAILURE, e.to_string()))?
        }
        (_, Some(url), None) => sessions_in_postgres(a, url, now)?,
        (Some(url), None, None) => sessions_in_redis(a, url, now)?,
        (None, None, None) => {
            return Err(fail(
                code::USAGE,
                "give --redis URL, --postgres URL or --file PATH",
            ))
        }
    };
    let mut out = String::new();
    for r in records {
        let line = serde_json::json!({
            "sid": r.sid,
            "sub": r.sub,
            "started": r.started_secs(),
            "renewed": r.renewed,
            "bound": r.binding.label(),
            "label": r.label,
            "network": r.network,
            "until": r.until,
        });
        let _ = writeln!(out, "{line}");
    }
    Ok(out)
}

/// The runtime a store command runs on: one thread, as a command needs no more.
fn command_runtime() -> Result<tokio::runtime::Runtime, Fail> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            fail(
                code::FAILURE,
                format!("could not start the async runtime: {e}"),
            )
        })
}

/// Where a Redis command goes: the URL (or cluster nodes), the CA to trust, the prefix.
struct RedisTarget<'a> {
    url: &'a str,
    cluster: bool,
    ca_file: Option<&'a Path>,
    prefix: Option<&'a str>,
    /// What the error messages say was not done ("nothing was revoked").
    nothing: &'static str,
}

impl RedisTarget<'_> {
    fn prefix(&self) -> &str {
        self.prefix.unwrap_or(jwe_session_redis::DEFAULT_PREFIX)
    }

    /// A runtime for the command, and a maker of store builders for this target (a 2 s
    /// timeout, the prefix, the CA).
    fn connect(
        &self,
    ) -> Result<
        (
            tokio::runtime::Runtime,
            impl Fn() -> jwe_session_redis::RedisStoreBuilder + '_,
        ),
        Fail,
    > {
        let ca = match self.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                fail(
                    code::FAILURE,
                    format!("--ca-file {}: {e}; {}", path.display(), self.nothing),
                )
            })?),
            None => None,
        };
        let runtime = command_runtime()?;
        let builder = move || {
            let b = if self.cluster {
                jwe_session_redis::RedisStore::cluster_builder(self.url.split(',').map(str::trim))
            } else {
                jwe_session_redis::RedisStore::builder(self.url.to_owned())
            };
            let b = match &ca {
                Some(pem) => b.tls_root_certificates(pem.clone()),
                None => b,
            };
            b.prefix(self.prefix()).timeout(Duration::from_secs(2))
        };
        Ok((runtime, builder))
    }
}

/// Where a PostgreSQL command goes: the URL and the schema.
struct PgTarget<'a> {
    url: &'a str,
    schema: Option<&'a str>,
    /// What the error messages say was not done ("nothing was revoked").
    nothing: &'static str,
}

impl PgTarget<'_> {
    fn schema(&self) -> &str {
        self.schema.unwrap_or(jwe_session_postgres::DEFAULT_SCHEMA)
    }

    /// A runtime for the command and a pool on the URL (a 10 s timeout on connecting).
    /// Errors never quote the URL, which may carry a password.
    fn connect(&self) -> Result<(tokio::runtime::Runtime, jwe_session_postgres::PgPool), Fail> {
        let runtime = command_runtime()?;
        let pool = runtime
            .block_on(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(self.url),
            )
            .map_err(|e| fail(code::FAILURE, format!("--postgres: {e}; {}", self.nothing)))?;
        Ok((runtime, pool))
    }

    fn builder(&self, pool: jwe_session_postgres::PgPool) -> jwe_session_postgres::PgStoreBuilder {
        jwe_session_postgres::PgStore::builder(pool)
            .schema(self.schema())
            .timeout(Duration::from_secs(10))
    }

    fn not_served(&self) -> String {
        let schema = self.schema();
        format!(
            "no service uses schema {schema:?} in this database (its table {schema}.meta does \
             not exist), so {}: pass the app's .schema(..) as --schema",
            self.nothing
        )
    }
}

/// Records `revocations` through PostgreSQL, refusing a schema no service has created
/// unless `--force` (which creates it).
fn revoke_in_postgres(
    a: &RevokeArgs,
    url: &str,
    revocations: &[Revocation],
    now: UnixTime,
) -> Result<(), Fail> {
    let target = PgTarget {
        url,
        schema: a.schema.as_deref(),
        nothing: "nothing was revoked",
    };
    let (runtime, pool) = target.connect()?;
    runtime.block_on(async {
        let failed = |e: jwe_session_postgres::BackendError| {
            fail(code::FAILURE, format!("{e}; nothing was revoked"))
        };
        let writer = target
            .builder(pool.clone())
            .connect_writer()
            .await
            .map_err(failed)?;
        if !writer.serving().await.map_err(failed)? {
            if !a.force {
                return Err(fail(
                    code::FAILURE,
                    format!("{}, or --force to create it", target.not_served()),
                ));
            }
            jwe_session_postgres::migrate(&pool, target.schema())
                .await
                .map_err(failed)?;
        }
        writer.revoke_batch(revocations, now).await.map_err(|e| {
            fail(
                code::FAILURE,
                format!("{e}; it may be recorded in part: running the command again is safe"),
            )
        })
    })?;
    Ok(())
}

/// A user's live sessions through PostgreSQL, refusing a schema no service has created.
fn sessions_in_postgres(
    a: &SessionsArgs,
    url: &str,
    now: UnixTime,
) -> Result<Vec<jwe_session_core::SessionRecord>, Fail> {
    use jwe_session_core::RevocationStore as _;
    let target = PgTarget {
        url,
        schema: a.schema.as_deref(),
        nothing: "nothing was listed",
    };
    let (runtime, pool) = target.connect()?;
    runtime.block_on(async {
        let writer = target
            .builder(pool.clone())
            .connect_writer()
            .await
            .map_err(|e| fail(code::FAILURE, e.to_string()))?;
        if !writer
            .serving()
            .await
            .map_err(|e| fail(code::FAILURE, e.to_string()))?
        {
            return Err(fail(code::FAILURE, target.not_served()));
        }
        // A reader with the shortest window and no listener: it asks the table about each
        // session itself, and never creates or changes the schema.
        let store = target
            .builder(pool)
            .migrate(false)
            .listen(false)
            .mirror_window(Duration::from_secs(1))
            .connect()
            .await
            .map_err(|e| fail(code::FAILURE, e.to_string()))?;
        store
            .sessions_of(&a.sub, now)
            .await
            .map_err(|e| fail(code::FAILURE, e.to_string()))
    })
}

/// A user's live sessions through Redis, refusing a prefix no service has connected with.
fn sessions_in_redis(
    a: &SessionsArgs,
    url: &str,
    now: UnixTime,
) -> Result<Vec<jwe_session_core::SessionRecord>, Fail> {
    use jwe_session_core::RevocationStore as _;
    let target = RedisTarget {
        url,
        cluster: a.cluster,
        ca_file: a.ca_file.as_deref(),
        prefix: a.prefix.as_deref(),
        nothing: "nothing was listed",
    };
    let (runtime, builder) = target.connect()?;
    let prefix = target.prefix();
    runtime.block_on(async {
        let writer = builder()
            .connect_writer()
            .await
            .map_err(|e| fail(code::FAILURE, e.to_string()))?;
        if !writer
            .serving()
            .await
            .map_err(|e| fail(code::FAILURE, e.to_string()))?
        {
            return Err(fail(
                code::FAILURE,
                format!(
                    "no service uses prefix {prefix:?} on this Redis (its key {{{prefix}}}epoch \
                     does not exist): pass the app's .prefix(..) as --prefix"
                ),
            ));
        }
        // A reader with the shortest window: it asks Redis about each session itself.
        let store = builder()
            .mirror_window(Duration::from_secs(1))
            .connect()
            .await
            .map_err(|e| fail(code::FAILURE, e.to_string()))?;
        store
            .sessions_of(&a.sub, now)
            .await
            .map_err(|e| fail(code::FAILURE, e.to_string()))
    })
}

/// The sids of `--sids-from`: one a line, surrounding whitespace trimmed, blank lines
/// skipped; `-` reads stdin.
fn read_sids(from: &Path) -> Result<Vec<String>, Fail> {
    let text = if from == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map(|_| s)
            .map_err(|e| fail(code::BAD_INPUT, format!("--sids-from -: {e}")))?
    } else {
        std::fs::read_to_string(from).map_err(|e| {
            fail(
                code::BAD_INPUT,
                format!("--sids-from {}: {e}", from.display()),
            )
        })?
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// `now`, Unix seconds, or `YYYY-MM-DDTHH:MM:SSZ` (UTC).
fn parse_time(s: &str, now: UnixTime) -> Option<UnixTime> {
    if s == "now" {
        return Some(now);
    }
    if let Ok(n) = s.parse::<u64>() {
        return Some(UnixTime::from_secs(n));
    }
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 || y < 1970
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    if civil_from_days(days) != (y, mo, d) {
        return None; // 31 February and friends
    }
    Some(UnixTime::from_secs(days * 86_400 + h * 3600 + mi * 60 + se))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: u64) -> (u64, u64, u64) {
    let z = z + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_786), (2026, 11, 29));
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        let now = UnixTime::from_secs(5);
        assert_eq!(parse_time("now", now), Some(now));
        assert_eq!(
            parse_time("1800000000", now),
            Some(UnixTime::from_secs(1_800_000_000))
        );
        assert_eq!(
            parse_time("2027-01-15T08:00:00Z", now),
            Some(UnixTime::from_secs(1_799_999_200 + 800))
        );
        for bad in [
            "2027-02-30T00:00:00Z",
            "2027-01-15 08:00:00Z",
            "2027-13-01T00:00:00Z",
            "soon",
            "-5",
            "",
        ] {
            assert_eq!(parse_time(bad, now), None, "{bad}");
        }
    }
}
