//! Harness for the end-to-end tests: servers on free loopback ports, and an HTTP client
//! with a cookie jar that keeps what servers set and shows every `Set-Cookie`.
#![forbid(unsafe_code)]
#![allow(clippy::missing_panics_doc, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use cookie::Cookie;
use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running on `127.0.0.1:<free port>`, shut down on drop.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `router` on a free loopback port.
    pub async fn start(router: Router) -> Self {
        Self::start_on("127.0.0.1:0", router).await
    }

    /// Serves `router` on `bind` (e.g. `127.0.0.2:0`).
    pub async fn start_on(bind: &str, router: Router) -> Self {
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// One response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as text.
    pub body: String,
    /// Every `Set-Cookie`, parsed.
    pub set_cookies: Vec<Cookie<'static>>,
}

impl Reply {
    /// The `Set-Cookie` for `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<&Cookie<'static>> {
        self.set_cookies.iter().find(|c| c.name() == name)
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// An HTTP client with a cookie jar. Redirects are not followed, so tests see each
/// response's status and cookies.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// Cookies by name, as the server last set them.
    pub jar: BTreeMap<String, String>,
}

impl Client {
    /// A client for `server` with an empty jar.
    pub fn new(base: impl Into<String>) -> Self {
        Self::with(reqwest::Client::builder(), base)
    }

