//! What one client can cost the real daemon (issue 11, defects 9, 11, 14, 16): timeouts,
//! the connection limit, authentication before any body is read, rate limits, `/metrics`
//! behind its role, and 5xx answers in the daemon log. Every wait is bounded by a deadline
//! after which the test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn addr(a: &Appliance) -> String {
    a.url.trim_start_matches("http://").to_string()
}

/// An answer read from a raw connection: status, head, body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Read one HTTP/1.1 answer (the connection must close after it) before `deadline`;
/// `None` if the deadline passed first.
fn read_answer(s: &mut TcpStream, deadline: Instant) -> Option<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left.min(Duration::from_millis(200))))
            .unwrap();
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // With a complete answer whose length is known, stop early.
                if let Some(a) = parse(&buf) {
                    if a.complete {
                        return Some(a.answer);
                    }
                }
            }
            Err(_) => break,
        }
    }
    parse(&buf).map(|a| a.answer)
}

struct Parsed {
    answer: Answer,
    complete: bool,
}

fn parse(buf: &[u8]) -> Option<Parsed> {
    let text = String::from_utf8_lossy(buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(usize::MAX))
        })
        .unwrap_or(usize::MAX);
    Some(Parsed {
        complete: body.len() >= len,
        answer: Answer {
            status,
            head: head.to_string(),
            body: body.to_string(),
        },
    })
}

/// Whether the server closed `s` (EOF or reset) before `deadline`.
fn closed_by(s: &mut TcpStream, deadline: Instant) -> bool {
    let mut b = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue, // an error answer before closing is fine
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn get(a: &Appliance, path: &str, token: Option<&str>) -> Answer {
    let mut s = TcpStream::connect(addr(a)).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    read_answer(&mut s, Instant::now() + Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no answer to GET {path}"))
}

#[test]
fn idle_and_half_sent_request_heads_are_closed_within_the_header_timeout() {
    let a = Appliance::start("[http]\nheader_read_timeout_secs = 2\n", "");
    let mut conns: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut s = TcpStream::connect(addr(&a)).unwrap();
            // Half of them send half a head, the others nothing at all.
            if i % 2 == 0 {
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
                    .unwrap();
            }
            s
        })
        .collect();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(20);
    let mut open = 0;
    for s in conns.iter_mut() {
        if !closed_by(s, deadline) {
            open += 1;
        }
    }
    assert_eq!(
        open, 0,
        "{open} of 200 idle connections still open after 20 s"
    );
    // The daemon still serves.
    assert_eq!(get(&a, "/healthz", None).status, 200);
}

#[test]
fn a_slow_body_is_cut_and_leaves_no_spool_file() {
    let a = Appliance::start("[http]\nbody_idle_timeout_secs = 1\n", "");
    let mut s = TcpStream::connect(addr(&a)).unwrap();
    write!(
        s,
        "POST /v1/products/widget/sign HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100000\r\n\r\n"
    )
    .unwrap();
    s.write_all(&[0x55; 1000]).unwrap();
    // ... and then nothing.
    let ans = read_answer(&mut s, Instant::now() + Duration::from_secs(15))
        .expect("no answer within 15 s to a body that stopped after 1000 bytes");
    assert_eq!(ans.status, 408, "{}\n{}", ans.head, ans.body);
    assert!(ans.body.contains("request-timeout"), "{}", ans.body);
    let spool = std::fs::read_dir(a.state.join("spool")).unwrap().count();
    assert_eq!(spool, 0, "spool file left behind");
}

#[test]
fn a_slow_request_is_cut_by_the_total_timeout() {
    let a = Appliance::start(
        "[http]\nbody_idle_timeout_secs = 30\nrequest_timeout_secs = 2\n",
        "",
    );
    let mut s = TcpStream::connect(addr(&a)).unwrap();
    write!(
        s,
        "POST /v1/products/widget/sign HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100000\r\n\r\n"
    )
    .unwrap();
    // A byte every 300 ms never trips the idle timeout; the total one must.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut answered = None;
    while Instant::now() < deadline {
        if s.write_all(b"x").is_err() {
            break;
        }
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut b = [0u8; 1];
        match s.peek(&mut b) {
            Ok(n) if n > 0 => {
                answered = read_answer(&mut s, deadline);
                break;
            }
            Ok(_) => break,
            Err(_) => {}
        }
    }
    let ans = answered.expect("a trickling body was not cut within 15 s");
    assert_eq!(ans.status, 408, "{}\n{}", ans.head, ans.body);
}

