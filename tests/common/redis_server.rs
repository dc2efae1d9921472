//! A real `redis-server` for one test: started on a free loopback port in
//! its own temporary directory, killed when the guard is dropped. It can be
//! killed and restarted on the same port and directory (with `persistent`,
//! every acknowledged write survives: append-only file, fsync always), run
//! with a password, or serve TLS only, with a CA and server certificate made
//! by the `openssl` command line.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start the server.
#[derive(Default, Clone)]
pub struct RedisOptions {
    /// `requirepass`: the default user's password.
    pub password: Option<String>,
    /// Append-only file with fsync on every write.
    pub persistent: bool,
    /// Serve TLS only, with certificates generated in the server's directory.
    pub tls: bool,
    /// Use this port instead of a free one.
    pub port: Option<u16>,
}

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    options: RedisOptions,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(RedisOptions::default())
    }

    pub fn start_with(options: RedisOptions) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("sluice-redis-")
            .tempdir()
            .expect("create a directory for redis");
        if options.tls {
            make_certificates(dir.path());
        }
        let port = options.port.unwrap_or_else(super::free_port);
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            options,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--bind").arg("127.0.0.1");
        cmd.arg("--dir").arg(self.dir.path());
        cmd.args(["--save", "", "--daemonize", "no", "--loglevel", "warning"]);
        cmd.args(["--logfile", "redis.log"]);
        if self.options.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        if let Some(password) = &self.options.password {
            cmd.arg("--requirepass").arg(password);
        }
        if self.options.tls {
            let file = |name: &str| self.dir.path().join(name);
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string()]);
            cmd.arg("--tls-cert-file").arg(file("server.pem"));
            cmd.arg("--tls-key-file").arg(file("server.key"));
            cmd.arg("--tls-ca-cert-file").arg(file("ca.pem"));
            cmd.args(["--tls-auth-clients", "no"]);
        } else {
            cmd.args(["--port", &self.port.to_string()]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (scripts/test.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {} within 10s; its log:\n{}",
                self.port,
                std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The CA certificate clients should trust (TLS servers only).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// `redis://` (or `rediss://localhost` for TLS) with the password, if any.
    pub fn url(&self) -> String {
        let auth = match &self.options.password {
            Some(password) => format!(":{password}@"),
            None => String::new(),
        };
        if self.options.tls {
            format!("rediss://{auth}localhost:{}", self.port)
        } else {
            format!("redis://{auth}127.0.0.1:{}", self.port)
        }
    }

    /// A synchronous connection for the test's own reads.
    pub fn connection(&self) -> redis::Connection {
        let client = if self.options.tls {
            let ca = std::fs::read(self.ca_file()).expect("read the CA");
            redis::Client::build_with_tls(
                self.url().as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca),
                },
            )
        } else {
            redis::Client::open(self.url().as_str())
        }
        .expect("a redis client");
        let _ = rustls::crypto::ring::default_provider().install_default();
        client.get_connection().expect("connect to the test redis")
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // It may have died already; either way it must be gone.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Every key and its value: strings as integers, hashes as field → integer.
    /// Flush markers (`sluice:flush:*`) are left out.
    pub fn dump(&self) -> Dump {
        let mut conn = self.connection();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).expect("KEYS");
        let mut dump = Dump::default();
        for key in keys {
            if key.starts_with("sluice:flush:") {
                dump.markers += 1;
                continue;
            }
            let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).expect("TYPE");
            if kind == "hash" {
                let h: std::collections::BTreeMap<String, i64> = redis::cmd("HGETALL")
                    .arg(&key)
                    .query(&mut conn)
                    .expect("HGETALL");
                dump.hashes.insert(key, h);
            } else {
                let v: i64 = redis::cmd("GET").arg(&key).query(&mut conn).expect("GET");
                dump.counters.insert(key, v);
            }
        }
        dump
    }
}

/// What [`RedisServer::dump`] read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dump {
    pub counters: std::collections::BTreeMap<String, i64>,
    pub hashes: std::collections::BTreeMap<String, std::collections::BTreeMap<String, i64>>,
    pub markers: usize,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A CA and a server certificate for `localhost` / 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=sluice test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write the extension file");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}
