//! HTTP calls to local JSON servers (a node's API, a model server) on reqwest: one client per base
//! address, bounded waits, bodies bounded in size and read whole or line by line as they arrive,
//! and errors that keep the server's code and message.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while reading an answer.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest whole exchange that is not streamed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes of an answer read whole, or of a streamed one in all.
pub const MAX_BODY: usize = 16 << 20;
/// Longest line of a streamed answer.
pub const MAX_LINE: usize = 4 << 20;

/// An error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong.
    pub error: ErrorBody,
}

/// The body of an error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The protocol's error code name (`MALFORMED`, `UNAVAILABLE`, `DEADLINE_EXCEEDED`, ...).
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The address is not an `http://host:port` URL.
    #[error("{address:?} is not an http:// address")]
    Address {
        /// What was given.
        address: String,
    },
    /// The exchange failed (connection refused, timed out, cut off).
    #[error("{url}")]
    Http {
        /// The URL asked.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error.
    #[error("HTTP {status}: {} ({})", .error.message, .error.code)]
    Api {
        /// The HTTP status.
        status: u16,
        /// The API's error.
        error: ErrorBody,
    },
    /// The answer is not what the route returns.
    #[error("{url}: unexpected answer")]
    Decode {
        /// The URL asked.
        url: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The answer, or a line of it, is over its bound.
    #[error("{url}: answer over {limit} bytes")]
    TooLarge {
        /// The URL asked.
        url: String,
        /// The bound.
        limit: usize,
    },
}

/// A client of one server (`http://host:port`).
#[derive(Debug, Clone)]
pub struct HttpClient {
    base: String,
    http: reqwest::Client,
    bearer: Option<String>,
}

impl HttpClient {
    /// A client of the server at `base` (`http://host:port`; a bare `host:port` is taken as http).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        Self::build(base, None)
    }

    /// A client of the server at `base` whose connections come from the local address `from`.
    pub fn bound_to(base: &str, from: std::net::IpAddr) -> Result<Self, ClientError> {
        Self::build(base, Some(from))
    }

    fn build(base: &str, from: Option<std::net::IpAddr>) -> Result<Self, ClientError> {
        let base = base.trim().trim_end_matches('/');
        let base = match base.split_once("://") {
            None => format!("http://{base}"),
            Some(("http", rest)) if !rest.is_empty() && !rest.contains('/') => base.to_string(),
            _ => {
                return Err(ClientError::Address {
                    address: base.to_string(),
                });
            }
        };
        // Local servers only: straight to the address, never through a proxy or a redirect.
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .local_address(from)
            .build()
            .map_err(|source| ClientError::Http {
                url: base.clone(),
                source,
            })?;
        Ok(Self {
            base,
            http,
            bearer: None,
        })
    }

    /// The same client sending `token` as a bearer token with every request.
    pub fn with_bearer(mut self, token: &str) -> Self {
        self.bearer = Some(token.to_string());
        self
    }

    /// A client of the server of `url` (`http://host:port/path`) and the path (`/` if none).
    pub fn for_url(url: &str) -> Result<(Self, String), ClientError> {
        let address = || ClientError::Address {
            address: url.to_string(),
        };
        let rest = url.trim().strip_prefix("http://").ok_or_else(address)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(address());
        }
        Ok((Self::new(authority)?, path.to_string()))
    }

    /// The base address.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path`, decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let mut request = self.http.get(&url).timeout(REQUEST_TIMEOUT);
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|source| ClientError::Http {
            url: url.clone(),
            source,
        })?;
        decode(Response {
            url,
            inner: response,
        })
        .await
    }

    /// `POST path` with a JSON body, decoded as `T`.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let response = self.post_raw(path, body, Some(REQUEST_TIMEOUT)).await?;
        decode(response).await
    }

    /// `POST path` with a JSON body; the answer's status and body are the caller's to read
    /// (`timeout`, if given, bounds the whole exchange).
    pub async fn post_raw<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        timeout: Option<Duration>,
    ) -> Result<Response, ClientError> {
        let url = self.url(path);
        let mut request = self.http.post(&url).json(body);
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let inner = request.send().await.map_err(|source| ClientError::Http {
            url: url.clone(),
            source,
        })?;
        Ok(Response { url, inner })
    }
}

/// An answer whose status and body are still to be read.
#[derive(Debug)]
pub struct Response {
    url: String,
    inner: reqwest::Response,
}

