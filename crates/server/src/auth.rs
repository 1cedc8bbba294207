//! Authentication from the application's own stack: its middleware puts an [`Identity`] in the
//! request's extensions (or a [`Refusal`]); the durable endpoint reads it. A session belongs to
//! the identity that created it: only the same identity may resume it.
//!
//! A browser cannot read the HTTP status of a refused WebSocket handshake (it sees 1006 and would
//! retry forever), so a refusal is delivered inside the WebSocket: the endpoint accepts the
//! upgrade and closes at once with 4401 (credentials missing or expired: a client with a URL
//! provider fetches fresh ones once) or 4403 (invalid, or not allowed: the client stops).
//!
//! [`TokenAuthLayer`] is the built-in check (a fixed table of secret tokens, read from the
//! `access_token` query parameter, the `durable_ws_token` cookie or `Authorization: Bearer`), as
//! a tower layer: WebSocket handshakes get the close codes above, other requests 401/403.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Query;
use axum::http::header::{AUTHORIZATION, COOKIE, UPGRADE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use durable_ws_core::close_code;

/// The query parameter carrying an access token.
pub const TOKEN_QUERY_PARAMETER: &str = "access_token";
/// The cookie carrying an access token.
pub const TOKEN_COOKIE: &str = "durable_ws_token";

/// Who a connection belongs to. A session is bound to the identity that created it: only the
/// same identity may resume it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Identity(Option<Arc<str>>);

impl Identity {
    /// The identity of every client when authentication is off.
    pub fn anonymous() -> Identity {
        Identity(None)
    }

    /// A named identity.
    pub fn named(name: impl Into<Arc<str>>) -> Identity {
        Identity(Some(name.into()))
    }

    /// The name, `None` for the anonymous identity.
    pub fn name(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// The anonymous identity stands for every unauthenticated client: no per-identity quota.
impl durable_ws_core::server::Owner for Identity {
    fn has_quota(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name().unwrap_or("anonymous"))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({self})")
    }
}

/// Why a handshake was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The request carries no credentials (HTTP 401).
    #[error("missing credentials")]
    Missing,
    /// The credentials are not valid (HTTP 403).
    #[error("invalid credentials")]
    Invalid,
}

impl AuthError {
    /// The HTTP status a plain HTTP request is refused with.
    pub fn status(self) -> StatusCode {
        match self {
            AuthError::Missing => StatusCode::UNAUTHORIZED,
            AuthError::Invalid => StatusCode::FORBIDDEN,
        }
    }
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Refusal {
        match error {
            AuthError::Missing => Refusal::unauthorized("missing credentials"),
            AuthError::Invalid => Refusal::forbidden("invalid credentials"),
        }
    }
}

/// A handshake the application refuses, put in the request's extensions by its middleware: the
/// durable endpoint accepts the upgrade and closes at once with `code` and `reason`, which a
/// browser client can read (an HTTP status it cannot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The close code: 4401 or 4403 (any 4400–4499 code is terminal for the client).
    pub code: u16,
    /// Why, for the user (at most 123 bytes are sent).
    pub reason: Cow<'static, str>,
}

impl Refusal {
    /// 4401: credentials missing or expired. A client whose URL provider fetches credentials
    /// tries once more with fresh ones, then stops.
    pub fn unauthorized(reason: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal { code: close_code::UNAUTHORIZED, reason: reason.into() }
    }

    /// 4403: credentials invalid, or this identity is not allowed here. The client stops.
    pub fn forbidden(reason: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal { code: close_code::FORBIDDEN, reason: reason.into() }
    }
}

/// Decides who a request comes from (used by [`TokenAuthLayer`]); it must not block (no I/O).
pub trait Authenticator: Send + Sync + fmt::Debug + 'static {
    /// The identity of the request's client, or why it is refused.
    fn authenticate(&self, request: &Parts) -> Result<Identity, AuthError>;
}

