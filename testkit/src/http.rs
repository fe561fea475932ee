//! A small blocking HTTP/1.1 client for tests of sono's HTTP side: one request
//! per connection (`Connection: close`), bodies by Content-Length or chunked,
//! and Server-Sent Events read as they arrive.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The stable error code of an API error body.
    pub fn error_code(&self) -> Option<String> {
        self.json()["error"]["code"].as_str().map(str::to_owned)
    }
}

/// Sends one request; `headers` are extra lines such as
/// `("Authorization", "Bearer …")`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let mut s = open(addr, method, path, headers, body)?;
    let mut reader = BufReader::new(&mut s);
    let (status, headers) = read_head(&mut reader)?;
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = Vec::new();
    if method == "HEAD" {
        // The headers describe a body that is not sent (RFC 9110 §9.3.2).
    } else if chunked {
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16).map_err(io::Error::other)?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn open(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<TcpStream> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(45)))?;
    s.set_nodelay(true)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut wire = head.into_bytes();
    wire.extend_from_slice(body);
    s.write_all(&wire)?;
    Ok(s)
}

fn read_head(reader: &mut impl BufRead) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP status line: {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    Ok((status, headers))
}

/// A GET with a bearer token, for the REST API.
pub fn get(addr: SocketAddr, path: &str, token: &str) -> io::Result<Response> {
    let auth = format!("Bearer {token}");
    request(addr, "GET", path, &[("Authorization", &auth)], b"")
}

/// A POST of a JSON body with a bearer token, for the REST API.
pub fn post_json(
    addr: SocketAddr,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> io::Result<Response> {
    let auth = format!("Bearer {token}");
    let text = body.to_string();
    request(
        addr,
        "POST",
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        text.as_bytes(),
    )
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: serde_json::Value,
}

/// A Server-Sent Events stream being read.
pub struct EventStream {
    reader: BufReader<TcpStream>,
    pub status: u16,
    pub events: Vec<Event>,
    pending_chunk: usize,
    buffer: String,
}

impl EventStream {
    /// Opens `path` (a GET) and reads the answer's head; an empty `token`
    /// sends no Authorization header (as EventSource, which cannot).
    pub fn open(addr: SocketAddr, path: &str, token: &str) -> io::Result<EventStream> {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("Accept", "text/event-stream")];
        if !token.is_empty() {
            headers.push(("Authorization", &auth));
        }
        let s = open(addr, "GET", path, &headers, b"")?;
        let mut reader = BufReader::new(s);
        let (status, _) = read_head(&mut reader)?;
        Ok(EventStream {
            reader,
            status,
            events: Vec::new(),
            pending_chunk: 0,
            buffer: String::new(),
        })
    }

    /// Reads events until one named `name` arrives (returned) or `timeout`.
    pub fn wait_for(&mut self, name: &str, timeout: Duration) -> Option<Event> {
        self.wait_until(timeout, |e| e.name == name)
    }

    /// The first event so far that `matches`, reading more until `timeout`.
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        matches: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        loop {
            if let Some(e) = self.events[seen..].iter().find(|e| matches(e)) {
                return Some(e.clone());
            }
            seen = self.events.len();
            let left = deadline.checked_duration_since(Instant::now())?;
            if self.read_some(left).is_err() {
                // One last look at what arrived before the end.
                return self.events[seen..].iter().find(|e| matches(e)).cloned();
            }
        }
    }

    /// Waits for `Sono.Call.Status` with this status code.
    pub fn wait_call_status(&mut self, status: u8, timeout: Duration) -> Option<Event> {
        self.wait_until(timeout, |e| {
            e.name == "Sono.Call.Status" && e.data["status_code"] == status
        })
    }

    /// Reads one chunk of the (chunked) body and parses complete events.
    fn read_some(&mut self, timeout: Duration) -> io::Result<()> {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        if self.pending_chunk == 0 {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if line.trim().is_empty() {
                return Ok(()); // the CRLF after a chunk
            }
            self.pending_chunk =
                usize::from_str_radix(line.trim(), 16).map_err(io::Error::other)?;
            if self.pending_chunk == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        let mut chunk = vec![0; self.pending_chunk];
        let n = self.reader.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.pending_chunk -= n;
        self.buffer.push_str(&String::from_utf8_lossy(&chunk[..n]));
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut name = "message".to_owned();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !data.is_empty() {
                self.events.push(Event {
                    name,
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                });
            }
        }
        Ok(())
    }
}
