//! Webhooks on real agents and a real `serve`: a failed run and a host gone unreachable are
//! POSTed to a receiver on loopback, signed with HMAC-SHA256 under the secret shown once,
//! retried after the receiver's error, and each delivery recorded; managed from the command
//! line (in process and through `serve`) by the users allowed to.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::harness::{BOUND, Server};
use crate::http::{Daemon, key_of};
use crate::users::add_user;

/// A request the receiver got: its headers (names in lower case) and body.
pub(crate) struct Received {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A receiver on loopback: answers its first request 500 and the others 204, handing each to
/// the channel returned with its URL.
pub(crate) async fn receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tell, told) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut answered = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut data = Vec::new();
            let mut chunk = [0u8; 4096];
            let (headers, body) = loop {
                let n = stream.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break (Vec::new(), Vec::new());
                }
                data.extend_from_slice(&chunk[..n]);
                let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&data[..end]).to_string();
                let headers: Vec<(String, String)> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                if data.len() >= end + 4 + length {
                    break (headers, data[end + 4..end + 4 + length].to_vec());
                }
            };
            let status = if answered == 0 {
                "500 Oops"
            } else {
                "204 No Content"
            };
            answered += 1;
            let answer =
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = tell.send(Received { headers, body });
        }
    });
    (url, told)
}

/// The next request the receiver got, within the harness's bound.
pub(crate) async fn next(told: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(BOUND, told.recv())
        .await
        .expect("no delivery within the bound")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_runs_and_unreachable_hosts_are_posted_signed_retried_and_recorded() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _r1 = server.agent("r1", dir.path(), &[], "").await;
    let mut r2 = server.agent("r2", dir.path(), &[], "").await;
    server.bounded(&["ping", "--all"]).await;
    add_user(&server, "ann", &["--permission", "options,audit"]);
    add_user(&server, "vic", &["--permission", "audit"]);
    let (ann, vic) = (key_of(&server, "ann"), key_of(&server, "vic"));
    let (url, mut told) = receiver().await;

    // Added on the command line: the secret is shown once.
    let added = server.json(&[
        "webhook",
        "add",
        &url,
        "--on",
        "run-failed,host-unreachable",
    ]);
    let secret = added["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64, "{added}");
    assert_eq!(added["events"], json!(["run-failed", "host-unreachable"]));
    let listed = server.json(&["webhook", "list"]);
    assert_eq!(listed[0]["url"], url.as_str(), "{listed}");
    assert!(listed[0].get("secret").is_none(), "never listed: {listed}");
    let out = server.output(&[
        "webhook",
        "add",
        "ftp://example.com/x",
        "--on",
        "key-pending",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not an http or https URL"),
        "{}",
        crate::harness::text(&out)
    );
    let daemon = Daemon::start(&server, &[]);
    let body = json!({"url": url, "events": ["key-pending"]});
    let (status, _) = daemon
        .call(Method::POST, "/api/v1/webhooks", Some(&vic), &body)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "adding needs `options`");

    // A run fails, and a host goes down: neither a successful run nor a reachable host is told.
    server
        .bounded(&["run", "-H", "r1", "--command", "true"])
        .await;
    server
        .bounded(&["run", "-H", "r1", "--command", "exit 3"])
        .await;
    r2.stop().await;
    server.bounded(&["ping", "--host", "r2"]).await;

    // The receiver's error first: the same delivery again after the backoff, signed alike.
    let first = next(&mut told).await;
    let mut got = vec![next(&mut told).await, next(&mut told).await];
    let again = got
        .iter()
        .position(|r| r.header("x-otto-delivery") == first.header("x-otto-delivery"))
        .expect("the failed delivery was tried again");
    let retried = got.remove(again);
    assert_eq!(retried.body, first.body);
    for received in [&retried, &got[0]] {
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&received.body);
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            received.header("x-otto-signature-256"),
            format!("sha256={expected}")
        );
        assert_eq!(received.header("content-type"), "application/json");
    }
    let mut bodies: Vec<Value> = [&retried, &got[0]]
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    bodies.sort_by_key(|b| b["event"].as_str().unwrap().to_owned());
    assert_eq!(bodies[0]["event"], "host-unreachable", "{bodies:?}");
    assert_eq!(bodies[0]["host"], "r2", "{bodies:?}");
    assert_eq!(bodies[1]["event"], "run-failed", "{bodies:?}");
    assert_eq!(bodies[1]["host"], "r1", "{bodies:?}");
    assert_eq!(bodies[1]["run"]["exit_code"], 3, "{bodies:?}");
    assert_eq!(
        retried.header("x-otto-event"),
        serde_json::from_slice::<Value>(&retried.body).unwrap()["event"]
            .as_str()
            .unwrap()
    );

    // Each delivery recorded: the one retried with its first answer gone, delivered in 2.
    let deliveries = server.json(&["webhook", "deliveries"]);
    let by_id = |id: &str| {
        deliveries
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"].as_i64() == id.parse::<i64>().ok())
            .cloned()
            .unwrap()
    };
    let recorded = by_id(retried.header("x-otto-delivery"));
    assert_eq!(
        (
            &recorded["status"],
            &recorded["attempts"],
            &recorded["code"]
        ),
        (&json!("delivered"), &json!(2), &json!(204)),
        "{deliveries}"
    );
    assert_eq!(deliveries.as_array().unwrap().len(), 2, "{deliveries}");

    // Through serve: listed for `audit`, removed with `options` (not by vic), and logged.
    let elsewhere = tempfile::tempdir().unwrap();
    let through = |key: &str, args: &[&str]| {
        crate::remote::client(elsewhere.path(), &server, daemon.base(), Some(key), args)
    };
    let out = crate::remote::finish(through(
        &vic,
        &[
            "--json",
            "webhook",
            "deliveries",
            "--webhook",
            &added["id"].to_string(),
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", crate::harness::text(&out));
    let id = added["id"].to_string();
    let out = crate::remote::finish(through(&vic, &["webhook", "remove", &id])).await;
    assert_eq!(out.status.code(), Some(8), "{}", crate::harness::text(&out));
    let out = crate::remote::finish(through(&ann, &["webhook", "remove", &id])).await;
    assert!(out.status.success(), "{}", crate::harness::text(&out));
    assert_eq!(server.json(&["webhook", "list"]), json!([]));
    let logged = server.json(&["events", "--kind", "webhook-changed"]);
    let details: Vec<_> = logged
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details.len(), 2, "{logged}");
    assert!(details[1].contains("removed"), "{logged}");
    // Nothing more is told: a failure now reaches no receiver.
    server
        .bounded(&["run", "-H", "r1", "--command", "exit 4"])
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(told.try_recv().is_err());
}