    /// A client for an HTTPS `server` whose certificate `ca_pem` (PEM) signed, with an
    /// empty jar.
    pub fn https(base: impl Into<String>, ca_pem: &str) -> Self {
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
        let builder = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca);
        Self::with(builder, base)
    }

    /// A client from `builder`, redirects not followed, with an empty jar.
    fn with(builder: reqwest::ClientBuilder, base: impl Into<String>) -> Self {
        let http = builder
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            base: base.into(),
            jar: BTreeMap::new(),
        }
    }

    /// A request to `path`, for [`send`](Self::send).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Reply {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// `POST path` with a form body.
    pub async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// Logs in to the demo.
    pub async fn login(&mut self, user: &str) -> Reply {
        self.post_form("/login", &[("username", user), ("password", "demo")])
            .await
    }

    /// Sends a request with the jar's cookies and stores what the response sets.
    pub async fn send(&mut self, mut req: reqwest::RequestBuilder) -> Reply {
        if !self.jar.is_empty() {
            let header = self
                .jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header(COOKIE, header);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap();
        let set_cookies: Vec<Cookie<'static>> = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
            .collect();
        for c in &set_cookies {
            let expired = c.max_age().is_some_and(|a| a.is_zero() || a.is_negative());
            if expired {
                self.jar.remove(c.name());
            } else {
                self.jar.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
        Reply {
            status,
            headers,
            body,
            set_cookies,
        }
    }
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether `tool --version` runs. When it does not, the test skips with a loud message,
/// unless `require_var=1` (as CI sets), when it fails.
pub fn tool_present(tool: &str, require_var: &str, msg: &str) -> bool {
    let present = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(std::env::var(require_var).as_deref() != Ok("1"), "{msg}");
        eprintln!("\n*** SKIPPING: {msg} ***\n");
    }
    present
}

/// The `name` and `value` of each object in a JSON array of cookies (as a browser's
/// `Network.getAllCookies` or the interop scripts list them).
pub fn cookie_pairs(list: &serde_json::Value) -> impl Iterator<Item = (String, String)> + '_ {
    list.as_array().unwrap().iter().map(|c| {
        (
            c["name"].as_str().unwrap().to_owned(),
            c["value"].as_str().unwrap().to_owned(),
        )
    })
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where a PostgreSQL program is: on `PATH`, or in Debian's versioned
/// `/usr/lib/postgresql/<major>/bin` (the `postgresql` package puts only the client on
/// `PATH`), newest first.
pub fn pg_bin(name: &str) -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let mut majors: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect();
    majors.sort();
    majors
        .into_iter()
        .rev()
        .map(|(_, dir)| dir.join("bin").join(name))
        .find(|p| p.is_file())
}

/// Whether PostgreSQL's server programs are installed; a loud skip, or a failure when CI
/// requires it (`JWE_SESSION_REQUIRE_POSTGRES=1`).
pub fn postgres_present() -> bool {
    let present = ["initdb", "postgres", "pg_isready"]
        .iter()
        .all(|b| pg_bin(b).is_some());
    if !present {
        let msg = "PostgreSQL is not installed (apt-get install postgresql)";
        assert!(
            std::env::var("JWE_SESSION_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "{msg}"
        );
        eprintln!("\n*** SKIPPING: {msg} ***\n");
    }
    present
}

/// The uid and gid PostgreSQL runs as when the tests run as root (it refuses root): the
/// `postgres` user Debian's package makes. `None` when not root.
#[cfg(unix)]
fn pg_user() -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd.lines().find(|l| l.starts_with("postgres:")).expect(
        "running as root, PostgreSQL needs the `postgres` user (apt-get install postgresql)",
    );
    let f: Vec<&str> = line.split(':').collect();
    Some((f[2].parse().unwrap(), f[3].parse().unwrap()))
}

#[cfg(unix)]
fn as_pg_user(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt as _;
    if let Some((uid, gid)) = pg_user() {
        cmd.uid(uid).gid(gid);
    }
}

#[cfg(unix)]
fn chown_pg(path: &std::path::Path) {
    if let Some((uid, gid)) = pg_user() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

/// A data directory made by `initdb` once per test process, copied for each server
/// (initdb takes seconds; a copy milliseconds).
fn pg_template() -> &'static std::path::Path {
    static TEMPLATE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let root = pg_root();
        let dir = root.join("template");
        let _ = std::fs::remove_dir_all(&dir);
        let mut cmd = std::process::Command::new(pg_bin("initdb").unwrap());
        cmd.arg("-D")
            .arg(&dir)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .args(["--no-instructions", "--locale=C"])
            .stdout(std::process::Stdio::null());
        as_pg_user(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// This process's folder for PostgreSQL data, readable by the `postgres` user.
fn pg_root() -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!("jwe-session-pg-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    chown_pg(&root);
    root
}

/// A real PostgreSQL server on a free loopback port, from a fresh data directory
/// (`fsync` off: a killed server loses nothing the OS has, which is what the tests kill),
/// stopped on drop and whenever the test process ends.
pub struct PgServer {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
    extra: Vec<String>,
    tls_ca: Option<String>,
}

impl PgServer {
    /// Starts one, or returns `None` after a loud message when PostgreSQL is not installed.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// As [`start`](Self::start), with more `postgres` settings (`name=value`).
    pub fn start_with(settings: &[&str]) -> Option<Self> {
        if !postgres_present() {
            return None;
        }
        let mut s = Self::prepare(settings);
        s.restart();
        Some(s)
    }

    /// A server that also speaks TLS (`ssl=on`), with a certificate for `127.0.0.1` and
    /// `localhost` signed by a CA made for it ([`tls_ca_file`](Self::tls_ca_file)).
    pub fn start_tls() -> Option<Self> {
        if !postgres_present() {
            return None;
        }
        let mut s = Self::prepare(&[]);
        let tls = TestCert::localhost();
        let (crt, key, ca) = tls.write(&s.dir);
        for f in [&crt, &key] {
            chown_pg(std::path::Path::new(f));
        }
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        s.extra = vec![
            "ssl=on".into(),
            format!("ssl_cert_file={crt}"),
            format!("ssl_key_file={key}"),
        ];
        s.tls_ca = Some(ca);
        s.restart();
        Some(s)
    }

    /// The CA certificate file (PEM) of a TLS server.
    pub fn tls_ca_file(&self) -> Option<&str> {
        self.tls_ca.as_deref()
    }

    fn prepare(settings: &[&str]) -> Self {
        let port = free_port();
        let dir = pg_root().join(format!("data-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(pg_template())
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "could not copy the PostgreSQL template");
        Self {
            port,
            dir,
            child: None,
            extra: settings.iter().map(|a| (*a).to_owned()).collect(),
            tls_ca: None,
        }
    }

    /// One server for every test of this process that needs no server of its own (each
    /// takes a [`database`](Self::database) of its own); stopped when the process ends.
    pub fn shared() -> Option<&'static Self> {
        static SHARED: std::sync::OnceLock<Option<PgServer>> = std::sync::OnceLock::new();
        SHARED.get_or_init(Self::start).as_ref()
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`: the superuser's URL.
    pub fn url(&self) -> String {
        self.url_for("postgres", "postgres")
    }

    /// The URL of database `db` as `user` (no password: the test server trusts loopback).
    pub fn url_for(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Makes a fresh database and returns its (superuser) URL.
    pub fn database(&self) -> String {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url_for("postgres", &name)
    }

    /// Runs SQL as the superuser with `psql` in database `db`; its output (unaligned,
    /// tuples only). Panics if psql fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.try_psql(db, sql);
        out.unwrap_or_else(|e| panic!("psql {sql:?}: {e}"))
    }

    /// As [`psql`](Self::psql), returning psql's error instead of panicking.
    ///
    /// # Errors
    /// What psql printed to stderr when it failed.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = std::process::Command::new(pg_bin("psql").expect("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Kills the server (SIGKILL to the postmaster, as a crash would) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // The child is the watching shell: SIGTERM makes it SIGKILL the server.
            if let Some(pid) = rustix::process::Pid::from_raw(c.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let _ = c.wait();
            // The postmaster's children exit on their own once it is gone; wait until the
            // port is free so a restart can bind it.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            // What a killed postmaster leaves: its lock files (a new one refuses to start
            // while their pid looks alive).
            let _ = std::fs::remove_file(self.dir.join("postmaster.pid"));
            let _ = std::fs::remove_file(self.dir.join(format!(".s.PGSQL.{}.lock", self.port)));
        }
    }

    /// Starts the server (again) on the same port and data and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.port.to_string();
        // Through `sh`, which stops the server when this process goes (a shared server is
        // never dropped): it watches /proc for this process while the server runs.
        let mut args = vec![
            "-D".to_owned(),
            self.dir.display().to_string(),
            "-p".into(),
            port,
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
            "-c".into(),
            format!("unix_socket_directories={}", self.dir.display()),
            "-c".into(),
            "fsync=off".into(),
            "-c".into(),
            "full_page_writes=off".into(),
            "-c".into(),
            "max_connections=200".into(),
            "-c".into(),
            "shared_buffers=32MB".into(),
        ];
        for e in &self.extra {
            args.push("-c".into());
            args.push(e.clone());
        }
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let script = format!(
            "exec 0</dev/null; {bin} {args} >>'{dir}/server.log' 2>&1 & pg=$!; \
             trap 'kill -9 $pg 2>/dev/null; wait $pg; exit 0' TERM; \
             while [ -d /proc/{parent} ] && kill -0 $pg 2>/dev/null; do sleep 0.2; done; \
             kill -QUIT $pg 2>/dev/null; wait $pg; \\
             [ -d /proc/{parent} ] || rm -rf '{root}'",
            bin = pg_bin("postgres").unwrap().display(),
            args = quoted.join(" "),
            dir = self.dir.display(),
            parent = std::process::id(),
            root = pg_root().display(),
        );
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        as_pg_user(&mut cmd);
        self.child = Some(cmd.spawn().unwrap());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let ready = std::process::Command::new(pg_bin("pg_isready").unwrap())
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "postgres did not start on port {}; see {}/server.log",
                self.port,
                self.dir.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real `redis-server` on a free loopback port, persistence off, killed on drop.
pub struct RedisServer {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
    args: Vec<String>,
    tls_ca: Option<String>,
}

/// Whether `redis-server` is installed; a loud skip, or a failure when CI requires it.
pub fn redis_present() -> bool {
    tool_present(
        "redis-server",
        "JWE_SESSION_REQUIRE_REDIS",
        "redis-server is not installed (apt-get install redis-server)",
    )
}

impl RedisServer {
    /// Starts one, or returns `None` after a loud message when `redis-server` is not
    /// installed. With `JWE_SESSION_REQUIRE_REDIS=1` (as CI sets) a missing binary panics.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// As [`start`](Self::start), with more `redis-server` arguments.
    pub fn start_with(args: &[&str]) -> Option<Self> {
        if !redis_present() {
            return None;
        }
        let mut s = Self::new(args);
        s.restart();
        Some(s)
    }

    fn new(args: &[&str]) -> Self {
        let port = free_port();
        let dir = jwe_session_test_support::scratch(&format!("redis-{port}"));
        Self {
            port,
            dir,
            child: None,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            tls_ca: None,
        }
    }

    /// A server that speaks only TLS, with a certificate for `127.0.0.1` and `localhost`
    /// signed by a CA made for it ([`tls_ca_pem`](Self::tls_ca_pem)).
    pub fn start_tls() -> Option<Self> {
        if !redis_present() {
            return None;
        }
        let mut s = Self::new(&[]);
        let tls = TestCert::localhost();
        let (crt, key, ca_file) = tls.write(&s.dir);
        s.args = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            s.port.to_string(),
            "--tls-cert-file".into(),
            crt,
            "--tls-key-file".into(),
            key,
            "--tls-ca-cert-file".into(),
            ca_file,
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        s.tls_ca = Some(tls.ca_pem);
        s.restart();
        Some(s)
    }

    /// The CA certificate (PEM) of a TLS server.
    pub fn tls_ca_pem(&self) -> Option<&str> {
        self.tls_ca.as_deref()
    }

    /// `redis://127.0.0.1:PORT/` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls_ca.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (as a crash would) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server (again) on the same port and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let mut cmd = std::process::Command::new("redis-server");
        if self.tls_ca.is_none() {
            cmd.args(["--port", &self.port.to_string()]);
        }
        let child = cmd
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if self.ready() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn ready(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.tls_ca.is_some() {
            return true; // listening; the handshake is the client's business
        }
        let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real Redis Cluster of `n` masters (no replicas) on free loopback ports, made with
/// `redis-cli --cluster create`; every node killed on drop.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts one and waits until every node reports `cluster_state:ok`; `None` after a
    /// loud message when `redis-server` is not installed.
    pub fn start(n: usize) -> Option<Self> {
        if !redis_present() {
            return None;
        }
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            let mut s = RedisServer::new(&[]);
            s.args = ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
                .iter()
                .map(|a| (*a).to_owned())
                .chain([
                    "--cluster-config-file".to_owned(),
                    format!("nodes-{}.conf", s.port),
                ])
                .collect();
            s.restart();
            nodes.push(s);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let out = std::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        for a in &addrs {
            let port = a.rsplit(':').next().unwrap();
            loop {
                let info = std::process::Command::new("redis-cli")
                    .args(["-p", port, "cluster", "info"])
                    .output()
                    .unwrap();
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "cluster did not become ready"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        Some(Self { nodes })
    }

    /// Every node's `redis://` URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// A certificate for `localhost` and `127.0.0.1`, signed by a CA made for it: made per
/// test run, for the TLS servers the tests start (Redis, the demo over HTTPS).
pub struct TestCert {
    /// The CA certificate, PEM: what clients trust.
    pub ca_pem: String,
    /// The server's certificate, PEM.
    pub cert_pem: String,
    /// The server's private key, PEM (PKCS#8).
    pub key_pem: String,
    /// Base64 of the SHA-256 of the server key's SubjectPublicKeyInfo: what Chromium's
    /// `--ignore-certificate-errors-spki-list` takes.
    pub spki_sha256: String,
}

impl TestCert {
    /// A new CA and server certificate.
    pub fn localhost() -> Self {
        use base64::Engine as _;
        use sha2::Digest as _;
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "jwe-session test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let spki = sha2::Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key));
        Self {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            spki_sha256: base64::engine::general_purpose::STANDARD.encode(spki),
        }
    }

    /// Writes `server.crt`, `server.key` and `ca.crt` into `dir`; their paths, in that
    /// order.
    pub fn write(&self, dir: &std::path::Path) -> (String, String, String) {
        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path.display().to_string()
        };
        (
            write("server.crt", &self.cert_pem),
            write("server.key", &self.key_pem),
            write("ca.crt", &self.ca_pem),
        )
    }
}

/// Headless Debian Chromium driven through `chromedriver` (WebDriver), with a fresh
/// profile and no network of its own. Closed and killed, with every child, on drop.
pub struct Browser {
    /// The WebDriver session.
    pub client: fantoccini::Client,
    driver: std::process::Child,
    profile: std::path::PathBuf,
}

impl Browser {
    /// Starts one, or returns `None` after a loud message when `chromedriver` is missing.
    /// With `JWE_SESSION_REQUIRE_BROWSER=1` (as CI sets) a missing driver panics.
    pub async fn start() -> Option<Self> {
        Self::start_with(&[]).await
    }

    /// As [`start`](Self::start), with more Chromium flags.
    pub async fn start_with(extra_args: &[String]) -> Option<Self> {
        if !tool_present(
            "chromedriver",
            "JWE_SESSION_REQUIRE_BROWSER",
            "chromedriver is not installed (apt-get install chromium chromium-driver)",
        ) {
            return None;
        }
        let port = free_port();
        let profile = jwe_session_test_support::scratch(&format!("chromium-{port}"));
        let mut cmd = std::process::Command::new("chromedriver");
        cmd.arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let driver = cmd.spawn().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--window-size=1000,800",
        ];
        let mut args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(extra_args.iter().cloned());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("WebDriver session");
        Some(Self {
            client,
            driver,
            profile,
        })
    }

    /// Runs a Chrome DevTools Protocol command through the driver
    /// (`POST /session/{id}/goog/cdp/execute`): what malware with the browser's access
    /// would see, e.g. `Network.getAllCookies`.
    pub async fn cdp(&self, cmd: &'static str, params: serde_json::Value) -> serde_json::Value {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
    }

    /// Ends the session and stops the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        drop(self);
    }
}

/// A CDP command for chromedriver's `goog/cdp/execute` endpoint.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver leads its own process group, and the browsers it starts stay in it:
        // one signal ends them all. Sent by syscall, not by running `kill`: procps-ng
        // 4.0.2's `kill -KILL -PID` signals process group 9 instead of PID, which took
        // down whatever ran the tests.
        #[cfg(unix)]
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&self.driver),
            rustix::process::Signal::KILL,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// panva/jose (Node.js), an independent JOSE implementation, behind `tests/interop/jose.mjs`:
/// one JSON request on stdin, one JSON answer on stdout.
pub struct Jose {
    script: std::path::PathBuf,
}

impl Jose {
    /// The bridge, or `None` after a loud message when `node` or `npm ci --prefix
    /// tests/interop` is missing. With `JWE_SESSION_REQUIRE_INTEROP=1` (as CI sets) that fails.
    pub fn find() -> Option<Self> {
        node_bridge("jose", "jose.mjs").map(|script| Self { script })
    }

    /// Runs one request; the process's output, whether it succeeded or not.
    pub fn run(&self, req: &serde_json::Value) -> std::process::Output {
        run_script("node", &self.script, req)
    }

    /// Runs one request that must succeed, and returns its answer.
    pub fn call(&self, req: &serde_json::Value) -> serde_json::Value {
        let out = self.run(req);
        assert!(
            out.status.success(),
            "jose failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// `tests/interop/SCRIPT` when `node` runs and `tests/interop/node_modules/MODULE` is
/// installed; else `None` after a loud message (a failure under
/// `JWE_SESSION_REQUIRE_INTEROP=1`, as CI sets).
fn node_bridge(module: &str, script: &str) -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop");
    let ready = dir.join("node_modules").join(module).is_dir()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if ready {
        return Some(dir.join(script));
    }
    let msg = format!(
        "node or tests/interop/node_modules/{module} missing (run `npm ci --prefix tests/interop`)"
    );
    assert!(
        std::env::var("JWE_SESSION_REQUIRE_INTEROP").as_deref() != Ok("1"),
        "{msg}"
    );
    eprintln!("\n*** SKIPPING interop test: {msg} ***\n");
    None
}

/// Auth.js's own packages behind `tests/interop/authjs.mjs`: `@auth/core` (v5) and
/// `next-auth@4`, each with its `encode`, `decode`, `getToken` and cookie chunking. One
/// JSON array of requests in, one array of answers out.
pub struct AuthJs {
    script: std::path::PathBuf,
}

impl AuthJs {
    /// The bridge, or `None` after a loud message when node or the packages are missing
    /// (a failure under `JWE_SESSION_REQUIRE_INTEROP=1`).
    pub fn find() -> Option<Self> {
        let script = node_bridge("@auth/core", "authjs.mjs")?;
        node_bridge("next-auth", "authjs.mjs")?;
        Some(Self { script })
    }

    /// Runs a batch of requests that must all be understood; their answers, in order.
    pub fn call(&self, reqs: &[serde_json::Value]) -> Vec<serde_json::Value> {
        let out = run_script(
            "node",
            &self.script,
            &serde_json::Value::from(reqs.to_vec()),
        );
        assert!(
            out.status.success(),
            "authjs.mjs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs one request.
    pub fn one(&self, req: serde_json::Value) -> serde_json::Value {
        self.call(&[req]).remove(0)
    }
}

/// Runs `program script` with one JSON request on stdin: its output, succeeded or not.
fn run_script(
    program: &str,
    script: &std::path::Path,
    req: &serde_json::Value,
) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = std::process::Command::new(program)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Python's `cryptography` making DPoP proofs (`tests/interop/dpop_proof.py`), an ES256
/// signer independent of ours.
pub struct PythonProofs {
    script: std::path::PathBuf,
}

impl PythonProofs {
    /// The script, or `None` after a loud message when `python3` or its `cryptography`
    /// package is missing. With `JWE_SESSION_REQUIRE_INTEROP=1` (as CI sets) that fails.
    pub fn find() -> Option<Self> {
        let ready = std::process::Command::new("python3")
            .args(["-c", "import cryptography"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ready {
            return Some(Self {
                script: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("interop/dpop_proof.py"),
            });
        }
        let msg = "python3 with the `cryptography` package missing (pip install cryptography)";
        assert!(
            std::env::var("JWE_SESSION_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "{msg}"
        );
        eprintln!("\n*** SKIPPING interop test: {msg} ***\n");
        None
    }

    /// Runs one request that must succeed (see the script), and returns its answer.
    pub fn call(&self, req: &serde_json::Value) -> serde_json::Value {
        let out = run_script("python3", &self.script, req);
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// A WebSocket to the demo's `GET /ws`, opened with a cookie jar's cookies.
pub struct WsClient {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// How a WebSocket ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEnd {
    /// A close frame with this code and reason.
    Closed(u16, String),
    /// The connection ended without a close frame.
    Dropped,
    /// Still open after the time allowed.
    StillOpen,
}

impl WsClient {
    /// Opens `ws://…/ws` on `base` (`http://host:port`) with `jar`'s cookies.
    ///
    /// # Errors
    /// The HTTP status when the server refused the upgrade.
    ///
    /// # Panics
    /// If the connection fails for another reason than an HTTP refusal.
    pub async fn connect(base: &str, jar: &BTreeMap<String, String>) -> Result<Self, u16> {
        Self::connect_from(base, jar, None).await
    }

    /// As [`connect`](Self::connect), with the `Origin` a browser would send from a page
    /// at `origin` (`None`: no `Origin`, as a non-browser client).
    ///
    /// # Errors
    /// The HTTP status when the server refused the upgrade.
    ///
    /// # Panics
    /// If the connection fails for another reason than an HTTP refusal.
    pub async fn connect_from(
        base: &str,
        jar: &BTreeMap<String, String>,
        origin: Option<&str>,
    ) -> Result<Self, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/ws", base.replacen("http://", "ws://", 1));
        let mut req = url.into_client_request().unwrap();
        let cookies = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !cookies.is_empty() {
            req.headers_mut().insert("cookie", cookies.parse().unwrap());
        }
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((stream, _)) => Ok(Self { stream }),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
            Err(e) => panic!("WebSocket connect failed: {e}"),
        }
    }

    /// The next text message, waiting at most `within`.
    pub async fn text(&mut self, within: Duration) -> Option<String> {
        use tokio_tungstenite::tungstenite::Message;
        let read = async {
            while let Some(Ok(m)) = self.stream.next_message().await {
                if let Message::Text(t) = m {
                    return Some(t.to_string());
                }
            }
            None
        };
        tokio::time::timeout(within, read).await.ok().flatten()
    }

    /// Waits at most `within` for the server to end the connection.
    pub async fn end(&mut self, within: Duration) -> WsEnd {
        use tokio_tungstenite::tungstenite::Message;
        let read = async {
            loop {
                match self.stream.next_message().await {
                    Some(Ok(Message::Close(Some(f)))) => {
                        return WsEnd::Closed(f.code.into(), f.reason.to_string())
                    }
                    Some(Ok(Message::Close(None)) | Err(_)) | None => return WsEnd::Dropped,
                    Some(Ok(_)) => {}
                }
            }
        };
        tokio::time::timeout(within, read)
            .await
            .unwrap_or(WsEnd::StillOpen)
    }
}

/// Reading a WebSocket stream one message at a time without a `futures` dependency.
trait NextMessage {
    async fn next_message(
        &mut self,
    ) -> Option<
        Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>,
    >;
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> NextMessage
    for tokio_tungstenite::WebSocketStream<S>
{
    async fn next_message(
        &mut self,
    ) -> Option<
        Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>,
    > {
        std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut *self), cx)
        })
        .await
    }
}
