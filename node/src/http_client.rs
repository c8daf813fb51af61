//! A minimal HTTP/1.1 client for local services (a node's API, a local model server): one request
//! per connection, `Connection: close`, bounded response size and time. No TLS, no redirects.

use anyhow::Context as _;

/// Connects to `base` (`http://host:port`) and sends one request (JSON body, `Connection: close`).
async fn send(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let authority = base
        .strip_prefix("http://")
        .context("the address must start with http://")?
        .trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    Ok(stream)
}

/// One HTTP/1.1 exchange with `base` (`http://host:port`): returns the status code and the body.
pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    use tokio::io::AsyncReadExt;
    let stream = send(base, method, path, body).await?;
    let mut response = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.take(16 << 20).read_to_end(&mut response),
    )
    .await
    .context("no answer in 30 s")??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP status line")?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok((status, body))
}

/// A piece of a response read as it arrives: the head first, then the body line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Status code and content type.
    Head {
        /// The status code.
        status: u16,
        /// The `Content-Type` header (lower case), empty if none.
        content_type: String,
    },
    /// One line of the body, without its line ending.
    Line(String),
}

/// Longest body line, and the most body, [`stream_lines`] reads.
const MAX_LINE: usize = 4 << 20;
const MAX_STREAMED: usize = 16 << 20;
/// Longest wait for the next bytes of a streamed response.
const IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// One HTTP/1.1 exchange with `base` whose response is handed to `out` as it arrives: the head,
/// then each body line (chunked or not). Returns when the body ends, or early if `out` closes.
pub async fn stream_lines(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    out: tokio::sync::mpsc::Sender<Part>,
) -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let stream = send(base, method, path, body).await?;
    let mut reader = BufReader::new(stream.take(MAX_STREAMED as u64));
    let mut line = String::new();
    let read_line = async |reader: &mut BufReader<_>, line: &mut String| {
        line.clear();
        let n = tokio::time::timeout(IDLE, reader.read_line(line))
            .await
            .context("no data in 30 s")??;
        anyhow::ensure!(n > 0, "the response ended early");
        Ok::<(), anyhow::Error>(())
    };
    read_line(&mut reader, &mut line).await?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP status line")?;
    let (mut content_type, mut chunked) = (String::new(), false);
    loop {
        read_line(&mut reader, &mut line).await?;
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(value) = header.strip_prefix("content-type:") {
            content_type = value.trim().to_string();
        }
        if header.starts_with("transfer-encoding:") && header.contains("chunked") {
            chunked = true;
        }
    }
    if out
        .send(Part::Head {
            status,
            content_type,
        })
        .await
        .is_err()
    {
        return Ok(());
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let data: Vec<u8> = if chunked {
            read_line(&mut reader, &mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .context("malformed chunk size")?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0u8; size];
            tokio::time::timeout(IDLE, reader.read_exact(&mut chunk))
                .await
                .context("no data in 30 s")??;
            read_line(&mut reader, &mut line).await?;
            chunk
        } else {
            let n = tokio::time::timeout(IDLE, reader.read(&mut buf))
                .await
                .context("no data in 30 s")??;
            if n == 0 {
                break;
            }
            buf[..n].to_vec()
        };
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let rest = pending.split_off(end + 1);
            let text = String::from_utf8_lossy(&pending)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            pending = rest;
            if out.send(Part::Line(text)).await.is_err() {
                return Ok(());
            }
        }
        anyhow::ensure!(
            pending.len() <= MAX_LINE,
            "a response line over {MAX_LINE} bytes"
        );
    }
    if !pending.is_empty() {
        let text = String::from_utf8_lossy(&pending)
            .trim_end_matches('\r')
            .to_string();
        let _ = out.send(Part::Line(text)).await;
    }
    Ok(())
}

/// Decodes a chunked transfer-encoded body.
fn dechunk(mut body: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").context("malformed chunk header")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .context("malformed chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).context("truncated chunk")?;
        out.push_str(chunk);
        body = rest
            .get(size..)
            .and_then(|r| r.strip_prefix("\r\n"))
            .context("malformed chunk end")?;
    }
}

/// Splits `http://host:port/path` into the base and the path (`/` if none).
pub fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .context("the URL must start with http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((format!("http://{authority}"), path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_and_urls() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                .ok()
                .as_deref(),
            Some("hello world")
        );
        assert!(dechunk("zz\r\n").is_err());
        assert_eq!(
            split_url("http://127.0.0.1:8000/infer").ok(),
            Some(("http://127.0.0.1:8000".to_string(), "/infer".to_string()))
        );
        assert_eq!(
            split_url("http://h:1").ok().map(|p| p.1),
            Some("/".to_string())
        );
        assert!(split_url("https://h").is_err());
    }
}
