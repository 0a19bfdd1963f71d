//! The network allow-list and, for engines without a network stack, `fetch` done by the host.

use std::fmt;

use reqwest::Url;
use serde::Deserialize;
use serde_json::{json, Value};

/// Hosts an action may reach: entries are `host` (any port) or `host:port`, as in Deno's
/// `--allow-net`. Empty (the default) allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPolicy {
    entries: Vec<(String, Option<u16>)>,
}

/// Why a URL may not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The URL does not parse or is not http(s).
    #[error("{0:?} is not an http(s) URL")]
    BadUrl(String),
    /// The host is not in the allow-list.
    #[error("network access to {0} is not allowed for Lit Actions on this node")]
    NotAllowed(String),
}

impl NetPolicy {
    /// A policy allowing exactly these entries (`host` or `host:port`).
    pub fn allow<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let entries = entries
            .into_iter()
            .map(|e| {
                let e = e.as_ref().trim().to_ascii_lowercase();
                match e.rsplit_once(':') {
                    Some((h, p)) if !h.contains(':') => match p.parse::<u16>() {
                        Ok(port) => (h.to_owned(), Some(port)),
                        Err(_) => (e.clone(), None),
                    },
                    _ => (e, None),
                }
            })
            .collect();
        Self { entries }
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in Deno's `--allow-net` syntax.
    pub fn deno_flag_value(&self) -> String {
        self.entries
            .iter()
            .map(|(h, p)| match p {
                Some(p) => format!("{h}:{p}"),
                None => h.clone(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Checks that `url` may be fetched.
    pub fn check(&self, url: &str) -> Result<Url, NetError> {
        let parsed = Url::parse(url).map_err(|_| NetError::BadUrl(url.to_owned()))?;
        self.check_url(&parsed)?;
        Ok(parsed)
    }

    fn check_url(&self, url: &Url) -> Result<(), NetError> {
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(NetError::BadUrl(url.to_string()));
        }
        let host = url
            .host_str()
            .ok_or_else(|| NetError::BadUrl(url.to_string()))?
            .to_ascii_lowercase();
        let port = url.port_or_known_default();
        let allowed = self
            .entries
            .iter()
            .any(|(h, p)| *h == host && (p.is_none() || *p == port));
        if allowed {
            Ok(())
        } else {
            Err(NetError::NotAllowed(match port {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }))
        }
    }
}

impl fmt::Display for NetPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.deno_flag_value())
    }
}

/// `fetch` performed by the host for engines that have no network stack (QuickJS).
#[derive(Clone)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct FetchArgs {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: Option<String>,
}

impl Fetcher {
    /// A client that follows redirects only within `policy`.
    pub(crate) fn new(policy: &NetPolicy) -> Result<Self, String> {
        let policy = policy.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                attempt.error("too many redirects")
            } else if let Err(e) = policy.check_url(attempt.url()) {
                attempt.error(e)
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(redirects)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client })
    }

    /// Performs the request; the body is read up to `max_body` bytes.
    pub(crate) async fn fetch(
        &self,
        policy: &NetPolicy,
        args: Value,
        max_body: usize,
    ) -> Result<Value, String> {
        let args: FetchArgs = serde_json::from_value(args).map_err(|e| e.to_string())?;
        let url = policy.check(&args.url).map_err(|e| e.to_string())?;
        let method = args.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("{method:?} is not an HTTP method"))?;
        let mut req = self.client.request(method, url);
        for (k, v) in &args.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(body) = args.body {
            req = req.body(body);
        }
        let mut resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let final_url = resp.url().to_string();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > max_body {
                return Err(format!("the response body is larger than {max_body} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(json!({
            "status": status.as_u16(),
            "statusText": status.canonical_reason().unwrap_or(""),
            "headers": headers,
            "url": final_url,
            "body": String::from_utf8_lossy(&body),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list() {
        let p = NetPolicy::allow(["example.com", "127.0.0.1:8080"]);
        assert!(p.check("https://example.com/x").is_ok());
        assert!(p.check("http://example.com:81/x").is_ok());
        assert!(p.check("http://127.0.0.1:8080/").is_ok());
        assert!(matches!(
            p.check("http://127.0.0.1:8081/"),
            Err(NetError::NotAllowed(h)) if h == "127.0.0.1:8081"
        ));
        assert!(p.check("https://evil.example.com/").is_err());
        assert!(p.check("file:///etc/passwd").is_err());
        assert!(NetPolicy::default().check("https://example.com").is_err());
        assert_eq!(p.deno_flag_value(), "example.com,127.0.0.1:8080");
    }
}
