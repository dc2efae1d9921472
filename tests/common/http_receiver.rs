//! A real HTTP/1.1 server for the `http` sink's tests, on a free loopback
//! port: a thread per connection, keep-alive, `Content-Length` bodies. A
//! `plan` closure decides each answer (status, headers, body, a delay before
//! answering), so a test can make it fail, stall or refuse; every request is
//! recorded with the status it got. Stops when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn with_body(mut self, body: &str) -> Reply {
        self.body = body.to_owned();
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// Decides the answer to request number `n` (from 0).
pub type Plan = Box<dyn Fn(u64, &Received) -> Reply + Send + Sync>;

struct Shared {
    plan: Plan,
    next: AtomicU64,
    received: Mutex<Vec<Received>>,
    stop: AtomicBool,
    /// Connections open now, and the most at once.
    open: AtomicU64,
    peak_open: AtomicU64,
}

pub struct Receiver {
    pub port: u16,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Answers 200 to everything.
    pub fn ok() -> Receiver {
        Self::start(Box::new(|_, _| Reply::status(200)))
    }

    pub fn start(plan: Plan) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let port = listener.local_addr().expect("local address").port();
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let shared = Arc::new(Shared {
            plan,
            next: AtomicU64::new(0),
            received: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            open: AtomicU64::new(0),
            peak_open: AtomicU64::new(0),
        });
        let accepting = shared.clone();
        let thread = std::thread::spawn(move || {
            while !accepting.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let shared = accepting.clone();
                        std::thread::spawn(move || serve(stream, shared));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver {
            port,
            shared,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }

    /// Bodies of the requests answered 2xx.
    pub fn delivered_bodies(&self) -> Vec<Vec<u8>> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .map(|r| r.body)
            .collect()
    }

    /// The most connections that were open at once.
    pub fn peak_connections(&self) -> u64 {
        self.shared.peak_open.load(Ordering::Relaxed)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The accept loop only sleeps and accepts; it ends on the flag.
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let open = shared.open.fetch_add(1, Ordering::Relaxed) + 1;
    shared.peak_open.fetch_max(open, Ordering::Relaxed);
    // A client that goes away mid-request just ends this connection.
    let _ = serve_requests(stream, &shared);
    shared.open.fetch_sub(1, Ordering::Relaxed);
}

fn serve_requests(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let mut received = Received {
            path,
            headers,
            body,
            status: 0,
        };
        let n = shared.next.fetch_add(1, Ordering::Relaxed);
        let reply = (shared.plan)(n, &received);
        std::thread::sleep(reply.delay);
        received.status = reply.status;
        let mut head = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        writer.write_all(head.as_bytes())?;
        writer.write_all(reply.body.as_bytes())?;
        writer.flush()?;
        shared.received.lock().expect("lock").push(received);
    }
}