/// The token a request carries: the `access_token` query parameter, else the
/// `durable_ws_token` cookie, else an `Authorization: Bearer` header.
pub fn request_token(request: &Parts) -> Option<String> {
    let from_query = Query::<Vec<(String, String)>>::try_from_uri(&request.uri)
        .ok()
        .and_then(|Query(pairs)| pairs.into_iter().find(|(name, _)| name == TOKEN_QUERY_PARAMETER))
        .map(|(_, value)| value);
    let from_cookie = || {
        request
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|header| header.to_str().ok())
            .flat_map(|header| header.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == TOKEN_COOKIE)
            .map(|(_, value)| value.trim_matches('"').to_owned())
    };
    let from_bearer = || {
        let header = request.headers.get(AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = header.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
    };
    from_query.or_else(from_cookie).or_else(from_bearer)
}

/// A fixed table of secret tokens, each naming an identity (`--auth-token NAME=SECRET`).
#[derive(Default)]
pub struct TokenAuthenticator {
    tokens: Vec<(Identity, Vec<u8>)>,
}

/// A token table entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `NAME=SECRET`.
    #[error("auth token must be NAME=SECRET")]
    Format,
    /// The name is empty.
    #[error("auth token name is empty")]
    EmptyName,
    /// The secret is empty.
    #[error("auth token secret for {0:?} is empty")]
    EmptySecret(String),
    /// Two names share one secret (it could not tell them apart).
    #[error("auth token secret for {0:?} is already used by another name")]
    DuplicateSecret(String),
}

impl TokenAuthenticator {
    /// An authenticator accepting `(name, secret)` pairs.
    pub fn new<N: Into<String>, S: Into<String>>(tokens: impl IntoIterator<Item = (N, S)>) -> Result<Self, TokenError> {
        let mut table = Vec::new();
        let mut secrets = HashSet::new();
        for (name, secret) in tokens {
            let (name, secret) = (name.into(), secret.into());
            if name.is_empty() {
                return Err(TokenError::EmptyName);
            }
            if secret.is_empty() {
                return Err(TokenError::EmptySecret(name));
            }
            if !secrets.insert(secret.clone()) {
                return Err(TokenError::DuplicateSecret(name));
            }
            table.push((Identity::named(name), secret.into_bytes()));
        }
        Ok(TokenAuthenticator { tokens: table })
    }

    /// Parses `NAME=SECRET` (the secret may contain `=`; spaces around either are dropped).
    pub fn parse_entry(entry: &str) -> Result<(String, String), TokenError> {
        let (name, secret) = entry.split_once('=').ok_or(TokenError::Format)?;
        Ok((name.trim().to_owned(), secret.trim().to_owned()))
    }

    /// The identity a token names.
    fn identity_of(&self, token: &[u8]) -> Option<&Identity> {
        // Every entry is compared in full, so the time taken tells nothing about the secrets.
        let mut found = None;
        for (identity, secret) in &self.tokens {
            if constant_time_eq(secret, token) && found.is_none() {
                found = Some(identity);
            }
        }
        found
    }
}

impl Authenticator for TokenAuthenticator {
    fn authenticate(&self, request: &Parts) -> Result<Identity, AuthError> {
        let token = request_token(request).ok_or(AuthError::Missing)?;
        self.identity_of(token.as_bytes()).cloned().ok_or(AuthError::Invalid)
    }
}

impl fmt::Debug for TokenAuthenticator {
    /// Names only: secrets never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuthenticator")
            .field("names", &self.tokens.iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>())
            .finish()
    }
}

/// A tower layer that authenticates every request with an [`Authenticator`]: it puts the
/// [`Identity`] in the request's extensions; a refused WebSocket handshake goes on with a
/// [`Refusal`] (closed with 4401/4403 by the durable endpoint), any other refused request is
/// answered 401/403.
#[derive(Clone, Debug)]
pub struct TokenAuthLayer {
    authenticator: Arc<dyn Authenticator>,
}

impl TokenAuthLayer {
    /// Authenticates with `authenticator`.
    pub fn new(authenticator: impl Authenticator) -> Self {
        TokenAuthLayer { authenticator: Arc::new(authenticator) }
    }

    /// Authenticates with a shared authenticator.
    pub fn from_arc(authenticator: Arc<dyn Authenticator>) -> Self {
        TokenAuthLayer { authenticator }
    }
}

