//! Which pages may open a WebSocket to the server (RFC 6455 §10.2): the `Origin` header a
//! browser sends with the handshake, checked against an [`OriginPolicy`].
//!
//! Only browsers send `Origin`, and only browsers can be tricked into connecting on a user's
//! behalf (cross-site WebSocket hijacking), so a handshake without one is always let through:
//! non-browser clients can claim any origin anyway and are held off by authentication.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::header::{HOST, ORIGIN};
use axum::http::{Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::durable::Durable;
use crate::stats::Counters;

/// Origins allowed to open a WebSocket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OriginPolicy {
    /// Pages served from the host the server listens on, any scheme and port. The `Host` header
    /// is never trusted for it: a DNS-rebinding page (the attacker's name, resolving to the
    /// server's address) sends a `Host` that matches its `Origin`.
    /// - Listening on a loopback address: every loopback name counts as that host
    ///   (`localhost`, `*.localhost`, `127.0.0.0/8`, `::1`), and nothing else does.
    /// - Listening on a specific address: the page's host must be that address (an IP literal).
    /// - Listening on every interface (`0.0.0.0`, `::`): a loopback name, or the IP literal the
    ///   client connected to (the `Host` header's, when it is an IP address: a rebinding page's
    ///   origin is a name, never an address).
    ///
    /// A page from a DNS name needs [`PublicHosts`](Self::PublicHosts).
    #[default]
    SameHost,
    /// [`SameHost`](Self::SameHost), and pages whose host is one of these names (any scheme and
    /// port; compared without case; `--public-host`): the names the server is reached by.
    PublicHosts(Vec<String>),
    /// Every origin (`--allowed-origin '*'`).
    Any,
    /// Exactly these origins (`scheme://host[:port]`, compared without case).
    List(Vec<String>),
}

/// An `--allowed-origin` value that is not `*` nor `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allowed origin {0:?} must be '*' or scheme://host[:port] (no path)")]
pub struct InvalidOrigin(pub String);

impl OriginPolicy {
    /// The policy for a list of `--allowed-origin` values: none means [`SameHost`](Self::SameHost),
    /// any `*` means [`Any`](Self::Any).
    pub fn from_allowed(allowed: &[String]) -> Result<OriginPolicy, InvalidOrigin> {
        if allowed.is_empty() {
            return Ok(OriginPolicy::SameHost);
        }
        if allowed.iter().any(|origin| origin == "*") {
            return Ok(OriginPolicy::Any);
        }
        let mut origins = Vec::with_capacity(allowed.len());
        for origin in allowed {
            let normalized = normalize(origin);
            match normalized.parse::<Uri>() {
                Ok(uri)
                    if uri.scheme().is_some() && uri.host().is_some() && uri.path() == "/" && uri.query().is_none() => {
                }
                _ => return Err(InvalidOrigin(origin.clone())),
            }
            origins.push(normalized);
        }
        Ok(OriginPolicy::List(origins))
    }

    /// [`SameHost`](Self::SameHost) or, with names, [`PublicHosts`](Self::PublicHosts) (names
    /// lowercased, IPv6 brackets removed, blanks dropped).
    pub fn same_host_or<S: AsRef<str>>(public_hosts: &[S]) -> OriginPolicy {
        let names: Vec<String> =
            public_hosts.iter().map(|name| bare_host(name.as_ref().trim())).filter(|name| !name.is_empty()).collect();
        if names.is_empty() {
            OriginPolicy::SameHost
        } else {
            OriginPolicy::PublicHosts(names)
        }
    }

