//! A small JSON client for the fieldops HTTP API (API.md): bearer-token login, an optional
//! `Idempotency-Key` on every write, and retries of transport errors, 429 and 5xx answers.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// An answer: its status and its JSON body (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
}

impl Resp {
    /// One-line description for messages.
    pub fn describe(&self) -> String {
        let err = &self.body["error"];
        if err.is_object() {
            format!(
                "{} {}: {} (field {})",
                self.status.as_u16(),
                err["code"].as_str().unwrap_or("?"),
                err["message"].as_str().unwrap_or(""),
                err["field"].as_str().unwrap_or("-")
            )
        } else {
            let text = self.body.to_string();
            format!("{} {}", self.status.as_u16(), &text[..text.len().min(300)])
        }
    }

    /// Fail unless the status is 2xx.
    pub fn ok(self, what: &str) -> Result<Value> {
        if self.status.is_success() {
            Ok(self.body)
        } else {
            bail!("{what}: {}", self.describe())
        }
    }
}

/// A client bound to one service base URL, logged in or not.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// The logged-in user (`id`, `username`, `role`, `city_id`, `team_id`).
    pub user: Value,
}

impl Api {
    pub fn new(base: &str) -> Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).connect_timeout(Duration::from_secs(5)).build()?;
        Ok(Self { http, base: base.trim_end_matches('/').to_string(), token: None, user: Value::Null })
    }

    /// `POST /api/v1/auth/login`; keeps the token for later calls.
    pub async fn login(mut self, username: &str, password: &str) -> Result<Self> {
        let body = json!({"username": username, "password": password});
        let resp = self.send(Method::POST, "/api/v1/auth/login", Some(&body), None).await?;
        let body = resp.ok(&format!("login as {username} at {}", self.base))?;
        let token = body["token"].as_str().ok_or_else(|| anyhow!("login answer has no token"))?;
        self.token = Some(token.to_string());
        self.user = body["user"].clone();
        Ok(self)
    }

    pub async fn get(&self, path: &str) -> Result<Resp> {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Resp> {
        self.send(Method::PUT, path, Some(body), None).await
    }

    pub async fn post(&self, path: &str, body: &Value, idempotency_key: &str) -> Result<Resp> {
        self.send(Method::POST, path, Some(body), Some(idempotency_key)).await
    }

    /// POST a binary body (a photo), once.
    pub async fn post_bytes(&self, path: &str, bytes: &'static [u8], content_type: &str, key: &str) -> Result<Resp> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.post(&url).header("Content-Type", content_type).header("Idempotency-Key", key);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let r = req.body(bytes).send().await.with_context(|| format!("POST {url}"))?;
        let status = r.status();
        let body = serde_json::from_slice(&r.bytes().await?).unwrap_or(Value::Null);
        Ok(Resp { status, body })
    }

    /// Send a request, retrying transport errors, 429 (honouring `Retry-After`) and 5xx
    /// up to 5 times. Writes are only retried with an idempotency key or when idempotent (PUT).
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>, idempotency_key: Option<&str>) -> Result<Resp> {
        let url = format!("{}{}", self.base, path);
        let retryable = method == Method::GET || method == Method::PUT || idempotency_key.is_some();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), &url);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            if let Some(k) = idempotency_key {
                req = req.header("Idempotency-Key", k);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let wait = match req.send().await {
                Ok(r) => {
                    let status = r.status();
                    let retry_after =
                        r.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
                    let bytes = r.bytes().await.with_context(|| format!("{method} {url}"))?;
                    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    let again = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !again || !retryable || attempt >= 5 {
                        return Ok(Resp { status, body });
                    }
                    Duration::from_secs(retry_after.unwrap_or(1).min(10))
                }
                Err(e) if retryable && attempt < 5 => {
                    eprintln!("retrying {method} {url}: {e}");
                    Duration::from_millis(500 * u64::from(attempt))
                }
                Err(e) => return Err(e).with_context(|| format!("{method} {url}")),
            };
            tokio::time::sleep(wait).await;
        }
    }
}