#[test]
fn bodies_are_not_read_before_the_token_is_checked() {
    let a = Appliance::start("", "");
    for path in [
        "/v1/jobs/0123456789abcdef0123456789abcdef/approve",
        "/v1/jobs/0123456789abcdef0123456789abcdef/reject",
        "/v1/products/widget/sign-digest",
    ] {
        let mut s = TcpStream::connect(addr(&a)).unwrap();
        // A 2 MB body is announced and never sent: the 401 must come without it.
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n"
        )
        .unwrap();
        let ans = read_answer(&mut s, Instant::now() + Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{path}: no answer without the body"));
        assert_eq!(ans.status, 401, "{path}: {}", ans.body);
        assert!(ans.body.contains("unauthenticated"), "{}", ans.body);
    }
}

#[test]
fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let a = Appliance::start(
        "[http]\nmax_connections = 8\nheader_read_timeout_secs = 60\n",
        "",
    );
    let mut idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(addr(&a)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut ninth = TcpStream::connect(addr(&a)).unwrap();
    ninth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(
        read_answer(&mut ninth, Instant::now() + Duration::from_millis(1500)).is_none(),
        "a ninth connection was served while 8 were open (max_connections = 8)"
    );
    drop(idle.pop());
    let ans = read_answer(&mut ninth, Instant::now() + Duration::from_secs(10))
        .expect("the waiting connection was not served once a slot was free");
    assert_eq!(ans.status, 200);
}

#[test]
fn rate_limits_answer_429_with_retry_after() {
    let a = Appliance::start(
        "[http]\nper_client = { per_second = 1, burst = 3 }\nper_ip = { per_second = 50, burst = 50 }\n",
        "",
    );
    let answers: Vec<Answer> = (0..8)
        .map(|_| get(&a, "/v1/products/widget/artifacts", Some(TOKEN)))
        .collect();
    assert!(answers[..3].iter().all(|x| x.status == 200));
    let limited = answers
        .iter()
        .find(|x| x.status == 429)
        .expect("8 requests at once with burst 3 were never limited");
    assert!(limited.body.contains("rate-limited"), "{}", limited.body);
    let retry: u64 = limited
        .head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_string())
        })
        .expect("no Retry-After")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Per source address, before any authentication (bad tokens included).
    let b = Appliance::start("[http]\nper_ip = { per_second = 1, burst = 5 }\n", "");
    let statuses: Vec<u16> = (0..20)
        .map(|_| get(&b, "/v1/products/widget/artifacts", Some("wrong")).status)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    let unauthenticated = statuses.iter().filter(|s| **s == 401).count();
    assert!(unauthenticated <= 6, "{statuses:?}");
}

#[test]
fn metrics_need_a_token_with_the_metrics_role() {
    let (prom, line) = ("prom-secret", "factory-secret");
    let a = Appliance::start(
        "",
        &format!(
            "[[client]]\nname = \"prom\"\ntoken_sha256 = \"{}\"\nroles = {{ \"*\" = [\"metrics\"] }}\n\
             [[client]]\nname = \"line\"\ntoken_sha256 = \"{}\"\nroles = {{ \"*\" = [\"factory\"] }}\n",
            sha256_hex(prom.as_bytes()),
            sha256_hex(line.as_bytes())
        ),
    );
    let anon = get(&a, "/metrics", None);
    assert_eq!(anon.status, 401, "{}", anon.body);
    assert!(!anon.body.contains("widget"));
    let factory = get(&a, "/metrics", Some(line));
    assert_eq!(factory.status, 403, "{}", factory.body);
    assert!(!factory.body.contains("widget"));
    let ok = get(&a, "/metrics", Some(prom));
    assert_eq!(ok.status, 200);
    assert!(
        ok.body.contains("fwseal_http_requests_total"),
        "{}",
        ok.body
    );
    assert_eq!(get(&a, "/healthz", None).status, 200);
}