    /// Whether a handshake with this `Origin` header (`None`: no header) may proceed, on a
    /// server listening on `listen` that the client reached as `host` (the `Host` header).
    pub fn allows(&self, origin: Option<&str>, listen: SocketAddr, host: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        let public_hosts: &[String] = match self {
            OriginPolicy::Any => return true,
            OriginPolicy::List(origins) => return origins.iter().any(|allowed| *allowed == normalize(origin)),
            OriginPolicy::SameHost => &[],
            OriginPolicy::PublicHosts(names) => names,
        };
        // `Origin: null` (sandboxed frames, file pages) has no host and is refused.
        let Some(origin_host) = origin.parse::<Uri>().ok().and_then(|uri| uri.host().map(bare_host)) else {
            return false;
        };
        if public_hosts.iter().any(|name| bare_host(name) == origin_host) {
            return true;
        }
        let listen_ip = listen.ip();
        let origin_ip = origin_host.parse::<IpAddr>().ok();
        if listen_ip.is_loopback() {
            is_loopback_name(&origin_host)
        } else if listen_ip.is_unspecified() {
            // A page's origin is an IP literal only if the browser really loaded it from that
            // address, so an address in both Origin and Host is the server's own.
            let reached_ip = || {
                host.and_then(|host| host.parse::<axum::http::uri::Authority>().ok())
                    .and_then(|a| bare_host(a.host()).parse::<IpAddr>().ok())
            };
            is_loopback_name(&origin_host)
                || origin_ip
                    .is_some_and(|ip| reached_ip().is_some_and(|reached| reached.to_canonical() == ip.to_canonical()))
        } else {
            origin_ip.is_some_and(|ip| ip.to_canonical() == listen_ip.to_canonical())
        }
    }
}

/// A tower layer that refuses (HTTP 403, before any upgrade) requests whose `Origin` the
/// policy does not allow: cross-site WebSocket hijacking is an attack, not a user to inform.
/// Requests without an `Origin` (non-browser clients) pass.
#[derive(Clone, Debug)]
pub struct OriginLayer {
    policy: Arc<OriginPolicy>,
    listen: SocketAddr,
    durable: Option<Durable>,
}

impl OriginLayer {
    /// Checks against `policy`, for a server listening on `listen` (for [`OriginPolicy::SameHost`]).
    pub fn new(policy: OriginPolicy, listen: SocketAddr) -> Self {
        OriginLayer { policy: Arc::new(policy), listen, durable: None }
    }

    /// Also counts refusals in `durable`'s [`Stats`](crate::Stats) (`origin_rejections`).
    pub fn counted_in(mut self, durable: &Durable) -> Self {
        self.durable = Some(durable.clone());
        self
    }
}

impl<S> tower_layer::Layer<S> for OriginLayer {
    type Service = OriginCheck<S>;

    fn layer(&self, inner: S) -> OriginCheck<S> {
        OriginCheck { inner, layer: self.clone() }
    }
}

/// The service of [`OriginLayer`].
#[derive(Clone, Debug)]
pub struct OriginCheck<S> {
    inner: S,
    layer: OriginLayer,
}

impl<S> tower_service::Service<Request<Body>> for OriginCheck<S>
where
    S: tower_service::Service<Request<Body>, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // A header that is not visible ASCII is no origin at all (refused unless any is allowed).
        let origin = request.headers().get(ORIGIN).map(|value| value.to_str().unwrap_or(""));
        let host = request.headers().get(HOST).and_then(|value| value.to_str().ok()).or(request.uri().host());
        if !self.layer.policy.allows(origin, self.layer.listen, host) {
            tracing::warn!(
                origin = origin.unwrap_or_default(),
                path = request.uri().path(),
                "request refused: origin not allowed"
            );
            if let Some(durable) = &self.layer.durable {
                Counters::add(&durable.inner.counters.origin_rejections, 1);
            }
            return Box::pin(async { Ok((StatusCode::FORBIDDEN, "origin not allowed\n").into_response()) });
        }
        Box::pin(self.inner.call(request))
    }
}

/// Lowercase, without a trailing slash.
fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// A URI host in lowercase, IPv6 brackets removed.
fn bare_host(host: &str) -> String {
    host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase()
}

