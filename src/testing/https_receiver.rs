//! A small HTTPS server on 127.0.0.1 that records every POST (its
//! `Authorization` header and body) and answers 200: the factory receiver
//! `sprout ibi --report-url` talks to in tests. TLS is OpenSSL with a
//! self-signed certificate the client must be told to trust.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::X509;

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

pub struct HttpsReceiver {
    port: u16,
    ca_pem: Vec<u8>,
    got: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl HttpsReceiver {
    pub fn start() -> Result<Self> {
        let (cert, key) = super::registry::self_signed_localhost()?;
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
        b.set_certificate(X509::from_pem(&cert)?.as_ref())?;
        b.set_private_key(PKey::private_key_from_pem(&key)?.as_ref())?;
        let acceptor = Arc::new(b.build());
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the receiver")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let (a, g) = (acceptor.clone(), g.clone());
                        std::thread::spawn(move || {
                            let _ = tcp.set_nonblocking(false);
                            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                            if let Ok(tls) = a.accept(tcp) {
                                let _ = serve(tls, &g);
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(HttpsReceiver {
            port,
            ca_pem: cert,
            got,
            stop,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// The certificate to trust (it is its own CA).
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

impl Drop for HttpsReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Requests on one connection until it closes.
fn serve<S: Read + Write>(stream: S, got: &Mutex<Vec<Received>>) -> Result<()> {
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut len = 0usize;
        let mut authorization = None;
        loop {
            let mut h = String::new();
            r.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    "authorization" => authorization = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        if let Ok(mut g) = got.lock() {
            g.push(Received {
                method,
                path,
                authorization,
                body,
            });
        }
        let w = r.get_mut();
        w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")?;
        w.flush()?;
    }
}