#[test]
fn every_5xx_is_logged_with_its_request_id_and_cause() {
    let a = Appliance::start("", "");
    let mut s = TcpStream::connect(addr(&a)).unwrap();
    write!(
        s,
        "POST /v1/products/widget/sign?name=fw.bin HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s.write_all(&[0x5a; 4096]).unwrap();
    let signed =
        read_answer(&mut s, Instant::now() + Duration::from_secs(30)).expect("sign answer");
    assert_eq!(signed.status, 201, "{}", signed.body);
    let v: serde_json::Value = serde_json::from_str(&signed.body).unwrap();
    let id = v["artifact_id"].as_str().unwrap().to_string();
    // Damage the store: the signed image's blob disappears.
    let out = v["output_sha256"].as_str().unwrap();
    let blob = std::fs::read_dir(a.state.join("artifacts/sha256"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&out[2..])
                || p.to_string_lossy().contains(out)
        })
        .expect("image blob");
    std::fs::remove_file(&blob).unwrap();
    let ans = get(&a, &format!("/v1/artifacts/{id}/image"), Some(TOKEN));
    assert_eq!(ans.status, 500, "{}", ans.body);
    let rid = ans
        .head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-request-id:")
                .map(|v| v.trim().to_string())
        })
        .expect("x-request-id");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = a.stderr_log();
        if let Some(line) = log.lines().find(|l| l.contains(&rid)) {
            assert!(line.contains("500"), "{line}");
            assert!(
                line.contains("missing from the store"),
                "cause not logged: {line}"
            );
            assert!(!line.contains(TOKEN), "{line}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no log line for request {rid}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A connection from `source` (a loopback address) to the appliance.
fn connect_from(a: &Appliance, source: &str) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let to: std::net::SocketAddr = addr(a).parse().unwrap();
    let s = rt
        .block_on(async {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.bind(format!("{source}:0").parse().unwrap())?;
            sock.connect(to).await
        })
        .unwrap();
    let s = s.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s
}

/// One host cannot take every connection slot: beyond `max_connections_per_ip` its next
/// connection is closed at once, while another source address is still served.
#[test]
fn one_source_cannot_hold_more_than_its_connection_share() {
    let a = Appliance::start(
        "[http]\nmax_connections_per_ip = 4\nheader_read_timeout_secs = 60\n",
        "",
    );
    let mut held: Vec<TcpStream> = (0..4).map(|_| connect_from(&a, "127.0.0.1")).collect();
    std::thread::sleep(Duration::from_millis(300));
    let request = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let mut fifth = connect_from(&a, "127.0.0.1");
    let _ = fifth.write_all(request);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = Vec::new();
    let closed = loop {
        fifth
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut chunk = [0u8; 512];
        match fifth.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if Instant::now() > deadline {
                    break false;
                }
            }
            Err(_) => break true,
        }
    };
    assert!(
        closed && buf.is_empty(),
        "a fifth connection from 127.0.0.1 was not closed at once (cap 4): {}",
        String::from_utf8_lossy(&buf)
    );
    // Another source address is served meanwhile.
    let mut other = connect_from(&a, "127.0.0.2");
    other.write_all(request).unwrap();
    let ans = read_answer(&mut other, Instant::now() + Duration::from_secs(10))
        .expect("127.0.0.2 was not served while 127.0.0.1 held its 4 connections");
    assert_eq!(ans.status, 200);
    // Once 127.0.0.1 closes one, it may open another.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = connect_from(&a, "127.0.0.1");
        let _ = s.write_all(request);
        if let Some(ans) = read_answer(&mut s, Instant::now() + Duration::from_secs(2)) {
            assert_eq!(ans.status, 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "127.0.0.1 got no slot back after closing a connection"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(held);
}

/// A batch part whose body stops is a `408 request-timeout` part, exactly as a single upload
/// (it was a 400 before).
#[test]
fn a_stalled_batch_part_is_a_408_like_a_single_upload() {
    let a = Appliance::start("[http]\nbody_idle_timeout_secs = 1\n", "");
    let mut s = TcpStream::connect(addr(&a)).unwrap();
    let part = "--XYZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n";
    write!(
        s,
        "POST /v1/products/widget/sign-batch HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: 100000\r\n\r\n{part}"
    )
    .unwrap();
    s.write_all(&[0x55; 1000]).unwrap();
    // ... and then nothing.
    let ans = read_answer(&mut s, Instant::now() + Duration::from_secs(15))
        .expect("no answer within 15 s to a batch that stopped after 1000 bytes");
    assert_eq!(ans.status, 200, "{}\n{}", ans.head, ans.body);
    let v: serde_json::Value = serde_json::from_str(&ans.body).unwrap();
    let item = &v["results"][0];
    assert_eq!(item["status"], 408, "{}", ans.body);
    assert_eq!(item["body"]["code"], "request-timeout", "{}", ans.body);
}