impl Response {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.inner.status().as_u16()
    }

    /// Whether the status is a success (2xx).
    pub fn ok(&self) -> bool {
        self.inner.status().is_success()
    }

    /// The `Content-Type` header, lower case (empty if none).
    pub fn content_type(&self) -> String {
        self.inner
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    }

    /// The whole body, up to [`MAX_BODY`] bytes.
    pub async fn bytes(mut self) -> Result<Vec<u8>, ClientError> {
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(ClientError::TooLarge {
                    url: self.url,
                    limit: MAX_BODY,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The body line by line, as it arrives.
    pub fn lines(self) -> Lines {
        Lines {
            response: self,
            pending: Vec::new(),
            scanned: 0,
            read: 0,
            done: false,
        }
    }

    /// The error an unsuccessful answer carries (the API's, or the status alone).
    pub async fn api_error(self) -> ClientError {
        let status = self.status();
        let url = self.url.clone();
        match self.bytes().await {
            Ok(body) => ClientError::Api {
                status,
                error: serde_json::from_slice::<ApiError>(&body)
                    .map(|e| e.error)
                    .unwrap_or_else(|_| ErrorBody {
                        code: "UNSPECIFIED".into(),
                        message: String::from_utf8_lossy(&body).chars().take(500).collect(),
                    }),
            },
            Err(ClientError::TooLarge { limit, .. }) => ClientError::TooLarge { url, limit },
            Err(other) => other,
        }
    }

    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, ClientError> {
        self.inner
            .chunk()
            .await
            .map_err(|source| ClientError::Http {
                url: self.url.clone(),
                source,
            })
    }
}

/// A body read line by line (without line endings), bounded by [`MAX_LINE`] per line and
/// [`MAX_BODY`] in all.
#[derive(Debug)]
pub struct Lines {
    response: Response,
    pending: Vec<u8>,
    /// How much of `pending` is known to hold no line end.
    scanned: usize,
    read: usize,
    done: bool,
}

impl Lines {
    /// The URL being read.
    pub fn url(&self) -> &str {
        &self.response.url
    }

    /// The next line, or `None` at the end of the body.
    pub async fn next_line(&mut self) -> Result<Option<String>, ClientError> {
        loop {
            let unscanned = &self.pending[self.scanned..];
            if let Some(at) = unscanned.iter().position(|&b| b == b'\n') {
                let rest = self.pending.split_off(self.scanned + at + 1);
                let line = std::mem::replace(&mut self.pending, rest);
                self.scanned = 0;
                return Ok(Some(text(&line)));
            }
            self.scanned = self.pending.len();
            if self.done {
                if self.pending.is_empty() {
                    return Ok(None);
                }
                let line = std::mem::take(&mut self.pending);
                self.scanned = 0;
                return Ok(Some(text(&line)));
            }
            match self.response.chunk().await? {
                None => self.done = true,
                Some(chunk) => {
                    self.read += chunk.len();
                    self.pending.extend_from_slice(&chunk);
                    // Over the line bound only without a line end: `scanned` covers the rest.
                    let open_line = self.pending.len() > MAX_LINE
                        && !self.pending[self.scanned..].contains(&b'\n');
                    let over = (self.read > MAX_BODY)
                        .then_some(MAX_BODY)
                        .or(open_line.then_some(MAX_LINE));
                    if let Some(limit) = over {
                        return Err(ClientError::TooLarge {
                            url: self.response.url.clone(),
                            limit,
                        });
                    }
                }
            }
        }
    }
}

fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .trim_end_matches(['\r', '\n'])
        .to_string()
}

async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, ClientError> {
    if !response.ok() {
        return Err(response.api_error().await);
    }
    let url = response.url.clone();
    let body = response.bytes().await?;
    serde_json::from_slice(&body).map_err(|source| ClientError::Decode { url, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            HttpClient::new("127.0.0.1:7410").map(|c| c.base).ok(),
            Some("http://127.0.0.1:7410".into())
        );
        assert_eq!(
            HttpClient::new("http://h:1/").map(|c| c.base).ok(),
            Some("http://h:1".into())
        );
        assert!(HttpClient::new("https://h:1").is_err());
        assert!(HttpClient::new("http://h:1/path").is_err());
        assert!(HttpClient::new("ftp://h").is_err());
        let (client, path) = HttpClient::for_url("http://127.0.0.1:8000/infer").expect("a URL");
        assert_eq!(
            (client.base(), path.as_str()),
            ("http://127.0.0.1:8000", "/infer")
        );
        let (_, path) = HttpClient::for_url("http://h:1").expect("a URL");
        assert_eq!(path, "/");
        assert!(HttpClient::for_url("https://h").is_err());
        assert!(HttpClient::for_url("http:///x").is_err());
    }
}
