//! A raw HTTP/1.1 server for the tests of HTTP sources, where a real
//! framework would hide what they need: an answer that breaks off halfway,
//! one that stalls, one that never comes. Each request is read up to the
//! end of its head and handed, with its number (0, 1, …), to the test's
//! closure, which writes whatever it likes to the socket. Serves, one
//! thread per connection, until the process ends.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A running server.
#[derive(Debug, Clone)]
pub struct RawHttp {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl RawHttp {
    /// Serve on a free loopback port; `answer(n, head, socket)` answers the
    /// `n`-th request (from 0), whose head (request line and headers) is `head`.
    pub fn start(answer: impl Fn(usize, &str, &mut TcpStream) + Send + Sync + 'static) -> RawHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let counted = Arc::clone(&counted);
                let answer = Arc::clone(&answer);
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let n = counted.fetch_add(1, Ordering::SeqCst);
                    answer(n, &String::from_utf8_lossy(&head), &mut stream);
                });
            }
        });
        RawHttp { addr, requests }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A whole HTTP/1.1 answer with `status` (e.g. `200 OK`) and a JSON body; the connection closes after it.
pub fn json_answer(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
