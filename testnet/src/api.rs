//! The nodes' HTTP APIs as the testnet reads them: the node's own client and response types, run
//! through the namespace gateway when the testnet lives in network namespaces, every call bounded
//! in time (a paused node never answers).

use std::future::Future;
use std::time::Duration;

use meshmind_node::api::client::{ApiClient, ClientError};

/// How long one status-like call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a call to a node's API gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The node did not answer within the time given.
    #[error("no answer in {0:?} (is it paused or down?)")]
    Timeout(Duration),
    /// The call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The namespace gateway is gone.
    #[error("{0}")]
    Gateway(String),
}

/// Runs `call` against the API at `api` (`host:port`) within `timeout`.
pub async fn call<T, F, Fut>(api: &str, timeout: Duration, call: F) -> Result<T, CallError>
where
    T: Send + 'static,
    F: FnOnce(ApiClient) -> Fut,
    Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
{
    call_with(ApiClient::new(api)?, timeout, call).await
}

/// Runs `call` with `client` within `timeout`.
pub async fn call_with<T, F, Fut>(
    client: ApiClient,
    timeout: Duration,
    call: F,
) -> Result<T, CallError>
where
    T: Send + 'static,
    F: FnOnce(ApiClient) -> Fut,
    Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
{
    let work = call(client);
    let answer = tokio::time::timeout(timeout, crate::netns::within(work))
        .await
        .map_err(|_| CallError::Timeout(timeout))?;
    Ok(answer.map_err(|e| CallError::Gateway(e.to_string()))??)
}

/// Like [`call`] with [`CALL_TIMEOUT`], `None` on any failure: for status reads.
pub async fn read<T, F, Fut>(api: &str, get: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce(ApiClient) -> Fut,
    Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
{
    call(api, CALL_TIMEOUT, get).await.ok()
}