impl<S> tower_layer::Layer<S> for TokenAuthLayer {
    type Service = TokenAuth<S>;

    fn layer(&self, inner: S) -> TokenAuth<S> {
        TokenAuth { inner, authenticator: self.authenticator.clone() }
    }
}

/// The service of [`TokenAuthLayer`].
#[derive(Clone, Debug)]
pub struct TokenAuth<S> {
    inner: S,
    authenticator: Arc<dyn Authenticator>,
}

impl<S> tower_service::Service<Request<Body>> for TokenAuth<S>
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
        let (mut parts, body) = request.into_parts();
        match self.authenticator.authenticate(&parts) {
            Ok(identity) => {
                parts.extensions.insert(identity);
            }
            Err(error) => {
                tracing::warn!(path = parts.uri.path(), %error, "authentication failed");
                if !is_websocket_upgrade(&parts) {
                    let mut response = (error.status(), format!("{error}\n")).into_response();
                    if error == AuthError::Missing {
                        response
                            .headers_mut()
                            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"durable-ws\""));
                    }
                    return Box::pin(async move { Ok(response) });
                }
                parts.extensions.insert(Refusal::from(error));
            }
        }
        Box::pin(self.inner.call(Request::from_parts(parts, body)))
    }
}

fn is_websocket_upgrade(parts: &Parts) -> bool {
    parts
        .headers
        .get(UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

/// Equality whose time depends on the lengths only, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_token_comes_from_the_query_the_cookie_or_a_bearer_header() {
        assert_eq!(request_token(&parts("/echo?x=1&access_token=a%2Bb", &[])), Some("a+b".into()));
        assert_eq!(
            request_token(&parts("/echo", &[("cookie", "theme=dark; durable_ws_token=\"s3\"")])),
            Some("s3".into())
        );
        assert_eq!(request_token(&parts("/echo", &[("authorization", "Bearer  tok ")])), Some("tok".into()));
        let both = parts("/echo?access_token=q", &[("cookie", "durable_ws_token=c")]);
        assert_eq!(request_token(&both), Some("q".into()), "the query wins");
        assert_eq!(
            request_token(&parts("/echo?other=1", &[("cookie", "durable_ws_tokenx=1"), ("authorization", "Basic x")])),
            None
        );
    }

    #[test]
    fn tokens_map_to_names_and_refusals_to_401_or_403() {
        let auth = TokenAuthenticator::new([("alice", "a-secret"), ("bob", "b=secret")]).unwrap();
        assert_eq!(auth.authenticate(&parts("/echo?access_token=a-secret", &[])), Ok(Identity::named("alice")));
        assert_eq!(auth.authenticate(&parts("/echo?access_token=b%3Dsecret", &[])), Ok(Identity::named("bob")));
        assert_eq!(auth.authenticate(&parts("/echo?access_token=a-secre", &[])), Err(AuthError::Invalid));
        assert_eq!(auth.authenticate(&parts("/echo", &[])), Err(AuthError::Missing));
        assert_eq!(AuthError::Missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(AuthError::Invalid.status(), StatusCode::FORBIDDEN);
        assert!(!format!("{auth:?}").contains("secret"), "{auth:?}");
    }

    #[test]
    fn only_named_identities_have_a_session_quota() {
        use durable_ws_core::server::Owner;
        assert!(Identity::named("ann").has_quota());
        assert!(!Identity::anonymous().has_quota(), "anonymous is everyone without authentication");
    }

    #[test]
    fn bad_tables_are_refused() {
        assert_eq!(TokenAuthenticator::parse_entry("bob=x=y"), Ok(("bob".into(), "x=y".into())));
        assert_eq!(TokenAuthenticator::parse_entry("bob"), Err(TokenError::Format));
        assert_eq!(TokenAuthenticator::new([("", "x")]).err(), Some(TokenError::EmptyName));
        assert_eq!(TokenAuthenticator::new([("a", "")]).err(), Some(TokenError::EmptySecret("a".into())));
        assert_eq!(
            TokenAuthenticator::new([("a", "x"), ("b", "x")]).err(),
            Some(TokenError::DuplicateSecret("b".into()))
        );
    }
}