fn is_loopback_name(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn same_host_on_loopback_allows_loopback_pages_only() {
        let policy = OriginPolicy::SameHost;
        let listen = addr("127.0.0.1:8080");
        for origin in ["http://127.0.0.1:8080", "http://localhost:3000", "https://app.localhost", "http://[::1]:9"] {
            assert!(policy.allows(Some(origin), listen, Some("127.0.0.1:8080")), "{origin}");
        }
        for origin in ["http://evil.example", "http://127.evil.example", "null", "", "not a url"] {
            assert!(!policy.allows(Some(origin), listen, Some("127.0.0.1:8080")), "{origin}");
        }
        // DNS rebinding: the attacker's name resolves to 127.0.0.1, so Host matches Origin.
        assert!(!policy.allows(Some("http://rebind.example:8080"), listen, Some("rebind.example:8080")));
        assert!(policy.allows(None, listen, None), "non-browser clients send no Origin");
    }

    #[test]
    fn same_host_elsewhere_never_trusts_the_host_header_for_a_name() {
        let policy = OriginPolicy::SameHost;
        let specific = addr("192.0.2.7:80");
        assert!(policy.allows(Some("http://192.0.2.7"), specific, None));
        assert!(policy.allows(Some("http://192.0.2.7:3000"), specific, Some("192.0.2.7")), "any port");
        // DNS rebinding: chat.example (the attacker's name) resolves to 192.0.2.7.
        assert!(!policy.allows(Some("https://chat.example"), specific, Some("chat.example")));
        assert!(!policy.allows(Some("http://localhost"), specific, Some("localhost")), "not listening on loopback");
        assert!(!policy.allows(Some("http://192.0.2.8"), specific, Some("192.0.2.8")));
        let every = addr("[::]:80");
        assert!(
            !policy.allows(Some("http://Chat.Example:8080"), every, Some("chat.example:80")),
            "a name needs --public-host"
        );
        assert!(
            policy.allows(Some("http://198.51.100.4:8080"), every, Some("198.51.100.4")),
            "an address in Origin and Host"
        );
        assert!(policy.allows(Some("http://[2001:db8::1]"), every, Some("[2001:db8::1]:80")));
        assert!(!policy.allows(Some("http://198.51.100.4"), every, Some("198.51.100.5")));
        assert!(!policy.allows(Some("http://198.51.100.4"), every, None));
        assert!(
            policy.allows(Some("http://localhost:3000"), every, Some("chat.example")),
            "loopback pages of the machine itself"
        );
        assert!(policy.allows(Some("http://127.0.0.1:3000"), addr("0.0.0.0:80"), None));
    }

    #[test]
    fn public_hosts_admit_their_names_on_any_bind() {
        let policy = OriginPolicy::same_host_or(&["Chat.Example", " ", "[2001:DB8::2]"]);
        assert_eq!(policy, OriginPolicy::PublicHosts(vec!["chat.example".into(), "2001:db8::2".into()]));
        assert_eq!(OriginPolicy::same_host_or::<&str>(&[]), OriginPolicy::SameHost);
        for listen in [addr("0.0.0.0:443"), addr("192.0.2.7:443"), addr("127.0.0.1:8080")] {
            assert!(policy.allows(Some("https://chat.example"), listen, Some("whatever")), "{listen}");
            assert!(policy.allows(Some("http://CHAT.example:8080"), listen, None), "{listen}");
            assert!(policy.allows(Some("http://[2001:db8::2]:8080"), listen, None), "{listen}");
            assert!(!policy.allows(Some("https://evil.example"), listen, Some("evil.example")), "{listen}");
            assert!(!policy.allows(Some("https://sub.chat.example"), listen, Some("sub.chat.example")), "{listen}");
            assert!(!policy.allows(Some("null"), listen, None), "{listen}");
        }
        // Otherwise as SameHost.
        assert!(policy.allows(Some("http://localhost:3000"), addr("127.0.0.1:8080"), None));
        assert!(policy.allows(Some("http://192.0.2.7"), addr("192.0.2.7:443"), None));
        assert!(!policy.allows(Some("http://localhost"), addr("192.0.2.7:443"), None));
    }

    #[test]
    fn lists_match_exact_origins_and_reject_bad_entries() {
        let policy =
            OriginPolicy::from_allowed(&["https://Chat.example/".into(), "http://localhost:3000".into()]).unwrap();
        let listen = addr("127.0.0.1:8080");
        assert!(policy.allows(Some("https://chat.example"), listen, None));
        assert!(policy.allows(Some("http://localhost:3000"), listen, None));
        assert!(!policy.allows(Some("http://localhost:3001"), listen, None));
        assert!(!policy.allows(Some("http://chat.example"), listen, None), "scheme matters");
        assert_eq!(OriginPolicy::from_allowed(&[]), Ok(OriginPolicy::SameHost));
        assert_eq!(OriginPolicy::from_allowed(&["http://a".into(), "*".into()]), Ok(OriginPolicy::Any));
        for bad in ["chat.example", "https://chat.example/path", "http://", "https://a?b=c"] {
            assert_eq!(OriginPolicy::from_allowed(&[bad.into()]), Err(InvalidOrigin(bad.into())), "{bad}");
        }
    }
}
