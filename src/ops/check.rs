//! `ses-reputation-operator check`: the health check the chart's `helm test`
//! hook runs from a pod of its own. The operator's Service answers
//! `/readyz` with 200, and a leader holds the Lease and renewed it within
//! its duration: together, "a replica serves and one of them reconciles".

use std::time::Duration;

use axum::http::Uri;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a failed check says; each names what it looked at.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{url} is not an http:// URL with a host")]
    BadUrl { url: String },
    #[error("GET {url}: {source}")]
    Http { url: String, source: std::io::Error },
    #[error("GET {url}: no answer within {timeout:?}")]
    HttpTimeout { url: String, timeout: Duration },
    #[error("GET {url} answered {status_line:?}, not 200")]
    NotOk { url: String, status_line: String },
    #[error("reading Lease {namespace}/{name}: {source}")]
    Lease {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error("Lease {namespace}/{name} has no holder: no replica leads")]
    NoLeader { namespace: String, name: String },
    #[error(
        "Lease {namespace}/{name} held by {holder}, last renewed {ago_seconds:.0}s ago (duration {duration_seconds}s): the leader stopped renewing"
    )]
    StaleLease {
        namespace: String,
        name: String,
        holder: String,
        ago_seconds: f64,
        duration_seconds: i32,
    },
}

/// `/readyz` through `url`, then the Lease (namespace, name) if there is
/// one; the first failure wins. Returns a line saying what was found.
pub async fn check(client: Client, url: &str, lease: Option<(&str, &str)>) -> Result<String, CheckError> {
    let timeout = Duration::from_secs(10);
    let status_line = tokio::time::timeout(timeout, http_get_status(url))
        .await
        .map_err(|_| CheckError::HttpTimeout {
            url: url.to_owned(),
            timeout,
        })??;
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(CheckError::NotOk {
            url: url.to_owned(),
            status_line,
        });
    }
    let Some((lease_namespace, lease_name)) = lease else {
        return Ok(format!("{url} answered 200"));
    };
    let lease = Api::<Lease>::namespaced(client, lease_namespace)
        .get(lease_name)
        .await
        .map_err(|source| CheckError::Lease {
            namespace: lease_namespace.to_owned(),
            name: lease_name.to_owned(),
            source,
        })?;
    let holder = leader_of(&lease, jiff::Timestamp::now()).map_err(|e| e.named(lease_namespace, lease_name))?;
    Ok(format!(
        "{url} answered 200; {holder} leads (Lease {lease_namespace}/{lease_name})"
    ))
}

/// Why a Lease shows no live leader, before the Lease's name is attached.
#[derive(Debug, PartialEq)]
enum NoLiveLeader {
    NoHolder,
    Stale {
        holder: String,
        ago_seconds: f64,
        duration_seconds: i32,
    },
}

impl NoLiveLeader {
    fn named(self, namespace: &str, name: &str) -> CheckError {
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        match self {
            NoLiveLeader::NoHolder => CheckError::NoLeader { namespace, name },
            NoLiveLeader::Stale {
                holder,
                ago_seconds,
                duration_seconds,
            } => CheckError::StaleLease {
                namespace,
                name,
                holder,
                ago_seconds,
                duration_seconds,
            },
        }
    }
}

/// The holder, if it renewed within the lease's duration at `now`.
fn leader_of(lease: &Lease, now: jiff::Timestamp) -> Result<String, NoLiveLeader> {
    let spec = lease.spec.as_ref().ok_or(NoLiveLeader::NoHolder)?;
    let holder = spec
        .holder_identity
        .clone()
        .filter(|h| !h.is_empty())
        .ok_or(NoLiveLeader::NoHolder)?;
    let duration_seconds = spec.lease_duration_seconds.unwrap_or(0);
    let ago_seconds = spec
        .renew_time
        .as_ref()
        .map(|t| now.duration_since(t.0).as_secs_f64())
        .unwrap_or(f64::INFINITY);
    if ago_seconds > f64::from(duration_seconds) {
        return Err(NoLiveLeader::Stale {
            holder,
            ago_seconds,
            duration_seconds,
        });
    }
    Ok(holder)
}

/// The status line of `GET url` over plain HTTP/1.0. Written here because
/// nothing in the tree is an HTTP client (axum serves, kube's client speaks
/// only to the API server) and a probe needs only the first line.
async fn http_get_status(url: &str) -> Result<String, CheckError> {
    let bad = || CheckError::BadUrl { url: url.to_owned() };
    let uri: Uri = url.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("http") {
        return Err(bad());
    }
    let host = uri.host().ok_or_else(bad)?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let io = |source| CheckError::Http {
        url: url.to_owned(),
        source,
    };
    let mut stream = TcpStream::connect((host, port)).await.map_err(io)?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.map_err(io)?;
    let text = String::from_utf8_lossy(&answer);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: Option<&str>, renewed_ago: i64) -> Lease {
        let now = jiff::Timestamp::from_second(1_000_000).expect("a valid timestamp");
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(now - jiff::SignedDuration::from_secs(renewed_ago))),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn a_fresh_holder_leads_a_stale_or_missing_one_does_not() {
        let now = jiff::Timestamp::from_second(1_000_000).expect("a valid timestamp");
        assert_eq!(leader_of(&lease(Some("pod-a"), 3), now), Ok("pod-a".to_owned()));
        assert_eq!(leader_of(&lease(None, 3), now), Err(NoLiveLeader::NoHolder));
        assert_eq!(leader_of(&lease(Some(""), 3), now), Err(NoLiveLeader::NoHolder));
        assert_eq!(
            leader_of(&lease(Some("pod-a"), 40), now),
            Err(NoLiveLeader::Stale {
                holder: "pod-a".to_owned(),
                ago_seconds: 40.0,
                duration_seconds: 15
            })
        );
    }

    #[tokio::test]
    async fn the_status_line_of_a_local_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            let n = socket.read(&mut buf).await.expect("read");
            let asked = String::from_utf8_lossy(&buf[..n]).into_owned();
            let status = if asked.starts_with("GET /readyz HTTP/1.0") {
                "200 OK"
            } else {
                "400 Bad Request"
            };
            socket
                .write_all(format!("HTTP/1.1 {status}\r\n\r\nok").as_bytes())
                .await
                .expect("write");
        });
        let got = http_get_status(&format!("http://{addr}/readyz"))
            .await
            .expect("an answer");
        assert_eq!(got, "HTTP/1.1 200 OK");
        assert!(matches!(
            http_get_status("https://example.com/").await,
            Err(CheckError::BadUrl { .. })
        ));
    }
}
