//! A client of a node's HTTP API: one typed method per route, over [`HttpClient`]; streamed
//! answers are read line by line as the validator relays them.

use meshmind_protocols::v1;
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::types::{
    Account, CertificateView, DelegateView, Economy, EvidenceView, Metagraph, PeerList,
    QueryAnswer, QueryRequest, SnapshotView, Status, StreamLine, SubmitTx, SubnetView, TxAccepted,
    Weights,
};
pub use crate::http::ClientError;
use crate::http::{HttpClient, Lines};

/// A node's HTTP API at one base address.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: HttpClient,
}

impl ApiClient {
    /// A client of the node API at `base` (`http://host:port`; a bare `host:port` is taken as http).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        Ok(Self {
            http: HttpClient::new(base)?,
        })
    }

    /// A client of the node API at `base` whose connections come from the local address `from`.
    pub fn bound_to(base: &str, from: std::net::IpAddr) -> Result<Self, ClientError> {
        Ok(Self {
            http: HttpClient::bound_to(base, from)?,
        })
    }

    /// The base address.
    pub fn base(&self) -> &str {
        self.http.base()
    }

    /// `GET path`, decoded as `T` (for routes without a method of their own).
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.http.get(path).await
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.http.post(path, body).await
    }

    /// `GET /status`.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.get("/status").await
    }

    /// `GET /peers`.
    pub async fn peers(&self) -> Result<Vec<String>, ClientError> {
        self.get("/peers").await
    }

    /// `GET /metagraph/<subnet>`.
    pub async fn metagraph(&self, subnet: u32) -> Result<Metagraph, ClientError> {
        self.get(&format!("/metagraph/{subnet}")).await
    }

    /// `GET /weights/<subnet>`.
    pub async fn weights(&self, subnet: u32) -> Result<Weights, ClientError> {
        self.get(&format!("/weights/{subnet}")).await
    }

    /// `GET /snapshots/<epoch>`.
    pub async fn snapshot(&self, epoch: u64) -> Result<SnapshotView, ClientError> {
        self.get(&format!("/snapshots/{epoch}")).await
    }

    /// `GET /certificates/<epoch>`.
    pub async fn certificate(&self, epoch: u64) -> Result<CertificateView, ClientError> {
        self.get(&format!("/certificates/{epoch}")).await
    }

    /// `GET /evidence`.
    pub async fn evidence(&self) -> Result<Vec<EvidenceView>, ClientError> {
        self.get("/evidence").await
    }

    /// `GET /accounts/<coldkey>` (`coldkey` in hex).
    pub async fn account(&self, coldkey: &str) -> Result<Account, ClientError> {
        self.get(&format!("/accounts/{coldkey}")).await
    }

    /// `GET /economy`.
    pub async fn economy(&self) -> Result<Economy, ClientError> {
        self.get("/economy").await
    }

    /// `GET /subnets`.
    pub async fn subnets(&self) -> Result<Vec<SubnetView>, ClientError> {
        self.get("/subnets").await
    }

    /// `GET /subnets/<id>`.
    pub async fn subnet(&self, id: u32) -> Result<SubnetView, ClientError> {
        self.get(&format!("/subnets/{id}")).await
    }

    /// `GET /delegates`.
    pub async fn delegates(&self) -> Result<Vec<DelegateView>, ClientError> {
        self.get("/delegates").await
    }

    /// `GET /delegates/<hotkey>`.
    pub async fn delegate(&self, hotkey: &str) -> Result<DelegateView, ClientError> {
        self.get(&format!("/delegates/{hotkey}")).await
    }

    /// `POST /v1/embeddings` for `texts` with `model` (`embed`, `<subnet>/embed`): one vector per
    /// text, in order.
    pub async fn embeddings(
        &self,
        model: &str,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>, ClientError> {
        let body = serde_json::json!({ "model": model, "input": texts });
        let answer: super::openai::EmbeddingsResponse = self.post("/v1/embeddings", &body).await?;
        let mut data = answer.data;
        data.sort_by_key(|item| item.index);
        Ok(data
            .into_iter()
            .map(|item| match item.embedding {
                super::openai::Vector::Floats(v) => v,
                // Not asked for; an empty vector compares as nothing.
                super::openai::Vector::Base64(_) => Vec::new(),
            })
            .collect())
    }

    /// `POST /tx`.
    pub async fn submit_tx(&self, tx: &v1::Transaction) -> Result<TxAccepted, ClientError> {
        let body = SubmitTx {
            tx: hex::encode(tx.encode_to_vec()),
        };
        self.post("/tx", &body).await
    }

    /// `POST /query`, answered whole.
    pub async fn query(&self, request: &QueryRequest) -> Result<QueryAnswer, ClientError> {
        let request = QueryRequest {
            stream: false,
            ..request.clone()
        };
        self.post("/query", &request).await
    }

    /// `POST /query` streamed: the answer's lines as the validator relays them.
    pub async fn query_stream(&self, request: &QueryRequest) -> Result<AnswerLines, ClientError> {
        let request = QueryRequest {
            stream: true,
            ..request.clone()
        };
        let response = self.http.post_raw("/query", &request, None).await?;
        if !response.ok() {
            return Err(response.api_error().await);
        }
        Ok(AnswerLines {
            lines: response.lines(),
        })
    }

    /// The same client, authorised for the admin routes with the node's token (its data
    /// directory's `admin.token`).
    pub fn with_admin_token(self, token: &str) -> Self {
        Self {
            http: self.http.with_bearer(token),
        }
    }

    /// `POST /admin/block` (test-only route, needs [`Self::with_admin_token`]): refuse `peers`
    /// both ways.
    pub async fn block_peers(&self, peers: Vec<String>) -> Result<serde_json::Value, ClientError> {
        self.post("/admin/block", &PeerList { peers }).await
    }

    /// `POST /admin/unblock` (test-only route, needs the admin token): lift the block on `peers`.
    pub async fn unblock_peers(
        &self,
        peers: Vec<String>,
    ) -> Result<serde_json::Value, ClientError> {
        self.post("/admin/unblock", &PeerList { peers }).await
    }
}

/// A streamed answer, line by line.
#[derive(Debug)]
pub struct AnswerLines {
    lines: Lines,
}

impl AnswerLines {
    /// The next line of the answer, or `None` once it ended.
    pub async fn next(&mut self) -> Option<Result<StreamLine, ClientError>> {
        loop {
            let line = match self.lines.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            if line.trim().is_empty() {
                continue;
            }
            return Some(
                serde_json::from_str(&line).map_err(|source| ClientError::Decode {
                    url: self.lines.url().to_string(),
                    source,
                }),
            );
        }
    }
}
