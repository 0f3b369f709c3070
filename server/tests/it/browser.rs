//! The web UI in a real browser: Debian's Chromium, headless, driven through chromedriver
//! (WebDriver) by fantoccini, against a real `serve` (plain HTTP on loopback) with real local
//! agents. Runs when `/usr/bin/chromedriver` exists (Debian: chromium-driver); says SKIPPED
//! otherwise, unless `OTTO_REQUIRE_TOOLS=1` (CI) makes that a failure ([`tool_missing`]). Every
//! wait is a bounded poll for what the page must come to show; screenshots of the main pages go
//! to `target/screenshots/`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use otto_server::demo::LocalAgent;
use otto_server::keys;
use serde_json::{Value, json};
use sha2::Digest;

use crate::fake_agent::{Behaviour, Board};
use crate::harness::{BOUND, Server, agent_bin, tool_missing};
use crate::http::Daemon;
use crate::users::add_user;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// Every test user's password (as `users::add_user` gives it).
const PASSWORD: &str = "correct horse battery";

/// Whether the browser tests can run: chromedriver is installed; else SKIPPED, or a failure
/// under `OTTO_REQUIRE_TOOLS=1`.
fn available() -> bool {
    if Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    tool_missing(
        &format!("no {CHROMEDRIVER}"),
        "ci/install-toolchain.sh installs it (Debian: chromium chromium-driver)",
    );
    false
}

/// chromedriver on a free loopback port, killed when dropped, with the headless Chromium it
/// drives (its profile in a fresh temporary directory).
struct Browser {
    client: Client,
    driver: Child,
    profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        Browser::launch(&[]).await
    }

    /// A browser that takes any certificate: for `serve`'s self-signed one, in its one test.
    async fn trusting_any_certificate() -> Browser {
        Browser::launch(&["--ignore-certificate-errors"]).await
    }

    /// chromedriver and Chromium with the usual arguments and `extra`.
    async fn launch(extra: &[&str]) -> Browser {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // It says when it listens.
        let mut out = BufReader::new(driver.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("started successfully") {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "chromedriver ended");
        }
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let profile = tempfile::tempdir().unwrap();
        let profile_dir = format!("--user-data-dir={}", profile.path().display());
        let mut args = vec![
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
            &profile_dir,
        ];
        args.extend_from_slice(extra);
        // Downloads go to the profile's `downloads`, unasked.
        let downloads = profile.path().join("downloads");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                },
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        Browser {
            client,
            driver,
            profile,
        }
    }

    /// The file `name` the browser downloaded, once it is whole.
    async fn downloaded(&self, name: &str) -> Vec<u8> {
        let path = self.profile.path().join("downloads").join(name);
        let start = Instant::now();
        while !path.exists() {
            assert!(start.elapsed() < BOUND, "{name} was not downloaded");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::fs::read(path).unwrap()
    }

    /// A browser signed in as `user` at `daemon`'s web UI; and the UI's address (`…/`).
    async fn signed_in(daemon: &Daemon, user: &str) -> (Browser, String) {
        let browser = Browser::start().await;
        let url = format!("{}/", daemon.base());
        browser.sign_in(&url, user).await;
        (browser, url)
    }

    /// Opens `url`.
    async fn visit(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The host page's last error, once it says what to do under Trust, in the page's words
    /// (not the command line's).
    async fn told_under_trust(&self) -> String {
        let said = self
            .text_of("#host-last-error", |t| t.contains("under Trust"))
            .await;
        assert!(!said.contains("otto-server"), "{said}");
        said
    }

    /// Opens `url` and signs in as `user`, once the dashboard shows.
    async fn sign_in(&self, url: &str, user: &str) {
        self.sign_in_with(url, user, PASSWORD).await;
    }

    /// Opens `url` and signs in as `user` with `password`, once the dashboard shows.
    async fn sign_in_with(&self, url: &str, user: &str, password: &str) {
        self.visit(url).await;
        self.fill("#signin-name", user).await;
        // Submitted from the keyboard: Enter in the password field.
        self.fill("#signin-password", &format!("{password}\u{e007}"))
            .await;
        self.text_of("#counts", |t| t.contains("Reachable")).await;
    }

    /// The element `css`, once it is on the page.
    /// Picks the stored script `name` on the run page, runs it on `hosts` and waits for the
    /// summary of one host's success.
    async fn run_script_on_one(&self, name: &str, hosts: &str) {
        self.find("#run-script")
            .await
            .select_by_value(name)
            .await
            .unwrap();
        self.fill("#run-hosts", hosts).await;
        // Once the choice is said above the button: it does not move while it is clicked.
        self.text_of("#run-chosen", |t| !t.is_empty()).await;
        self.click("#run-start").await;
        self.text_of("#run-summary", |t| t.contains("1 succeeded, 0 failed"))
            .await;
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(BOUND)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// Types `text` into `css`, emptied first; found again if the page replaced it in
    /// between (a live page shown again after a change), a few times.
    async fn fill(&self, css: &str, text: &str) {
        let stale = |e: &fantoccini::error::CmdError| {
            matches!(e, fantoccini::error::CmdError::Standard(e)
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference)
        };
        for _ in 0..3 {
            let input = self.find(css).await;
            match input.clear().await {
                Err(e) if stale(&e) => continue,
                cleared => cleared.unwrap(),
            }
            match input.send_keys(text).await {
                Err(e) if stale(&e) => continue,
                typed => return typed.unwrap(),
            }
        }
        panic!("{css} was replaced each time it was filled");
    }

    /// Clicks `css`; found again if the page replaced it in between (a live page shown
    /// again after a change), a few times.
    async fn click(&self, css: &str) {
        for _ in 0..3 {
            match self.find(css).await.click().await {
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference => {}
                clicked => return clicked.unwrap(),
            }
        }
        panic!("{css} was replaced each time it was clicked");
    }

    /// The text of `css` once `ready` holds for it (polled, within the harness's bound).
    async fn text_of(&self, css: &str, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < BOUND {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                // An element replaced while it is read is read again.
                if let Ok(text) = element.text().await {
                    if ready(&text) {
                        return text;
                    }
                    last = text;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let alert = self.alert().await;
        panic!("{css} never came to show what was expected; it shows {last:?} (alert: {alert:?})")
    }

    /// Whether `css` is on the page now.
    async fn present(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    /// The text of each element `css` now.
    async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await.unwrap() {
            texts.push(element.text().await.unwrap());
        }
        texts
    }

    /// The alert region's text (empty when hidden).
    async fn alert(&self) -> String {
        match self.client.find(Locator::Css("#alert")).await {
            Ok(alert) => alert.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Saves a PNG of the page as `target/screenshots/<name>.png`.
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = target_dir().join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    async fn close(self) {
        self.client.clone().close().await.unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The build's target directory: `CARGO_TARGET_DIR`, or the one this test binary is in.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/it-…
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// Asserts that `host` of `server` answers a ping.
async fn answers(server: &Server, host: &str) {
    let pings = server.bounded_json(&["ping", "--host", host]).await;
    assert_eq!(pings[0]["reachable"], true, "{pings:#}");
}

/// A server with the administrator `admin` and agents `names` (pinged, so their state is
/// known), and its `serve` over plain HTTP.
async fn fleet(dir: &Path, names: &[&str]) -> (Server, Vec<LocalAgent>, Daemon) {
    let server = Server::new();
    add_user(&server, "admin", &["--admin"]);
    let mut agents = Vec::new();
    for name in names {
        agents.push(server.agent(name, dir, &["lab"], "").await);
    }
    if !names.is_empty() {
        server.bounded(&["ping", "--all"]).await;
    }
    let daemon = Daemon::start(&server, &["--http-plain"]);
    (server, agents, daemon)
}

/// Adds host `name` and starts its agent, but pins some other key (as an agent reinstalled
/// with a new key would look): the server meets the agent's real key, which waits for
/// approval. Returns the agent.
async fn pending_host(server: &Server, dir: &Path, name: &str) -> LocalAgent {
    let server_key = server.add(name, &[]).await;
    let agent = LocalAgent::start(&agent_bin(), &dir.join(name), &server_key, "")
        .await
        .unwrap();
    server
        .bounded_json(&["host", "set", name, "--port", &agent.port.to_string()])
        .await;
    let other = keys::generate().unwrap();
    server
        .bounded_json(&["host", "trust", name, &keys::to_openssh(other.public_key())])
        .await;
    let (out, _) = server.bounded(&["ping", "--host", name]).await;
    assert!(!out.status.success());
    let host = server.json(&["host", "show", name]);
    assert_eq!(
        host["trust"]["pending_key"],
        keys::to_openssh(&agent.agent_key)
    );
    agent
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_in_shows_the_real_agents_on_the_dashboard_and_hosts() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1", "r2"]).await;
    // One host whose agent is not there: unreachable.
    server.add("gone", &[]).await;
    server
        .bounded_json(&["host", "set", "gone", "--port", "1"])
        .await;
    server.bounded(&["ping", "--host", "gone"]).await;
    let browser = Browser::start().await;
    let url = format!("{}/", daemon.base());

    // A wrong password: said on the page, and still the sign-in form.
    browser.visit(&url).await;
    browser.fill("#signin-name", "admin").await;
    browser.fill("#signin-password", "not the password").await;
    browser.screenshot("signin").await;
    browser.click("#signin button[type=submit]").await;
    browser
        .text_of("#alert", |t| t.contains("Wrong name or password"))
        .await;

    browser.sign_in(&url, "admin").await;
    let count = |state: &'static str| format!("[data-count={state}]");
    assert_eq!(browser.text_of(&count("reachable"), |_| true).await, "2");
    assert_eq!(browser.text_of(&count("unreachable"), |_| true).await, "1");
    assert_eq!(browser.text_of(&count("pending"), |_| true).await, "0");
    assert_eq!(browser.text_of(&count("hosts"), |_| true).await, "3");
    // The slowest heartbeats: the two reachable hosts, with their stored round trips.
    let slowest = browser.text_of("#slowest", |t| t.contains("ms")).await;
    assert!(
        slowest.contains("r1") && slowest.contains("r2"),
        "{slowest}"
    );
    assert!(!slowest.contains("gone"), "{slowest}");
    for name in ["r1", "r2"] {
        let ms = server.json(&["host", "show", name])["status"]["round_trip_ms"]
            .as_f64()
            .unwrap();
        let row = browser
            .text_of(&format!("#slowest tr[data-host={name}]"), |_| true)
            .await;
        // Shown to a tenth of a millisecond.
        let shown: f64 = row
            .split(" ms")
            .next()
            .and_then(|before| before.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no round trip in {row:?}"));
        assert!((shown - ms).abs() <= 0.05 + 1e-9, "{row} ({ms})");
    }
    // One server (SQLite): no panel of the servers sharing the fleet.
    assert!(!browser.present("#servers-panel").await);
    browser.screenshot("dashboard").await;

    // The hosts, filtered by state through the API.
    browser.click("[data-count=reachable]").await;
    browser.text_of("#hosts", |t| t.contains("r2")).await;
    assert!(!browser.present("tr[data-host=gone]").await);
    // The keyboard's focus went to the new page's content.
    let focused = browser
        .client
        .execute("return document.activeElement.id;", vec![])
        .await
        .unwrap();
    assert_eq!(focused, json!("main"));
    browser.fill("#host-filters input[name=name]", "1").await;
    browser.click("#host-filters button[type=submit]").await;
    browser
        .text_of("#hosts", |t| t.contains("r1") && !t.contains("r2"))
        .await;
    browser.visit(&format!("{url}#/hosts")).await;
    browser.text_of("#hosts", |t| t.contains("gone")).await;
    browser.screenshot("hosts").await;

    // A host's page: its facts as its agent reported them.
    browser.click("tr[data-host=r1] a").await;
    let facts = browser.text_of("#facts", |t| t.contains("Kernel")).await;
    assert!(facts.contains("Linux"), "{facts}");
    assert_eq!(browser.text_of("#host-state", |_| true).await, "reachable");
    browser.screenshot("host").await;

    // At a phone's width: one column, nothing wider than the screen.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.visit(&format!("{url}#/hosts")).await;
    browser.text_of("#hosts", |t| t.contains("gone")).await;
    let overflow = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "wider than the screen by {overflow}"
    );
    browser.screenshot("hosts-phone").await;
    browser.client.set_window_size(1280, 900).await.unwrap();

    // Signing out: the sign-in form again, and the session is gone.
    browser.click("#signout").await;
    browser.find("#signin").await;
    browser.client.refresh().await.unwrap();
    browser.find("#signin").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_in_over_serves_default_https_keeps_a_secure_session() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::new();
    add_user(&server, "admin", &["--admin"]);
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    server.bounded(&["ping", "--all"]).await;
    // serve as a user starts it: HTTPS with its self-signed certificate.
    let daemon = Daemon::start(&server, &[]);
    assert!(daemon.base().starts_with("https://"), "{}", daemon.base());
    let browser = Browser::trusting_any_certificate().await;
    let url = format!("{}/", daemon.base());
    browser.sign_in(&url, "admin").await;
    assert_eq!(
        browser.text_of("[data-count=reachable]", |_| true).await,
        "1"
    );

    // The session cookie is Secure and HttpOnly, and kept: a reload is still signed in.
    let cookies = browser.client.get_all_cookies().await.unwrap();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = &cookies[0];
    assert_eq!(
        (cookie.secure(), cookie.http_only()),
        (Some(true), Some(true)),
        "{cookie:?}"
    );
    browser.client.refresh().await.unwrap();
    browser
        .text_of("#counts", |t| t.contains("Reachable"))
        .await;
    assert!(!browser.present("#signin").await);
    browser.screenshot("dashboard-https").await;

    // Over HTTP/2: the live pages' event streams of many tabs or reloads share a connection,
    // where HTTP/1.1's six per server would be taken up by them. Ten reloads in a row each show
    // the page.
    let protocol = browser
        .client
        .execute(
            "return performance.getEntriesByType('navigation')[0].nextHopProtocol;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(protocol, json!("h2"));
    for _ in 0..10 {
        browser.visit("about:blank").await;
        let started = Instant::now();
        browser.visit(&url).await;
        browser
            .text_of("#counts", |t| t.contains("Reachable"))
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a reload waited for a connection"
        );
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_key_is_approved_from_the_host_page() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::new();
    add_user(&server, "admin", &["--admin"]);
    let agent = pending_host(&server, dir.path(), "p1").await;
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    assert_eq!(browser.text_of("[data-count=pending]", |_| true).await, "1");

    browser.visit(&format!("{url}#/hosts/p1")).await;
    let fingerprint = keys::fingerprint(&agent.agent_key);
    let shown = browser
        .text_of("#pending-fingerprint", |t| !t.is_empty())
        .await;
    assert_eq!(
        shown, fingerprint,
        "the page shows the pending key's fingerprint"
    );
    // The last error says what to do in the page's words, not the command line's.
    let said = browser.told_under_trust().await;
    assert!(said.contains("approve or deny"), "{said}");
    browser.screenshot("host-pending").await;
    browser.click("#host-approve").await;
    browser.text_of("#agent-key", |t| t == fingerprint).await;
    assert!(!browser.present("#pending").await);

    // The server pinned it: the host answers.
    let host = server.json(&["host", "show", "p1"]);
    assert_eq!(
        host["trust"]["agent_key"],
        keys::to_openssh(&agent.agent_key)
    );
    assert_eq!(host["trust"]["pending_key"], Value::Null);
    answers(&server, "p1").await;
    browser.close().await;
}

/// Issue 21: a host with no agent key pinned is told on its page by the page's own means (its
/// Trust form), and the key given there is pinned.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_key_is_given_from_the_host_page() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::new();
    add_user(&server, "admin", &["--admin"]);
    let server_key = server.add("k1", &[]).await;
    let agent = LocalAgent::start(&agent_bin(), &dir.path().join("k1"), &server_key, "")
        .await
        .unwrap();
    server
        .bounded_json(&["host", "set", "k1", "--port", &agent.port.to_string()])
        .await;
    let (out, _) = server.bounded(&["ping", "--host", "k1"]).await;
    assert!(!out.status.success());
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    browser.visit(&format!("{url}#/hosts/k1")).await;
    let said = browser.told_under_trust().await;
    assert!(said.contains("give its agent key"), "{said}");
    browser
        .fill("#trust-key", &keys::to_openssh(&agent.agent_key))
        .await;
    browser.click("#host-trust-submit").await;
    let fingerprint = keys::fingerprint(&agent.agent_key);
    browser.text_of("#agent-key", |t| t == fingerprint).await;
    assert!(!browser.present("#host-trust").await);
    answers(&server, "k1").await;
    browser.close().await;
}

/// Issue 21: a group with the empty name an older database may hold has a page, and its
/// Remove button removes it (through `DELETE /api/v1/groups?name=`).
#[tokio::test(flavor = "multi_thread")]
async fn a_group_with_an_empty_name_is_removed_from_its_page() {
    if !available() {
        return;
    }
    let server = Server::new();
    add_user(&server, "admin", &["--admin"]);
    server.ok(&["group", "add", "office"]);
    rusqlite::Connection::open(server.data().join("otto.db"))
        .unwrap()
        .execute("INSERT INTO groups (name) VALUES ('')", [])
        .unwrap();
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    browser.visit(&format!("{url}#/groups/")).await;
    browser.click("#group-remove").await;
    browser.client.accept_alert().await.unwrap();
    let groups = || server.json(&["group", "list"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while groups().as_array().unwrap().len() != 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(groups()[0]["name"], "office", "{}", groups());
    assert_eq!(groups().as_array().unwrap().len(), 1, "{}", groups());
    browser.close().await;
}

/// Issue 21: a host whose agent was busy at its last heartbeat (every channel it serves at
/// once in use) is shown reachable and busy, on its page and in the list.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_agent_is_shown_reachable_and_busy() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::new();
    add_user(&server, "admin", &["--admin"]);
    let agent = server.agent("b1", dir.path(), &[], "").await;
    // serve first: its heartbeat at start (the next is an hour away) finds the agent idle.
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.json(&["host", "show", "b1"])["status"]["last_seen"].is_null() {
        assert!(Instant::now() < deadline, "serve sent no heartbeat");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let runs = crate::fleet::hold_every_channel(&server, "b1", &agent, 5).await;
    server.bounded_json(&["ping", "--host", "b1"]).await;
    for run in runs {
        run.await.unwrap().unwrap();
    }
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    browser.visit(&format!("{url}#/hosts/b1")).await;
    browser
        .text_of("#host-state", |t| t == "reachable, busy")
        .await;
    browser.visit(&format!("{url}#/hosts")).await;
    browser
        .text_of("main table", |t| t.contains("reachable, busy"))
        .await;
    browser.close().await;
}

/// Issue 24: the hosts list shows each host's board, release, uptime and free flash (low flash
/// said in words, not by colour alone), a host's page all its facts, as its heartbeat brought
/// them (fake agents reporting boards of the test's choosing).
#[tokio::test(flavor = "multi_thread")]
async fn the_hosts_list_and_a_hosts_page_show_its_board_release_and_free_flash() {
    if !available() {
        return;
    }
    let server = Server::new();
    add_user(&server, "admin", &["--admin"]);
    let archer = Board {
        model: "TP-Link Archer C7 v5",
        big_endian: true,
        flash_total_kib: 7680,
        flash_free_kib: 600,
    };
    let pi = Board {
        model: "Raspberry Pi 4 Model B Rev 1.4",
        big_endian: false,
        flash_total_kib: 30 * 1024 * 1024,
        flash_free_kib: 20 * 1024 * 1024,
    };
    let _agents = [
        server.fake("f1", Behaviour::Reports(archer)).await,
        server.fake("f2", Behaviour::Reports(pi)).await,
    ];
    let (out, _) = server.bounded(&["ping"]).await;
    assert!(out.status.success(), "{}", crate::harness::text(&out));
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;

    browser.visit(&format!("{url}#/hosts")).await;
    let low = browser
        .text_of("tr[data-host=f1]", |t| t.contains("Archer"))
        .await;
    for said in ["TP-Link Archer C7 v5", "Fake 1", "1s", "Low: 600 KiB (8%)"] {
        assert!(low.contains(said), "{said}: {low}");
    }
    assert!(browser.present("tr[data-host=f1] .flash.low").await);
    let roomy = browser
        .text_of("tr[data-host=f2]", |t| t.contains("Raspberry"))
        .await;
    assert!(roomy.contains("20.0 GiB (67%)"), "{roomy}");
    assert!(!roomy.contains("Low"), "{roomy}");
    assert!(!browser.present("tr[data-host=f2] .flash.low").await);
    browser.screenshot("hosts-facts").await;

    browser.visit(&format!("{url}#/hosts/f1")).await;
    let facts = browser.text_of("#facts", |t| t.contains("Archer")).await;
    for said in [
        "TP-Link Archer C7 v5",
        "Fake 1",
        "Linux 6.1",
        "x86_64 (big-endian)",
        "1s",
        "0.00 0.00 0.00",
        "512 KiB free of 1.0 MiB",
        "Low: 600 KiB of 7.5 MiB free (8%)",
    ] {
        assert!(facts.contains(said), "{said}: {facts}");
    }
    browser.visit(&format!("{url}#/hosts/f2")).await;
    let facts = browser.text_of("#facts", |t| t.contains("Raspberry")).await;
    assert!(facts.contains("x86_64 (little-endian)"), "{facts}");
    assert!(facts.contains("20.0 GiB of 30.0 GiB free (67%)"), "{facts}");
    assert!(!facts.contains("Low"), "{facts}");
    browser.screenshot("host-facts").await;

    // Chosen by facts: f3 never reported any, and is said to be left out.
    server.add("f3", &[]).await;
    browser.visit(&format!("{url}#/hosts")).await;
    browser
        .fill("#host-where", "model~Archer and flash_free<1MiB")
        .await;
    browser.click("#host-filters button[type=submit]").await;
    let note = browser
        .text_of("#hosts-left-out", |t| t.contains("f3"))
        .await;
    assert_eq!(note, "1 host left out: no facts reported yet: f3");
    assert!(browser.present("tr[data-host=f1]").await);
    assert!(!browser.present("tr[data-host=f2]").await);
    assert!(!browser.present("tr[data-host=f3]").await);
    // The run form says what a choice makes as it is typed.
    browser.visit(&format!("{url}#/run")).await;
    browser.fill("#run-where", "big_endian=false").await;
    let chosen = browser
        .text_of("#run-chosen", |t| t.contains("chosen"))
        .await;
    assert_eq!(
        chosen,
        "1 host chosen; 1 host left out: no facts reported yet: f3"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_page_denies_a_key_disables_enables_moves_the_host_and_pages_its_runs() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1"]).await;
    let agent = pending_host(&server, dir.path(), "p1").await;
    let pinned = server.json(&["host", "show", "p1"])["trust"]["agent_key"].clone();
    // One run more than a page of the host's runs.
    for n in 1..=21 {
        let (out, _) = server
            .bounded(&["run", "-H", "r1", "-c", &format!("echo run {n}")])
            .await;
        assert!(out.status.success(), "{}", crate::harness::text(&out));
    }
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;

    // Deny: the pending key is dropped, the host keeps the key it had, an event names admin.
    browser.visit(&format!("{url}#/hosts/p1")).await;
    browser.find("#pending").await;
    browser.click("#host-deny").await;
    browser.text_of("#alert", |t| t.contains("denied")).await;
    assert!(!browser.present("#pending").await);
    let host = server.json(&["host", "show", "p1"]);
    assert_eq!(host["trust"]["pending_key"], Value::Null, "{host:#}");
    assert_eq!(host["trust"]["agent_key"], pinned, "{host:#}");
    let denied = format!(
        "pending agent key {} denied",
        keys::fingerprint(&agent.agent_key)
    );
    let events = server.json(&["events", "--host", "p1"]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["detail"] == denied
                && e["actor"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("user:admin "))),
        "{events:#}"
    );

    // Disabled, then enabled again: the state shown follows.
    browser.click("#host-disable").await;
    browser.text_of("#host-state", |t| t == "disabled").await;
    assert_eq!(server.json(&["host", "show", "p1"])["enabled"], false);
    browser.click("#host-enable").await;
    browser.text_of("#host-state", |t| t != "disabled").await;
    assert_eq!(server.json(&["host", "show", "p1"])["enabled"], true);

    // Where it is reached, changed from its form. While what was typed there is not sent,
    // a change of the host elsewhere does not show the page again (it would lose it).
    browser.fill("#host-address", "127.0.0.2").await;
    browser.fill("#host-port", "2222").await;
    browser
        .client
        .execute("document.activeElement.blur()", vec![])
        .await
        .unwrap();
    server.ok(&["host", "disable", "p1"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let address = browser.find("#host-address").await;
    assert_eq!(
        address.prop("value").await.unwrap().as_deref(),
        Some("127.0.0.2")
    );
    assert_ne!(browser.text_of("#host-state", |_| true).await, "disabled");
    browser.click("#host-edit button[type=submit]").await;
    browser
        .text_of("#host-status", |t| t.contains("127.0.0.2:2222"))
        .await;
    browser.text_of("#host-state", |t| t == "disabled").await;
    let host = server.json(&["host", "show", "p1"]);
    assert_eq!(
        (&host["address"], &host["port"], &host["enabled"]),
        (&json!("127.0.0.2"), &json!(2222), &json!(false))
    );
    browser.screenshot("host-actions").await;

    // Its runs a page at a time: the 20 newest, then the one before them.
    browser.visit(&format!("{url}#/hosts/r1")).await;
    browser
        .text_of("#host-runs", |t| t.contains("run 21"))
        .await;
    let rows = || async {
        let rows = browser.client.find_all(Locator::Css("#host-runs tbody tr"));
        rows.await.unwrap().len()
    };
    assert_eq!(rows().await, 20);
    browser.click("#host-runs-older").await;
    let older = browser
        .text_of("#host-runs", |t| !t.contains("run 21"))
        .await;
    assert!(
        older.contains("echo run 1") && !older.contains("run 2"),
        "{older}"
    );
    assert_eq!(rows().await, 1);
    assert!(!browser.present("#host-runs-older").await);
    browser.click("#host-runs-newest").await;
    browser
        .text_of("#host-runs", |t| t.contains("run 21"))
        .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_shows_its_output_live_and_is_cancelled_host_by_host_or_all() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1", "r2"]).await;
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;

    browser.click("nav a[href='#/run']").await;
    // The second line comes only after a sleep far longer than the test: seeing the first
    // alone is seeing the run live.
    browser
        .fill(
            "#run-command",
            "echo first line; sleep 600; echo second line",
        )
        .await;
    // A host that does not exist: the API's refusal, as a sentence on the page.
    browser.fill("#run-hosts", "nosuch").await;
    browser.click("#run-start").await;
    browser.text_of("#alert", |t| t.contains("nosuch")).await;
    browser.fill("#run-hosts", "r1, r2").await;
    // An empty command is refused, with why (issue 21: it ran `command: ` on every host).
    browser.fill("#run-command", "  ").await;
    browser.click("#run-start").await;
    browser
        .text_of("#alert", |t| {
            t.to_lowercase().contains("the command is empty")
        })
        .await;
    assert!(server.runs().is_empty());
    browser
        .fill(
            "#run-command",
            "echo first line; sleep 600; echo second line",
        )
        .await;
    // A dry run says where it would run, and runs nothing.
    browser.click("#run-dry").await;
    let plan = browser
        .text_of("#run-plan", |t| t.contains("nothing was done"))
        .await;
    assert!(plan.contains("on 2 hosts: r1, r2"), "{plan}");
    assert!(server.runs().is_empty());
    browser.click("#run-start").await;
    for host in ["r1", "r2"] {
        let output = browser
            .text_of(&format!("pre[data-output={host}]"), |t| {
                t.contains("first line")
            })
            .await;
        assert!(!output.contains("second line"), "{output}");
    }
    assert_eq!(browser.text_of("#run-summary", |_| true).await, "Running…");
    browser.screenshot("run").await;

    // Cancel one host: it ends, the other goes on.
    browser.click("button[data-cancel=r1]").await;
    browser
        .text_of("[data-status=r1]", |t| t.contains("cancelled"))
        .await;
    assert_eq!(
        browser.text_of("[data-status=r2]", |_| true).await,
        "running"
    );
    // Cancel all: the rest ends, and the summary says so: cancelled, not failed (issue 21:
    // "0 succeeded, 2 failed" in red).
    browser.click("#cancel-all").await;
    browser
        .text_of("[data-status=r2]", |t| t.contains("cancelled"))
        .await;
    browser
        .text_of("#run-summary", |t| {
            t == "0 succeeded, 0 failed, 2 cancelled."
        })
        .await;
    assert!(browser.present("#run-summary.warn").await);
    assert!(browser.present("[data-status=r1].warn").await);
    browser.screenshot("run-cancelled").await;

    // The launch is in the address: reloaded, the page follows it again from its start.
    browser.client.refresh().await.unwrap();
    browser
        .text_of("pre[data-output=r2]", |t| t.contains("first line"))
        .await;
    browser
        .text_of("#run-summary", |t| t.contains("2 cancelled"))
        .await;

    // The history says the same.
    let runs = server.runs();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    for run in &runs {
        assert_eq!(run["success"], false, "{run:#}");
        assert_eq!(run["cancelled"], true, "{run:#}");
        assert!(
            run["outcome"].as_str().unwrap().contains("cancelled"),
            "{run:#}"
        );
    }

    // A stored script, picked from the list, run to its end.
    server.ok(&[
        "script",
        "add",
        "hello",
        "--body",
        "echo hello from $(hostname)",
    ]);
    browser.visit(&format!("{url}#/run")).await;
    browser.run_script_on_one("hello", "r1").await;
    browser
        .text_of("pre[data-output=r1]", |t| t.contains("hello from"))
        .await;

    // The dashboard lists them among the newest runs, as cancelled, and not among the
    // failures (issue 21: "Recent failures" listed them); the history page likewise.
    browser.click("nav a[href='#/']").await;
    let recent = browser
        .text_of("#recent-runs", |t| t.contains("hello"))
        .await;
    assert_eq!(recent.matches("cancelled").count(), 2, "{recent}");
    assert!(browser.present("#recent-runs td.warn").await);
    assert!(!browser.present("#failures").await);
    browser.screenshot("dashboard-runs").await;
    browser.click("nav a[href='#/history']").await;
    let history = browser.text_of("#history", |t| t.contains("hello")).await;
    assert_eq!(history.matches("cancelled").count(), 2, "{history}");
    assert!(!browser.present("#history td.bad").await);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_with_fewer_permissions_is_not_offered_what_they_may_not_do() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1"]).await;
    pending_host(&server, dir.path(), "p1").await;
    add_user(&server, "viewer", &["--run-level", "read-only"]);
    let read_only = ["--run-level", "read-only"];
    server.ok(&[
        &["script", "add", "look", "--body", "echo looked"],
        &read_only[..],
    ]
    .concat());
    server.ok(&["script", "add", "change", "--body", "echo changed"]);
    let (browser, url) = Browser::signed_in(&daemon, "viewer").await;

    // The run page offers the read-only scripts only, and no command; one runs.
    browser.text_of("nav", |t| t.contains("viewer")).await;
    browser.click("nav a[href='#/run']").await;
    let offered = browser.text_of("#run-script", |t| t.contains("look")).await;
    assert!(!offered.contains("change"), "{offered}");
    assert!(!browser.present("#run-command").await);
    // Nor a file to upload or fetch (the run level read-write's), nor their dry runs.
    for form in [
        "#upload-form",
        "#upload-dry-run",
        "#fetch-form",
        "#fetch-path",
    ] {
        assert!(!browser.present(form).await, "{form} offered");
    }
    browser.run_script_on_one("look", "r1").await;
    browser
        .text_of("[data-output=r1]", |t| t.contains("looked"))
        .await;
    browser.screenshot("run-read-only").await;

    // Not offered: no Approve.
    browser.visit(&format!("{url}#/hosts/p1")).await;
    browser
        .text_of("#pending", |t| t.contains("needs the permission"))
        .await;
    assert!(!browser.present("#host-approve").await);
    for control in ["#host-deny", "#host-disable", "#host-enable", "#host-edit"] {
        assert!(!browser.present(control).await, "{control} offered");
    }

    // Refused: the same requests made with their session (cookie and CSRF token) are 403.
    let statuses = browser
        .client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
            (async () => {
              const me = await (await fetch('/api/v1/session')).json();
              const post = (path, body) => fetch(path, {
                method: 'POST',
                headers: { 'X-CSRF-Token': me.csrf_token, 'Content-Type': 'application/json' },
                body: JSON.stringify(body),
              }).then((r) => r.status);
              done([
                await post('/api/v1/hosts/p1/approve', {}),
                await post('/api/v1/runs', { command: 'true', all: true }),
                await post('/api/v1/hosts', { name: 'x', address: '192.0.2.1' }),
                await post('/api/v1/hosts/p1/deny', {}),
                await post('/api/v1/hosts/r1/disable', {}),
                await post('/api/v1/fetches', { path: '/etc/motd', hosts: ['r1'] }),
                await fetch('/api/v1/hosts/r1', {
                  method: 'PATCH',
                  headers: { 'X-CSRF-Token': me.csrf_token, 'Content-Type': 'application/json' },
                  body: JSON.stringify({ port: 2222 }),
                }).then((r) => r.status),
              ]);
            })();"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(statuses, json!([403, 403, 403, 403, 403, 403, 403]));
    // And the CSRF token is what makes the session's requests work: without it, 403 too.
    let without = browser
        .client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
            fetch('/api/v1/session', { method: 'DELETE' }).then((r) => done(r.status));"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(without, json!(403));
    assert_ne!(
        server.json(&["host", "show", "p1"])["trust"]["pending_key"],
        Value::Null,
        "still pending"
    );
    browser.close().await;
}

/// The statuses of `requests` (method, path, JSON body or null) made from the page with the
/// session of who is signed in (its cookie and CSRF token), as the UI makes them.
async fn statuses_from_the_page(browser: &Browser, requests: Value) -> Value {
    browser
        .client
        .execute_async(
            r#"const [requests, done] = arguments;
            (async () => {
              const me = await (await fetch('/api/v1/session')).json();
              const statuses = [];
              for (const [method, path, body] of requests) {
                const headers = { 'X-CSRF-Token': me.csrf_token };
                if (body !== null) headers['Content-Type'] = 'application/json';
                const response = await fetch(path, {
                  method, headers, body: body === null ? undefined : JSON.stringify(body),
                });
                statuses.push(response.status);
              }
              done(statuses);
            })();"#,
            vec![requests],
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn scripts_groups_history_options_and_keys_are_managed_from_their_pages() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1", "r2"]).await;
    // A run to find in the history, with output kept.
    let (out, _) = server
        .bounded(&[
            "run",
            "-H",
            "r1",
            "-c",
            "echo kept output; echo on stderr >&2",
        ])
        .await;
    assert!(out.status.success(), "{}", crate::harness::text(&out));
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;

    // A new script, its text edited and saved.
    browser.click("nav a[href='#/scripts']").await;
    browser.fill("#new-script-name", "backup").await;
    browser.click("#new-script button[type=submit]").await;
    browser.text_of("main h1", |t| t == "Script backup").await;
    browser
        .fill("#script-body", "#!/bin/sh\necho saved from the browser\n")
        .await;
    browser.fill("#script-timeout", "300").await;
    browser.click("#script-save").await;
    browser.text_of("#alert", |t| t == "backup is saved.").await;
    let scripts = server.json(&["script", "list"]);
    assert_eq!(
        scripts[0]["body"], "#!/bin/sh\necho saved from the browser\n",
        "{scripts:#}"
    );
    assert_eq!(scripts[0]["timeout_secs"], 300);

    // A file attached: the File object streamed as the request's body, listed with its size;
    // the server keeps the same bytes.
    let file = dir.path().join("backup.conf");
    let content: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    std::fs::write(&file, &content).unwrap();
    let input = browser.find("#attach-file").await;
    input.send_keys(file.to_str().unwrap()).await.unwrap();
    browser.fill("#attach-path", "/etc/backup.conf").await;
    browser.fill("#attach-mode", "600").await;
    browser.click("#attach-upload").await;
    let row = browser
        .text_of("tr[data-attachment='/etc/backup.conf']", |t| {
            t.contains("195.3 KiB")
        })
        .await;
    assert!(row.contains("600"), "{row}");
    let attachments = server.json(&["attachment", "list", "backup"]);
    let sha256: String = sha2::Sha256::digest(&content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(attachments[0]["sha256"], sha256, "{attachments:#}");
    assert_eq!(attachments[0]["size"], 200_000);
    assert_eq!(attachments[0]["template"], false);
    // Another, as a template: listed as one.
    let template = dir.path().join("motd.j2");
    std::fs::write(&template, "welcome to {{ host.name }}\n").unwrap();
    let input = browser.find("#attach-file").await;
    input.send_keys(template.to_str().unwrap()).await.unwrap();
    browser.fill("#attach-path", "/etc/motd").await;
    browser.click("#attach-template").await;
    browser.click("#attach-upload").await;
    browser
        .text_of("[data-template='/etc/motd']", |t| t.contains("a template"))
        .await;
    let attachments = server.json(&["attachment", "list", "backup"]);
    assert_eq!(attachments[1]["path"], "/etc/motd", "{attachments:#}");
    assert_eq!(attachments[1]["template"], true, "{attachments:#}");

    // A secret variable of the script: listed as set, its value nowhere on the page.
    browser
        .fill(".variables form input[name=name]", "API_TOKEN")
        .await;
    browser
        .fill(".variables form input[name=value]", "hunter2-secret")
        .await;
    browser.click(".variables form input[name=secret]").await;
    browser.click(".variables form button[type=submit]").await;
    browser
        .text_of("[data-secret=API_TOKEN]", |t| t == "secret (set)")
        .await;
    assert!(!browser.client.source().await.unwrap().contains("hunter2"));
    browser.screenshot("script").await;
    // The attachment removed.
    browser.click("[data-detach='/etc/backup.conf']").await;
    browser
        .text_of("#alert", |t| {
            t.contains("/etc/backup.conf is no longer attached")
        })
        .await;
    browser.click("[data-detach='/etc/motd']").await;
    browser
        .text_of("main", |t| t.contains("No attachments."))
        .await;
    assert_eq!(server.json(&["attachment", "list", "backup"]), json!([]));
    browser.click("nav a[href='#/scripts']").await;
    browser.text_of("#scripts", |t| t.contains("backup")).await;
    browser.screenshot("scripts").await;

    // The environment of every scope: the script's secret listed as set; a global one set.
    browser.click("a[href='#/env']").await;
    browser
        .text_of(".variables table", |t| {
            t.contains("script backup") && t.contains("secret (set)")
        })
        .await;
    browser
        .find(".variables form select[name=scope]")
        .await
        .select_by_value("global")
        .await
        .unwrap();
    browser
        .fill(".variables form input[name=name]", "GREETING")
        .await;
    browser
        .fill(".variables form input[name=value]", "hello")
        .await;
    browser.click(".variables form button[type=submit]").await;
    browser
        .text_of("[data-variable=GREETING]", |t| {
            t.contains("global") && t.contains("hello")
        })
        .await;
    let vars = server.json(&["env", "list"]).to_string();
    assert!(
        vars.contains("GREETING") && vars.contains("hello"),
        "{vars}"
    );
    browser.screenshot("env").await;

    // A group: made, a host put in, the script assigned.
    browser.click("nav a[href='#/groups']").await;
    browser.fill("#new-group-name", "office").await;
    browser.click("#new-group button[type=submit]").await;
    browser.fill("#group-host", "r2").await;
    browser.click("#group-add-host button[type=submit]").await;
    browser.text_of("#group-hosts", |t| t.contains("r2")).await;
    browser.click("#group-add-script button[type=submit]").await;
    browser
        .text_of("#group-scripts", |t| t.contains("backup"))
        .await;
    browser.screenshot("group").await;
    let groups = server.json(&["group", "list"]);
    let office = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "office")
        .unwrap();
    assert_eq!(office["hosts"], json!(["r2"]), "{groups:#}");
    assert_eq!(office["scripts"], json!(["backup"]), "{groups:#}");
    browser.click("nav a[href='#/groups']").await;
    browser.text_of("#groups", |t| t.contains("office")).await;
    browser.screenshot("groups").await;

    // The history, filtered by host, and a run's kept output.
    browser.click("nav a[href='#/history']").await;
    browser.fill("#history-host", "r2").await;
    browser.click("#history-filters button[type=submit]").await;
    browser
        .text_of("main", |t| t.contains("No runs on r2."))
        .await;
    browser.fill("#history-host", "r1").await;
    browser.click("#history-filters button[type=submit]").await;
    browser.text_of("#history", |t| t.contains("r1")).await;
    browser.screenshot("history").await;
    browser.click("#history tbody tr a").await;
    browser
        .text_of("#pastrun-stdout", |t| t.contains("kept output"))
        .await;
    browser
        .text_of("#pastrun-stderr", |t| t.contains("on stderr"))
        .await;
    browser
        .text_of("#pastrun-result", |t| t.contains("exit 0"))
        .await;
    browser.screenshot("history-run").await;

    // The options serve runs with.
    browser.click("nav a[href='#/options']").await;
    let data_dir = server.data().display().to_string();
    browser
        .text_of("[data-option=data_dir]", |t| t == data_dir)
        .await;
    let listen = daemon.base().strip_prefix("http://").unwrap().to_string();
    browser
        .text_of("[data-option=http_listen]", |t| t.ends_with(&listen))
        .await;
    browser.text_of("main", |t| t.contains("server.toml")).await;
    // The HTTP API's connection limits, as serve was started with.
    browser
        .text_of("[data-option=http_connections]", |t| t == "1024")
        .await;
    browser
        .text_of("[data-option=http_connections_per_source]", |t| t == "64")
        .await;
    browser.screenshot("options").await;

    // An API key: its secret shown once, then listed without it, and revoked.
    browser.click("nav .who a").await;
    browser.fill("#new-key-days", "30").await;
    browser.click("#new-key-create").await;
    let secret = browser
        .text_of("#new-key-secret", |t| t.starts_with("otto_"))
        .await;
    browser.screenshot("account").await;
    let keys = server.json(&["apikey", "list"]);
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys:#}");
    let id = keys[0]["id"].as_i64().unwrap();
    let key_answers = |secret: String| {
        let daemon = &daemon;
        async move {
            let hosts = "/api/v1/hosts";
            let (status, _) = daemon
                .call(reqwest::Method::GET, hosts, Some(&secret), &Value::Null)
                .await;
            status
        }
    };
    assert_eq!(key_answers(secret.clone()).await, reqwest::StatusCode::OK);
    browser.client.refresh().await.unwrap();
    browser.find(&format!("[data-revoke='{id}']")).await;
    assert!(!browser.client.source().await.unwrap().contains(&secret));
    // Revoking asks first.
    browser.click(&format!("[data-revoke='{id}']")).await;
    browser.client.accept_alert().await.unwrap();
    browser
        .text_of(&format!("tr[data-key='{id}']"), |t| t.contains("revoked"))
        .await;
    assert_eq!(key_answers(secret).await, reqwest::StatusCode::UNAUTHORIZED);

    // At a phone's width: nothing on these pages is wider than the screen.
    browser.client.set_window_size(390, 844).await.unwrap();
    let pages = [
        ("scripts/backup", "#script-form"),
        ("env", ".variables table"),
        ("groups/office", "#group-hosts"),
        ("history", "#history"),
        ("events", "#events"),
        ("users", "#users"),
        ("account", "#apikeys"),
        ("options", "#options"),
    ];
    for (page, shown) in pages {
        browser.visit(&format!("{url}#/{page}")).await;
        browser.find(shown).await;
        let overflow = browser
            .client
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(overflow.as_i64().unwrap() <= 0, "{page}: {overflow}");
    }
    browser.visit(&format!("{url}#/scripts/backup")).await;
    browser.find("#script-form").await;
    browser.screenshot("script-phone").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_made_with_fewer_permissions_finds_what_they_may_not_do_absent_and_refused() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1"]).await;
    server.ok(&["script", "add", "backup", "--body", "echo hi"]);
    add_user(&server, "helper", &["--permission", "hosts"]);
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;

    // The administrator adds a user who runs read-only scripts and may read the event log,
    // nothing more.
    browser.click("nav a[href='#/users']").await;
    browser.fill("#new-user-name", "viewer").await;
    browser.fill("#new-user-password", PASSWORD).await;
    browser
        .find("#new-user-run")
        .await
        .select_by_value("read-only")
        .await
        .unwrap();
    browser.click("#new-user-audit").await;
    browser.click("#new-user-add").await;
    let row = browser
        .text_of("tr[data-user=viewer]", |t| t.contains("enabled"))
        .await;
    assert!(
        row.contains("runs: read-only; changes nothing; reads the event log"),
        "{row}"
    );
    browser.screenshot("users").await;
    let user = |name: &str| {
        let users = server.json(&["user", "list"]);
        let found = users.as_array().unwrap().iter().find(|u| u["name"] == name);
        found.unwrap().clone()
    };
    assert_eq!(
        user("viewer")["permissions"],
        json!({"admin": false, "run": "read-only", "modify": ["audit"]})
    );
    // Another user disabled, then enabled again.
    browser.click("[data-toggle=helper]").await;
    browser
        .text_of("tr[data-user=helper]", |t| t.contains("disabled"))
        .await;
    assert_eq!(user("helper")["disabled"], true);
    browser.click("[data-toggle=helper]").await;
    browser
        .text_of("tr[data-user=helper]", |t| t.contains("enabled"))
        .await;
    assert_eq!(user("helper")["disabled"], false);
    // And given one more permission.
    browser.click("tr[data-user=helper] summary").await;
    browser.click("#perm-helper-groups").await;
    browser
        .click("form[data-permissions=helper] button[type=submit]")
        .await;
    browser
        .text_of("tr[data-user=helper]", |t| {
            t.contains("may change hosts, groups")
        })
        .await;
    assert_eq!(
        user("helper")["permissions"]["modify"],
        json!(["hosts", "groups"])
    );
    browser.click("#signout").await;
    browser.find("#signin").await;
    browser.sign_in(&url, "viewer").await;

    // Not offered: no Users or Options in the navigation, and their pages say which
    // permission they need; no forms to add a group or a script, no Save on a script, which
    // shows read-only.
    browser.text_of("nav", |t| t.contains("viewer")).await;
    for page in ["users", "options"] {
        assert!(
            !browser.present(&format!("nav a[href='#/{page}']")).await,
            "{page}"
        );
        browser.visit(&format!("{url}#/{page}")).await;
        browser.text_of("main h1", |t| t == "Not allowed").await;
        let said = browser.text_of("#not-allowed", |t| !t.is_empty()).await;
        assert!(
            said.contains(&format!("needs the permission “{page}”")),
            "{said}"
        );
    }
    browser.visit(&format!("{url}#/no-such-page")).await;
    browser.text_of("main h1", |t| t == "Not found").await;
    browser.click("nav a[href='#/groups']").await;
    browser.text_of("main h1", |t| t == "Groups").await;
    assert!(!browser.present("#new-group").await);
    browser.click("nav a[href='#/scripts']").await;
    browser.text_of("#scripts", |t| t.contains("backup")).await;
    assert!(!browser.present("#new-script").await);
    browser.click("tr[data-script=backup] a").await;
    browser.text_of("main h1", |t| t == "Script backup").await;
    assert!(!browser.present("#script-save").await);
    assert!(!browser.present("#attach-form").await);
    assert!(!browser.present(".variables form").await);
    let readonly = browser
        .find("#script-body")
        .await
        .attr("readonly")
        .await
        .unwrap();
    assert!(readonly.is_some(), "the editor is read-only");
    browser.screenshot("script-read-only").await;

    // Refused: the same requests made with their session are 403.
    let statuses = statuses_from_the_page(
        &browser,
        json!([
            ["PUT", "/api/v1/scripts/backup", {"name": "backup", "body": "rm -rf /"}],
            ["PUT", "/api/v1/scripts/backup/attachments?path=/tmp/x", "x"],
            ["POST", "/api/v1/users", {"name": "eve", "password": "long enough pw"}],
            ["POST", "/api/v1/groups", {"name": "g"}],
            ["POST", "/api/v1/hosts", {"name": "x", "address": "192.0.2.1"}],
            ["POST", "/api/v1/runs", {"command": "true", "all": true}],
            ["GET", "/api/v1/options", null],
        ]),
    )
    .await;
    assert_eq!(statuses, json!([403, 403, 403, 403, 403, 403, 403]));
    let scripts = server.json(&["script", "list"]);
    assert_eq!(scripts[0]["body"], "echo hi", "unchanged");

    // The events page: the administrator's changes, naming them and their session; a filter by
    // user.
    browser.click("nav a[href='#/events']").await;
    let events = browser
        .text_of("#events", |t| t.contains("user viewer added"))
        .await;
    let added = events
        .lines()
        .find(|l| l.contains("user viewer added"))
        .unwrap();
    assert!(added.contains("user:admin (session"), "{added}");
    browser.screenshot("events").await;
    browser
        .fill("#event-filters input[name=kind]", "user-changed")
        .await;
    browser
        .fill("#event-filters input[name=user]", "admin")
        .await;
    browser.click("#event-filters button[type=submit]").await;
    browser
        .text_of("#events", |t| {
            t.contains("user viewer added") && !t.contains("reachability")
        })
        .await;

    // Their own password, changed on their account page: the new one signs in.
    browser.click("nav .who a").await;
    browser.fill("#password-current", PASSWORD).await;
    browser.fill("#password-new", "a new long password").await;
    browser.fill("#password-again", "a new long password").await;
    browser.click("#password-change").await;
    browser
        .text_of("#alert", |t| t.contains("Your password is changed"))
        .await;
    let sign_in = |password: &str| json!([["POST", "/api/v1/session", {"name": "viewer", "password": password}]]);
    let statuses = statuses_from_the_page(&browser, sign_in("a new long password")).await;
    assert_eq!(statuses, json!([201]));
    let statuses = statuses_from_the_page(&browser, sign_in(PASSWORD)).await;
    assert_eq!(statuses, json!([401]));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn saving_a_script_unchanged_keeps_its_run_level_and_the_editor_changes_it() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &[]).await;
    let add = [
        "script", "add", "look", "--body", "uptime", "--run-as", "0:0",
    ];
    server.ok(&[&add[..], &["--run-level", "read-only"]].concat());
    let level = || server.json(&["script", "list"])[0]["run_level"].clone();
    let (browser, _) = Browser::signed_in(&daemon, "admin").await;

    // The table shows the run level; the editor too, and saving unchanged keeps it (and what
    // the editor does not show: run as).
    browser.click("nav a[href='#/scripts']").await;
    let row = browser
        .text_of("tr[data-script=look]", |t| t.contains("look"))
        .await;
    assert!(row.contains("read-only"), "{row}");
    browser.click("tr[data-script=look] a").await;
    let shown = browser.find("#script-run-level").await.prop("value").await;
    assert_eq!(shown.unwrap().as_deref(), Some("read-only"));
    browser.click("#script-save").await;
    browser.text_of("#alert", |t| t == "look is saved.").await;
    assert_eq!(level(), "read-only");
    assert_eq!(
        server.json(&["script", "list"])[0]["run_as"],
        json!({"uid": 0, "gid": 0})
    );

    // Changed in the editor: changed.
    browser
        .find("#script-run-level")
        .await
        .select_by_value("read-write")
        .await
        .unwrap();
    browser.click("#script-save").await;
    // The alert says the same as before: the store is what tells the save is done.
    let start = Instant::now();
    while level() != "read-write" && start.elapsed() < BOUND {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(level(), "read-write");

    // A run that names no hosts is refused in the page's words, not the command line's flags.
    browser.click("nav a[href='#/run']").await;
    browser
        .find("#run-script")
        .await
        .select_by_value("look")
        .await
        .unwrap();
    browser.click("#run-start").await;
    let said = browser.text_of("#alert", |t| !t.is_empty()).await;
    assert_eq!(
        said,
        "Choose the hosts: by name, by group, or every enabled host. \
         The script look is assigned to no group."
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hosts_page_shows_the_variables_it_inherits_marked_by_where_they_come_from() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1"]).await;
    server.ok(&["env", "set", "MODE", "fast"]);
    server.ok(&["env", "set", "REGION", "eu", "--group", "lab"]);
    server.ok(&[
        "env",
        "set",
        "TOKEN",
        "s3cr3t-of-the-lab",
        "--secret",
        "--group",
        "lab",
    ]);
    server.ok(&["env", "set", "MODE", "careful", "--host", "r1"]);
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    browser.visit(&format!("{url}#/hosts/r1")).await;
    let table = browser
        .text_of("#environment", |t| t.contains("TOKEN"))
        .await;
    assert!(!table.contains("s3cr3t"), "{table}");
    let region = browser.texts("#environment tr[data-variable=REGION]").await;
    assert!(
        region.len() == 1 && region[0].contains("eu") && region[0].ends_with("group lab"),
        "{region:?}"
    );
    let token = browser.texts("#environment tr[data-variable=TOKEN]").await;
    assert!(
        token.len() == 1 && token[0].contains("secret (set)") && token[0].ends_with("group lab"),
        "{token:?}"
    );
    // The global MODE is there, marked as overridden by the host's own.
    let mode = browser.texts("#environment tr[data-variable=MODE]").await;
    assert_eq!(mode.len(), 2, "{mode:?}");
    assert!(
        mode[0].contains("fast") && mode[0].contains("global (overridden below)"),
        "{mode:?}"
    );
    assert!(
        mode[1].contains("careful") && mode[1].ends_with("host r1"),
        "{mode:?}"
    );
    browser.screenshot("host-environment").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_a_group_with_variables_names_them_and_asks_before_taking_them_along() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &[]).await;
    server.ok(&["group", "add", "lab"]);
    server.ok(&["env", "set", "TOKEN", "x", "--secret", "--group", "lab"]);
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    browser.visit(&format!("{url}#/groups/lab")).await;

    // Asked twice: the group, then its variable, named; a no keeps both.
    let asked = async || {
        browser.click("#group-remove").await;
        browser.client.accept_alert().await.unwrap();
        // The second question comes once the server has refused.
        let question = tokio::time::timeout(crate::harness::BOUND, async {
            loop {
                match browser.client.get_alert_text().await {
                    Ok(text) => return text,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(
            question,
            "Removing the group lab also removes its variable: TOKEN (secret). Remove them too?"
        );
    };
    asked().await;
    browser.client.dismiss_alert().await.unwrap();
    browser.find("#group-remove").await;
    assert!(server.ok(&["group", "list"]).contains("lab"));
    assert!(server.ok(&["env", "list"]).contains("TOKEN"));
    // A yes removes it with its variable.
    asked().await;
    browser.client.accept_alert().await.unwrap();
    browser
        .text_of("main", |t| !t.contains("Remove group"))
        .await;
    assert_eq!(server.json(&["group", "list"]), serde_json::json!([]));
    assert_eq!(server.json(&["env", "list"]), serde_json::json!([]));
    browser.close().await;
}

/// The Schedules page: a schedule added from its form runs on a real agent (its last launch
/// and outcome in the list, the launch's page naming the schedule), then is disabled and
/// removed from the page; a user without `schedules` sees the list but no form nor buttons.
#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_is_added_followed_disabled_and_removed_from_its_page() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["b1"]).await;
    add_user(&server, "reader", &[]);
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    browser.click("nav a[href='#/schedules']").await;
    browser.fill("#new-schedule-name", "tick").await;
    browser.fill("#new-schedule-cron", "*/2 * * * * *").await;
    browser.fill("#new-schedule-command", "echo tick").await;
    browser.fill("#new-schedule-hosts", "b1").await;
    browser.click("#new-schedule button[type=submit]").await;
    browser
        .text_of("tr[data-schedule=tick]", |t| {
            t.contains("*/2 * * * * * (UTC)")
        })
        .await;
    // Once serve has started it, the list shows its last launch and how it went.
    let deadline = Instant::now() + BOUND;
    while server.json(&["schedule", "show", "tick"])["launches"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["finished"].is_null())
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.visit(&format!("{url}#/")).await;
    browser.visit(&format!("{url}#/schedules")).await;
    browser
        .text_of("[data-outcome=tick]", |t| t.contains("succeeded on 1"))
        .await;
    browser.screenshot("schedules").await;
    browser
        .click("tr[data-schedule=tick] a[href^='#/run?launch=']")
        .await;
    browser
        .text_of("#run-schedule", |t| {
            t.contains("Started by the schedule tick")
        })
        .await;
    browser
        .text_of("#run-summary", |t| t.contains("1 succeeded"))
        .await;

    browser.visit(&format!("{url}#/schedules")).await;
    browser.click("[data-disable=tick]").await;
    browser.find("[data-enable=tick]").await;
    assert_eq!(server.json(&["schedule", "show", "tick"])["enabled"], false);

    // A reader sees it, and is offered no change.
    let (reader, _) = Browser::signed_in(&daemon, "reader").await;
    reader.visit(&format!("{url}#/schedules")).await;
    reader.find("tr[data-schedule=tick]").await;
    assert!(!reader.present("#new-schedule").await);
    assert!(!reader.present("[data-enable=tick]").await);
    assert!(!reader.present("[data-remove=tick]").await);
    reader.close().await;

    browser.click("[data-remove=tick]").await;
    browser
        .text_of("#main", |t| t.contains("No schedules yet."))
        .await;
    assert_eq!(server.json(&["schedule", "list"]), serde_json::json!([]));
    browser.close().await;
}

/// Issue 23: tokens are made (the secret and the agent command shown once) and revoked, rules
/// added in order and removed, and several hosts waiting for approval approved or denied at
/// once, from their pages; a user with `enrollment` but not `hosts` is offered the first two
/// only.
#[tokio::test(flavor = "multi_thread")]
async fn enrollment_tokens_rules_and_pending_hosts_are_managed_from_their_pages() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::new();
    add_user(&server, "admin", &["--admin"]);
    add_user(&server, "erin", &["--permission", "enrollment"]);
    let mut agents = Vec::new();
    for name in ["p1", "p2", "p3"] {
        agents.push(pending_host(&server, dir.path(), name).await);
    }
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;

    // A token: made with the form, its secret and command shown once, then revoked.
    browser.click("nav a[href='#/enrollment']").await;
    let fingerprint = browser
        .text_of("#enrollment-fingerprint", |t| t.starts_with("SHA256:"))
        .await;
    browser.fill("#token-uses", "2").await;
    browser.fill("#token-groups", "lab, mips").await;
    browser.fill("#token-note", "the lab").await;
    browser.fill("#token-call-home", "otto.example:12445").await;
    browser.click("#token-add").await;
    let secret = browser
        .text_of("#token-secret", |t| t.starts_with("otto-enroll-"))
        .await;
    let command = browser.text_of("#token-command", |t| !t.is_empty()).await;
    assert_eq!(
        command,
        format!(
            "otto-agent enroll --server otto.example:12445 --fingerprint {fingerprint} --token {secret}"
        )
    );
    let row = browser
        .text_of("[data-token='1']", |t| t.contains("0/2"))
        .await;
    assert!(row.contains("lab, mips") && row.contains("active"), "{row}");
    browser.screenshot("enrollment-tokens").await;
    let listed = server.json(&["enrollment", "token", "list"]);
    assert_eq!(listed[0]["note"], "the lab");
    assert_eq!(listed[0]["groups"], json!(["lab", "mips"]));
    browser.click("[data-revoke='1']").await;
    browser
        .text_of("[data-token='1']", |t| t.contains("revoked"))
        .await;
    assert!(
        !browser.present("#token-secret").await,
        "the secret is shown once"
    );
    assert_eq!(
        server.json(&["enrollment", "token", "list"])[0]["revoked"],
        true
    );

    // Rules: added (the second first), a bad regex refused, removed.
    browser.visit(&format!("{url}#/enrollment/rules")).await;
    browser
        .text_of("#rule-default", |t| t.contains("hold"))
        .await;
    browser.fill("#rule-clauses", "arch~^mips").await;
    browser.fill("#rule-groups", "mips").await;
    browser
        .find("#rule-decision")
        .await
        .select_by_value("trust")
        .await
        .unwrap();
    browser.click("#rule-add").await;
    browser
        .text_of("[data-rule='1']", |t| t.contains("arch ~ ^mips"))
        .await;
    browser
        .fill("#rule-clauses", "hostname~^lab-\nkernel~^5")
        .await;
    browser.fill("#rule-position", "1").await;
    browser.click("#rule-add").await;
    browser
        .text_of("[data-rule='2']", |t| t.starts_with('1'))
        .await;
    assert_eq!(
        browser.texts("#rules tbody tr td:first-child").await,
        ["1", "2", "–"]
    );
    browser.screenshot("enrollment-rules").await;
    browser.fill("#rule-clauses", "arch~(").await;
    browser.click("#rule-add").await;
    let alert = browser
        .text_of("#alert", |t| t.contains("not a regular expression"))
        .await;
    assert!(!alert.is_empty());
    browser.click("[data-remove='2']").await;
    browser
        .text_of("#rules tbody", |t| !t.contains("hostname"))
        .await;
    let rules = server.json(&["enrollment", "rule", "list"]);
    assert_eq!(rules.as_array().unwrap().len(), 1, "{rules}");

    // Pending: three hosts waiting; two approved at once, then the third denied.
    browser.click("nav a[href='#/pending']").await;
    for (name, agent) in ["p1", "p2", "p3"].iter().zip(&agents) {
        let row = browser
            .text_of(&format!("[data-host='{name}']"), |t| !t.is_empty())
            .await;
        assert!(row.contains(&keys::fingerprint(&agent.agent_key)), "{row}");
    }
    browser.screenshot("pending-approval").await;
    browser.click("[data-pick='p1']").await;
    browser.click("[data-pick='p2']").await;
    browser.click("#pending-approve").await;
    browser
        .text_of("#alert", |t| t.contains("2 keys approved"))
        .await;
    assert!(!browser.present("[data-host='p1']").await);
    browser.click("[data-pick='p3']").await;
    browser.click("#pending-deny").await;
    browser.text_of("#pending-none", |t| !t.is_empty()).await;
    for (name, agent) in ["p1", "p2"].iter().zip(&agents) {
        let host = server.json(&["host", "show", name]);
        assert_eq!(
            host["trust"]["agent_key"],
            keys::to_openssh(&agent.agent_key)
        );
        answers(&server, name).await;
    }
    assert_eq!(
        server.json(&["host", "show", "p3"])["trust"]["pending_key"],
        Value::Null
    );
    browser.close().await;

    // Enrollment without hosts: tokens and rules offered, pending approval not.
    let (browser, url) = Browser::signed_in(&daemon, "erin").await;
    assert!(browser.present("nav a[href='#/enrollment']").await);
    assert!(!browser.present("nav a[href='#/pending']").await);
    browser.visit(&format!("{url}#/pending")).await;
    browser
        .text_of("#not-allowed", |t| t.contains("hosts"))
        .await;
    browser.close().await;
}

/// A host whose agent calls home (behind NAT) says so after its state, in the list and on its
/// page.
#[tokio::test(flavor = "multi_thread")]
async fn a_host_whose_agent_calls_home_says_so() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::new();
    add_user(&server, "admin", &["--admin"]);
    let port = crate::callhome::free_port();
    let listen = format!("127.0.0.1:{port}");
    let daemon = Daemon::start(&server, &["--http-plain", "--call-home-listen", &listen]);
    let _agent = crate::callhome::calling_agent(&server, dir.path(), "c1", port).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.json(&["host", "show", "c1"])["status"]["calls_home"] != true {
        assert!(Instant::now() < deadline, "the agent did not call home");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    browser.visit(&format!("{url}#/hosts")).await;
    browser
        .text_of("main table", |t| t.contains("calls home"))
        .await;
    browser.visit(&format!("{url}#/hosts/c1")).await;
    browser
        .text_of("#host-state", |t| t.ends_with(", calls home"))
        .await;
    browser.close().await;
}

/// Issue 24: the hosts page shows each agent's version, marked when it is behind the server's
/// newest binary, and offers to update the agents (there and on a host's page) to whoever may
/// (`hosts` and the run level read-write), following the launch as a run's page does; a user
/// without them is not offered it.
#[tokio::test(flavor = "multi_thread")]
async fn agents_behind_are_marked_and_updated_from_the_hosts_page() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::new();
    add_user(&server, "admin", &["--admin"]);
    add_user(&server, "rita", &[]);
    // Each runs its own binary, which an update replaces (never this build's).
    let _agents = [
        crate::updates::own_agent(&server, "r1", dir.path()).await,
        crate::updates::own_agent(&server, "r2", dir.path()).await,
    ];
    server.bounded(&["ping", "--all"]).await;
    let (binaries, version) = crate::updates::catalogue();
    let daemon = Daemon::start(
        &server,
        &[
            "--http-plain",
            "--agents",
            binaries.path().to_str().unwrap(),
        ],
    );

    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    browser.visit(&format!("{url}#/hosts")).await;
    let behind = browser
        .text_of("[data-behind=\"r1\"]", |t| !t.is_empty())
        .await;
    assert_eq!(behind, format!("(behind {version})"));
    browser.visit(&format!("{url}#/hosts/r1")).await;
    let agent = browser
        .text_of("#host-agent", |t| t.contains("behind"))
        .await;
    assert!(agent.contains(&version), "{agent}");
    assert!(browser.present("#update-agent").await);
    // r2 chosen on the hosts page: its agent only.
    browser.visit(&format!("{url}#/hosts")).await;
    browser.click("[data-select=\"r2\"]").await;
    browser.click("#update-agents").await;
    let asked = browser.client.get_alert_text().await.unwrap();
    assert!(asked.contains("r2") && !asked.contains("r1"), "{asked}");
    browser.client.accept_alert().await.unwrap();
    let job = browser.text_of("#run-job", |t| t.starts_with("On")).await;
    assert_eq!(job, "On 1 host: r2");
    // The launch, followed on the run page: r2 ends one way or the other (confirmed once
    // agents take updates, refused by agents that do not), then the summary.
    let summary = browser.text_of("#run-summary", |t| t.ends_with('.')).await;
    assert!(summary.contains("succeeded"), "{summary}");
    let status = browser
        .text_of("[data-status=\"r2\"]", |t| t != "running")
        .await;
    assert!(!status.is_empty());
    browser.screenshot("update-agents").await;
    let events = server.json(&["events", "--host", "r2", "--limit", "100"]);
    assert!(
        events.to_string().contains("update-") || status.contains("UpdateAgent"),
        "{status}: {events}"
    );
    browser.close().await;

    let (browser, url) = Browser::signed_in(&daemon, "rita").await;
    browser.visit(&format!("{url}#/hosts")).await;
    browser
        .text_of("[data-behind=\"r1\"]", |t| !t.is_empty())
        .await;
    assert!(!browser.present("#update-agents").await);
    browser.visit(&format!("{url}#/hosts/r1")).await;
    browser.text_of("#host-agent", |t| !t.is_empty()).await;
    assert!(!browser.present("#update-agent").await);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_postgres_the_dashboard_lists_the_servers_sharing_the_fleet() {
    if !available() {
        return;
    }
    let Some(url) = crate::postgres::database().await else {
        return;
    };
    let server = Server::on_postgres(&url);
    server.ok(&["host", "add", "r1", "192.0.2.1"]);
    add_user(&server, "reader", &[]);
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let name_end = format!(":{}", daemon.pid());
    // Once the serve has claimed the host (within a claim's round).
    let start = Instant::now();
    while server.json(&["servers"])[0]["hosts"] != 1 {
        assert!(start.elapsed() < BOUND, "the host was never claimed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (browser, _) = Browser::signed_in(&daemon, "reader").await;
    let title = browser.text_of("#servers-title", |_| true).await;
    assert_eq!(title, "Servers");
    let row = browser
        .text_of("#servers tbody tr", |t| t.contains(&name_end))
        .await;
    assert!(row.contains("(this one)"), "{row}");
    assert!(row.contains("live until"), "{row}");
    let hosts = browser.text_of("#servers td[data-hosts]", |_| true).await;
    assert_eq!(hosts, "1");
    browser.screenshot("dashboard-servers").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_follows_a_dark_system_sorts_its_tables_and_folds_its_menu_on_a_phone() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_server, _agents, daemon) = fleet(dir.path(), &["r2", "r10", "r1"]).await;
    let url = format!("{}/", daemon.base());

    // A system in dark mode: the page is dark, its text light.
    let browser = Browser::launch(&["--force-dark-mode"]).await;
    browser.sign_in(&url, "admin").await;
    let colours = browser
        .client
        .execute(
            "const root = getComputedStyle(document.documentElement); \
             return [root.backgroundColor, getComputedStyle(document.body).color];",
            vec![],
        )
        .await
        .unwrap();
    let luminance = |css: &Value| -> u32 {
        let digits: Vec<u32> = css
            .as_str()
            .unwrap()
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|d| d.parse().ok())
            .take(3)
            .collect();
        digits.iter().sum()
    };
    let (ground, ink) = (luminance(&colours[0]), luminance(&colours[1]));
    assert!(
        colours[0].as_str().unwrap().starts_with("rgb(") && ground < 150 && ink > 500,
        "{colours}"
    );
    browser.screenshot("dashboard-dark").await;

    // The hosts' table sorts by a column, numbers as numbers, and back.
    browser.visit(&format!("{url}#/hosts")).await;
    browser.text_of("#hosts", |t| t.contains("r10")).await;
    let names = || async { browser.texts("#hosts tbody tr td[data-label=Name]").await };
    let header = "#hosts thead th:nth-child(2) button.sort";
    browser.click(header).await;
    assert_eq!(names().await, ["r1", "r2", "r10"]);
    let sorted = browser
        .find("#hosts thead th:nth-child(2)")
        .await
        .attr("aria-sort")
        .await
        .unwrap();
    assert_eq!(sorted.as_deref(), Some("ascending"));
    browser.click(header).await;
    assert_eq!(names().await, ["r10", "r2", "r1"]);
    // The column of checkboxes is not a sort.
    assert!(!browser.present("#hosts thead th:nth-child(1) button").await);

    // On a phone, the menu is behind one button: the bar is one line until it is opened,
    // and a page chosen closes it.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.visit(&format!("{url}#/")).await;
    browser
        .text_of("#counts", |t| t.contains("Reachable"))
        .await;
    let bar_height = || async {
        browser
            .client
            .execute(
                "return document.querySelector('header.bar').getBoundingClientRect().height;",
                vec![],
            )
            .await
            .unwrap()
            .as_f64()
            .unwrap()
    };
    let folded = bar_height().await;
    assert!(folded < 60.0, "the bar is {folded}px high");
    assert!(
        !browser
            .find("#nav a[href='#/hosts']")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    browser.click("#menu").await;
    let expanded = browser
        .find("#menu")
        .await
        .attr("aria-expanded")
        .await
        .unwrap();
    assert_eq!(expanded.as_deref(), Some("true"));
    assert!(bar_height().await > folded);
    browser.screenshot("menu-phone").await;
    browser.click("#nav a[href='#/hosts']").await;
    browser.text_of("#hosts", |t| t.contains("r10")).await;
    assert_eq!(bar_height().await, folded);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_ends_with_the_web_ui_on_its_agent_until_ctrl_c() {
    if !available() {
        return;
    }
    let mut demo = Command::new(env!("CARGO_BIN_EXE_otto-server"))
        .args(["demo", "--web", "--agent-bin"])
        .arg(agent_bin())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // What it prints: where to open, and the one-time password.
    let mut out = BufReader::new(demo.stdout.take().unwrap());
    let (mut url, mut password, mut dir) = (None, None, None);
    let mut line = String::new();
    while password.is_none() {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the demo ended");
        if let Some(d) = line.strip_prefix("  working directory  ") {
            dir = d.split(" (").next().map(PathBuf::from);
        } else if let Some(u) = line.trim().strip_prefix("open") {
            url = Some(u.trim().to_owned());
        } else if let Some(p) = line.trim().strip_prefix("sign in   admin, password ") {
            password = p.split_whitespace().next().map(str::to_owned);
        }
    }
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        rest
    });
    let (url, password, dir) = (url.unwrap(), password.unwrap(), dir.unwrap());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    // A newcomer signs in with it and sees the demo's agent, reachable.
    let browser = Browser::start().await;
    browser.sign_in_with(&url, "admin", &password).await;
    browser.visit(&format!("{url}#/hosts")).await;
    browser
        .text_of("#hosts", |t| {
            t.contains("demo-router") && t.contains("reachable")
        })
        .await;
    browser.screenshot("demo-web").await;
    browser.close().await;

    // Ctrl-C: the server, the agent and the demo's files go.
    // SAFETY: a signal to our own child, still unreaped.
    unsafe { libc::kill(demo.id() as i32, libc::SIGINT) };
    let status = demo.wait().unwrap();
    let rest = rest.join().unwrap();
    assert!(status.success(), "{status}: {rest}");
    assert!(rest.contains("All steps succeeded"), "{rest}");
    assert!(!dir.exists(), "{} is left", dir.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_hosts_and_a_hosts_page_change_by_themselves_as_hosts_go_down() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::new();
    add_user(&server, "admin", &["--admin"]);
    let mut agents = Vec::new();
    for name in ["r1", "r2", "r3"] {
        agents.push(server.agent(name, dir.path(), &["lab"], "").await);
    }
    server.bounded(&["ping", "--all"]).await;
    let daemon = Daemon::start(&server, &["--http-plain", "--heartbeat-interval", "1s"]);
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    browser
        .text_of("[data-count=reachable]", |t| t == "3")
        .await;
    // A mark on the page: gone if it were loaded again.
    let marked = || async {
        browser
            .client
            .execute("return window.ottoMark === 1;", vec![])
            .await
            .unwrap()
    };
    browser
        .client
        .execute("window.ottoMark = 1;", vec![])
        .await
        .unwrap();

    // The dashboard, open: a host goes down, and its counts change.
    agents[2].stop().await;
    browser
        .text_of("[data-count=unreachable]", |t| t == "1")
        .await;
    browser
        .text_of("[data-count=reachable]", |t| t == "2")
        .await;

    // The hosts, sorted by name backwards: another goes down, the list says so, still sorted.
    browser.visit(&format!("{url}#/hosts")).await;
    browser.text_of("#hosts", |t| t.contains("r3")).await;
    let name = "#hosts thead th:nth-child(2) button.sort";
    browser.click(name).await;
    browser.click(name).await;
    let names = || async { browser.texts("#hosts tbody td[data-label=Name]").await };
    assert_eq!(names().await, ["r3", "r2", "r1"]);
    agents[1].stop().await;
    browser
        .text_of("#hosts tr[data-host=r2] td[data-label=State]", |t| {
            t.contains("unreachable")
        })
        .await;
    assert_eq!(names().await, ["r3", "r2", "r1"]);

    // A host's page: its state changes as it goes down.
    browser.visit(&format!("{url}#/hosts/r1")).await;
    browser.text_of("#host-state", |t| t == "reachable").await;
    agents[0].stop().await;
    browser.text_of("#host-state", |t| t == "unreachable").await;
    assert_eq!(
        marked().await,
        Value::Bool(true),
        "the page was loaded again"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_are_added_imported_acted_on_and_removed_from_the_pages() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1"]).await;
    add_user(&server, "rita", &[]);
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    browser.visit(&format!("{url}#/hosts")).await;
    browser.text_of("#hosts", |t| t.contains("r1")).await;

    // One host added: the page says what its agent must trust.
    browser.click("#add-host summary").await;
    browser.fill("#add-name", "r9").await;
    browser.fill("#add-address", "192.0.2.9").await;
    browser.fill("#add-groups", "lab, edge").await;
    browser.click("#add-submit").await;
    let said = browser
        .text_of("#alert", |t| t.contains("r9 is added"))
        .await;
    assert!(said.contains("otto-agent trust 'ssh-ed25519 "), "{said}");
    browser.text_of("#hosts", |t| t.contains("r9")).await;
    let shown = server.json(&["host", "show", "r9"]);
    assert_eq!(shown["groups"], json!(["edge", "lab"]), "{shown}");

    // An inventory previewed, then imported as previewed.
    browser.click("#import-hosts summary").await;
    browser
        .find("#import-format")
        .await
        .select_by_value("ini")
        .await
        .unwrap();
    browser
        .fill(
            "#import-text",
            "[lab]\nr7 ansible_host=192.0.2.7\nr9 ansible_host=192.0.2.99\n\
             [lab:vars]\nntp_server=192.0.2.123\n",
        )
        .await;
    browser.click("#import-preview").await;
    browser.text_of("#import-steps", |t| t.contains("r7")).await;
    let changes = browser.texts("#import-steps td.change").await;
    assert_eq!(changes, ["add", "update"]);
    let variables = browser.text_of("#import-variables", |_| true).await;
    assert!(
        variables.contains("ntp_server") && variables.contains("group lab"),
        "{variables}"
    );
    // A preview changes nothing.
    assert!(!server.output(&["host", "show", "r7"]).status.success());
    browser.click("#import-apply").await;
    browser
        .text_of("#alert", |t| {
            t.contains("Imported: 1 add, 1 update, 1 variable set")
        })
        .await;
    let env = server.json(&["env", "list", "--all"]).to_string();
    assert!(
        env.contains("ntp_server") && env.contains("192.0.2.123"),
        "{env}"
    );
    browser.text_of("#hosts", |t| t.contains("r7")).await;
    assert_eq!(
        server.json(&["host", "show", "r9"])["address"],
        "192.0.2.99"
    );

    // A control action for the chosen hosts; a reboot is asked for again, and not sent when
    // the answer is no.
    browser.click("input[data-select=r1]").await;
    browser.click("#hosts-control-reload").await;
    browser
        .text_of("#alert", |t| t.starts_with("Reload configuration: r1"))
        .await;
    browser.click("#hosts-control-reboot").await;
    browser.client.dismiss_alert().await.unwrap();
    let events = server.json(&["events", "--host", "r1"]);
    let sent: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "control-sent")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("reload"), "{sent:?}");

    // Several disabled at once, one removed after the question.
    browser.click("input[data-select=r1]").await;
    browser.click("input[data-select=r7]").await;
    browser.click("input[data-select=r9]").await;
    browser.click("#hosts-disable").await;
    browser
        .text_of("#hosts tr[data-host=r7] td[data-label=State]", |t| {
            t == "disabled"
        })
        .await;
    browser
        .text_of("#hosts tr[data-host=r9] td[data-label=State]", |t| {
            t == "disabled"
        })
        .await;
    browser.click("input[data-select=r7]").await;
    browser.click("#hosts-remove").await;
    browser.client.accept_alert().await.unwrap();
    browser.text_of("#hosts", |t| !t.contains("r7")).await;

    // A host's page: its agent sent an action, the host removed from there.
    browser.visit(&format!("{url}#/hosts/r1")).await;
    browser.click("#host-control-rotate-key").await;
    browser
        .text_of("#alert", |t| t.starts_with("Rotate keys: r1"))
        .await;
    browser.visit(&format!("{url}#/hosts/r9")).await;
    browser.click("#host-remove").await;
    browser.client.accept_alert().await.unwrap();
    browser
        .text_of("#alert", |t| t.contains("r9 is removed"))
        .await;
    browser.text_of("#hosts", |t| !t.contains("r9")).await;
    assert!(!server.output(&["host", "show", "r9"]).status.success());
    browser.close().await;

    // Who may not change hosts is offered none of it.
    let (browser, _) = Browser::signed_in(&daemon, "rita").await;
    browser.visit(&format!("{url}#/hosts")).await;
    browser.text_of("#hosts", |t| t.contains("r1")).await;
    for css in [
        "#add-host",
        "#import-hosts",
        "#hosts-act",
        "input[data-select]",
    ] {
        assert!(!browser.present(css).await, "{css} is offered");
    }
    browser.visit(&format!("{url}#/hosts/r1")).await;
    browser.text_of("#host-state", |_| true).await;
    for css in ["#host-remove", "#host-control"] {
        assert!(!browser.present(css).await, "{css} is offered");
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runs_output_is_searched_and_downloaded_from_its_page() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1"]).await;
    server
        .bounded(&[
            "run",
            "-H",
            "r1",
            "--command",
            "printf 'alpha\\nbeta\\ngamma ALPHA\\n'; echo oops >&2",
        ])
        .await;
    let id = server.runs().last().unwrap()["id"].as_i64().unwrap();
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    browser.visit(&format!("{url}#/history/{id}")).await;
    browser
        .text_of("#pastrun-stdout", |t| t.contains("gamma"))
        .await;

    // A search shows the lines that match, whatever their case, in both streams.
    browser.fill("#pastrun-search", "alpha").await;
    browser
        .text_of("#pastrun-matches", |t| t == "2 of 4 lines")
        .await;
    let shown = browser.text_of("#pastrun-stdout", |_| true).await;
    assert_eq!(shown, "alpha\ngamma ALPHA", "{shown}");
    browser.fill("#pastrun-search", "oops").await;
    browser
        .text_of("#pastrun-matches", |t| t == "1 of 4 lines")
        .await;
    browser.fill("#pastrun-search", "").await;
    browser.text_of("#pastrun-matches", |t| t.is_empty()).await;

    // The download is the whole output as a file named for the run.
    let link = browser.find("#pastrun-download").await;
    let name = link.attr("download").await.unwrap();
    assert_eq!(
        name.as_deref(),
        Some(format!("otto-run-{id}-r1.txt").as_str())
    );
    link.click().await.unwrap();
    let file = browser.downloaded(&format!("otto-run-{id}-r1.txt")).await;
    assert_eq!(
        String::from_utf8(file).unwrap(),
        "alpha\nbeta\ngamma ALPHA\n\n--- standard error ---\noops\n"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_history_is_found_by_job_user_outcome_and_time() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1"]).await;
    server.ok(&["script", "add", "hello", "--body", "echo hello"]);
    for args in [
        &["run", "hello", "-H", "r1"][..],
        &["run", "-H", "r1", "--command", "exit 3"],
        &["run", "-H", "r1", "--command", "true"],
    ] {
        server.bounded(args).await;
    }
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    // One more, started by the admin through the API (the web UI's run page).
    browser.visit(&format!("{url}#/run?host=r1")).await;
    browser.run_script_on_one("hello", "r1").await;
    browser.visit(&format!("{url}#/history")).await;
    browser.text_of("#history", |t| t.contains("exit 3")).await;
    let rows = || async { browser.texts("#history tbody tr").await.len() };
    assert_eq!(rows().await, 4);
    let filter = |css: &'static str, value: &'static str| {
        let browser = &browser;
        async move {
            browser.fill(css, value).await;
            browser.click("#history-filter").await;
        }
    };

    // By job: the script's runs, whoever started them; each says who.
    filter("#history-what", "hello").await;
    browser.text_of("#history", |t| !t.contains("exit 3")).await;
    assert_eq!(rows().await, 2);
    let who = browser.texts("#history td.who").await;
    assert!(who.contains(&"admin".to_string()), "{who:?}");
    assert!(who.iter().any(|w| w.ends_with("(command line)")), "{who:?}");
    // And by user: the admin's only.
    filter("#history-user", "admin").await;
    browser.text_of("#history", |t| t.contains("hello")).await;
    assert_eq!(rows().await, 1);

    // By outcome (the other filters cleared).
    browser
        .visit(&format!("{url}#/history?outcome=failed"))
        .await;
    browser.text_of("#history", |t| t.contains("exit 3")).await;
    assert_eq!(rows().await, 1);
    let chosen = browser
        .find("#history-outcome")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(chosen.as_deref(), Some("failed"));

    // By time: none started before 2000.
    browser
        .visit(&format!("{url}#/history?until=2000-01-01T00:00:00.000Z"))
        .await;
    browser
        .text_of("#history-none", |t| t == "No run matches.")
        .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_is_listed_with_its_runs_and_started_again_on_its_failed_host() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1", "r2"]).await;
    // r2 fails until the flag is there.
    let flag = dir.path().join("flag");
    let command = format!("[ $OTTO_HOST_NAME != r2 ] || [ -e {} ]", flag.display());
    let out = server
        .bounded(&["run", "--group", "lab", "--command", &command])
        .await;
    assert_eq!(out.0.status.code(), Some(1), "r2 failed");
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;

    // Jobs in the history: who, what, how many hosts, how their runs stand.
    browser.visit(&format!("{url}#/history")).await;
    browser.click("#history-jobs").await;
    let row = browser
        .text_of("#jobs tbody tr", |t| t.contains("1 failed"))
        .await;
    assert!(
        row.contains("1 ok") && row.contains("(command line)"),
        "{row}"
    );
    browser.click("#jobs tbody tr a").await;

    // Its page: each host's run, linked; started again on the failed host only.
    let runs = browser.text_of("#job-hosts", |t| t.contains("r2")).await;
    assert!(runs.contains("r1") && runs.contains("exit 1"), "{runs}");
    let standing = browser.text_of("#job-runs", |_| true).await;
    assert_eq!(standing, "1 ok · 1 failed");
    std::fs::write(&flag, "").unwrap();
    let again = browser.text_of("#job-again-failed", |_| true).await;
    assert_eq!(again, "Run again on the 1 host that did not succeed");
    browser.click("#job-again-failed").await;
    browser
        .text_of("#run-summary", |t| t == "1 succeeded, 0 failed.")
        .await;
    assert_eq!(
        browser.texts("#run-hosts-output [data-host]").await.len(),
        1
    );
    // The new job is listed first; a run's page leads back to its job.
    browser.visit(&format!("{url}#/history?view=jobs")).await;
    // Once the page has listed them.
    browser
        .text_of("#jobs tbody tr:nth-child(2)", |_| true)
        .await;
    let rows = browser.texts("#jobs tbody tr").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].contains("1 ok") && rows[0].contains("admin"),
        "{rows:?}"
    );
    let runs = server.runs();
    let last = runs.last().unwrap();
    browser
        .visit(&format!("{url}#/history/{}", last["id"]))
        .await;
    let link = browser.text_of("#pastrun-job", |_| true).await;
    assert_eq!(link, format!("Job {}", last["launch"]));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_is_added_its_deliveries_shown_and_removed_from_its_page() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1"]).await;
    add_user(&server, "aud", &["--permission", "audit"]);
    let (url, mut told) = crate::webhooks::receiver().await;
    let (browser, base) = Browser::signed_in(&daemon, "admin").await;
    browser.visit(&format!("{base}#/webhooks")).await;
    browser
        .text_of("#webhooks-none", |t| t.starts_with("No webhooks"))
        .await;

    // Added: its secret shown once, it listed.
    browser.fill("#webhook-url", &url).await;
    browser.click("[data-event=host-unreachable]").await;
    browser.click("#webhook-add").await;
    let secret = browser.text_of("#webhook-secret", |t| !t.is_empty()).await;
    assert_eq!(secret.len(), 64, "{secret}");
    let row = browser.text_of("#webhooks tbody tr", |_| true).await;
    assert!(
        row.contains("A run failed") && row.contains("unreachable"),
        "{row}"
    );

    // A failed run is told: the receiver gets it, and the page lists the delivery.
    server
        .bounded(&["run", "-H", "r1", "--command", "exit 2"])
        .await;
    let received = crate::webhooks::next(&mut told).await;
    let body: Value = serde_json::from_slice(&received.body).unwrap();
    assert_eq!(body["event"], "run-failed", "{body}");
    browser.visit(&format!("{base}#/")).await;
    browser.visit(&format!("{base}#/webhooks")).await;
    let delivery = browser
        .text_of("#deliveries tbody tr", |t| t.contains("A run failed"))
        .await;
    assert!(
        delivery.contains("500") || delivery.contains("delivered"),
        "{delivery}"
    );

    // A user with `audit` only sees them, and is offered no change.
    let (viewer, _) = Browser::signed_in(&daemon, "aud").await;
    viewer.visit(&format!("{base}#/webhooks")).await;
    viewer.text_of("#webhooks tbody tr", |_| true).await;
    assert!(!viewer.present("#new-webhook").await);
    assert!(!viewer.present("[data-remove]").await);
    viewer.close().await;

    // Removed, after asking.
    browser.click("[data-remove]").await;
    browser.client.accept_alert().await.unwrap();
    browser
        .text_of("#webhooks-none", |t| t.starts_with("No webhooks"))
        .await;
    assert_eq!(server.json(&["webhook", "list"]), json!([]));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_and_a_hosts_page_chart_the_fleet_and_its_heartbeats() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1", "r2"]).await;
    server
        .bounded(&["run", "-H", "r1", "--command", "true"])
        .await;
    server
        .bounded(&["run", "-H", "r2", "--command", "exit 1"])
        .await;
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;

    // The dashboard: hosts reachable (serve sampled them as it started), runs by outcome.
    browser.visit(&format!("{url}#/")).await;
    let runs = browser
        .text_of("#chart-runs-caption", |t| t.starts_with("Runs:"))
        .await;
    assert_eq!(runs, "Runs: 1 succeeded, 1 failed, 0 cancelled.");
    let reachable = browser
        .text_of("#chart-reachable-caption", |t| t.contains("between"))
        .await;
    assert_eq!(reachable, "Reachable hosts: between 2 and 2 of 2.");
    assert!(browser.present("#chart-runs canvas").await, "drawn");
    assert!(browser.present("#chart-reachable canvas").await, "drawn");
    browser.click("#range-week").await;
    browser
        .text_of("#charts-title", |t| t == "The last week")
        .await;
    assert!(browser.present("#chart-runs canvas").await, "drawn again");
    browser.screenshot("charts-dashboard").await;

    // A host's page: its heartbeats' round trip, load and free flash.
    browser.visit(&format!("{url}#/hosts/r1")).await;
    let rtt = browser
        .text_of("#chart-round-trip-caption", |t| {
            t.starts_with("Round trip:")
        })
        .await;
    // As many heartbeats as the command line counts.
    let points = server.json(&["metrics", "--host", "r1"]);
    let beats = points[0]["heartbeats"].as_u64().unwrap();
    assert!(beats >= 1, "{points}");
    assert!(rtt.ends_with(&format!("over {beats} heartbeats.")), "{rtt}");
    let load = browser.text_of("#chart-load-caption", |_| true).await;
    assert!(load.starts_with("Load: "), "{load}");
    assert!(browser.present("#chart-round-trip canvas").await, "drawn");
    browser.screenshot("charts-host").await;
    let fleet = server.json(&["metrics", "--days", "7"]);
    assert_eq!(
        (&fleet[0]["succeeded"], &fleet[0]["failed"]),
        (&json!(1), &json!(1)),
        "{fleet}"
    );
    browser.close().await;
}

/// The SHA-256 of `bytes`, hex.
fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The kinds of the events `server` logged.
fn event_kinds(server: &Server) -> Vec<String> {
    let events = server.json(&["events", "--limit", "1000"]);
    let events = events.as_array().unwrap().iter();
    events
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_is_fetched_from_the_run_page_and_a_host_without_it_fails_alone() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_server, _agents, daemon) = fleet(dir.path(), &["r1", "r2"]).await;
    // Each agent runs in its own folder, /proc/self/cwd to it: r1 has the file, r2 has not.
    let content = b"hostname=r1\nchannel=stable\n";
    std::fs::write(dir.path().join("r1").join("settings"), content).unwrap();
    let sha256 = sha256_hex(content);
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    browser.visit(&format!("{url}#/hosts/r1")).await;
    browser.click("#host-run").await;
    // The host page's link chose the host; the second is added.
    browser.fill("#run-hosts", "r1, r2").await;
    // Once the choice is said above the forms: nothing below moves while it is clicked.
    browser
        .text_of("#run-chosen", |t| t.starts_with("2 hosts chosen"))
        .await;
    browser.fill("#fetch-path", "/proc/self/cwd/settings").await;

    // Its dry run says what each host has, and copies nothing.
    browser.click("#fetch-dry-run").await;
    browser
        .text_of("#fetch-results", |t| {
            t.contains("Dry run: nothing was done.")
        })
        .await;
    let r1 = browser
        .text_of("#fetch-plan-hosts li[data-host=r1]", |_| true)
        .await;
    assert_eq!(r1, format!("r1: it has 27 B, SHA-256 {sha256}"));
    let r2 = browser
        .text_of("#fetch-plan-hosts li[data-host=r2]", |_| true)
        .await;
    assert_eq!(r2, "r2: it has no such file");

    browser.click("#fetch-go").await;
    let summary = browser
        .text_of("#fetch-summary", |t| t.contains("of 2 hosts"))
        .await;
    assert!(
        summary.starts_with("1 of 2 hosts sent their copy of settings"),
        "{summary}"
    );
    let r1 = browser
        .text_of("#fetch-table tr[data-host=r1]", |_| true)
        .await;
    assert!(r1.contains("27 B") && r1.contains(&sha256), "{r1}");
    let r2 = browser
        .text_of("#fetch-table tr[data-host=r2]", |_| true)
        .await;
    assert!(r2.contains("no such file: /proc/self/cwd/settings"), "{r2}");
    assert!(!r2.contains("Download"), "{r2}");
    assert!(!browser.present("[data-download=r2]").await);
    browser.screenshot("fetch").await;

    // r1's link downloads its copy, byte for byte.
    let link = browser.find("[data-download=r1]").await;
    assert_eq!(
        link.attr("download").await.unwrap().as_deref(),
        Some("r1-settings")
    );
    link.click().await.unwrap();
    assert_eq!(browser.downloaded("r1-settings").await, content);
    browser.close().await;
}

/// The Run page of `url` with r1 and r2 chosen (once it says so above its forms: nothing below
/// moves while it is clicked) and `file` in its upload form, for `motd` in each agent's folder.
async fn upload_to_both(browser: &Browser, url: &str, file: &Path) {
    browser.visit(&format!("{url}#/run")).await;
    browser.fill("#run-hosts", "r1 r2").await;
    browser
        .text_of("#run-chosen", |t| t.starts_with("2 hosts chosen"))
        .await;
    let input = browser.find("#upload-file").await;
    input.send_keys(file.to_str().unwrap()).await.unwrap();
    browser.fill("#upload-path", "/proc/self/cwd/motd").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uploads_dry_run_from_the_run_page_says_which_hosts_have_the_file_and_sends_nothing() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1", "r2"]).await;
    // r1 has the file already, as the upload would write it (mode 644); r2 has none.
    let content = b"welcome to the lab\n";
    let file = dir.path().join("motd");
    std::fs::write(&file, content).unwrap();
    let on_r1 = dir.path().join("r1").join("motd");
    std::fs::write(&on_r1, content).unwrap();
    std::fs::set_permissions(&on_r1, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let modified = std::fs::metadata(&on_r1).unwrap().modified().unwrap();
    let on_r2 = dir.path().join("r2").join("motd");
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    upload_to_both(&browser, &url, &file).await;

    browser.click("#upload-dry-run").await;
    let plan = browser
        .text_of("#upload-plan", |t| t.contains("Dry run: nothing was done."))
        .await;
    // The SHA-256 computed in the browser is the file's.
    assert!(
        plan.starts_with(&format!(
            "Would upload to /proc/self/cwd/motd (19 bytes) (SHA-256 {}) on 2 hosts: r1, r2",
            sha256_hex(content)
        )),
        "{plan}"
    );
    let r1 = browser
        .text_of("#upload-plan li[data-host=r1]", |_| true)
        .await;
    assert_eq!(r1, "r1: unchanged, nothing would be sent");
    let r2 = browser
        .text_of("#upload-plan li[data-host=r2]", |_| true)
        .await;
    assert_eq!(r2, "r2: would be sent; it has no such file");
    browser.screenshot("upload-dry-run").await;
    // Nothing was sent: r1's file untouched, none on r2, no upload logged, no run, no job.
    assert_eq!(
        std::fs::metadata(&on_r1).unwrap().modified().unwrap(),
        modified
    );
    assert!(!on_r2.exists());
    assert!(!event_kinds(&server).iter().any(|k| k == "uploaded"));
    assert!(server.runs().is_empty());
    assert_eq!(server.json(&["history", "--launches"]), json!([]));

    // The upload itself, followed as a launch: r2 gets the file, r1 is sent nothing.
    browser.click("#upload-go").await;
    browser
        .text_of("#run-summary", |t| t.contains("2 succeeded, 0 failed"))
        .await;
    let r1 = browser.text_of("[data-status=r1]", |_| true).await;
    assert!(r1.starts_with("unchanged"), "{r1}");
    assert_eq!(std::fs::read(&on_r2).unwrap(), content);
    assert_eq!(
        std::fs::metadata(&on_r1).unwrap().modified().unwrap(),
        modified
    );
    let uploaded = event_kinds(&server)
        .iter()
        .filter(|k| *k == "uploaded")
        .count();
    assert_eq!(uploaded, 1);

    // A template: its dry run shows each host's own rendering, and the upload sends it.
    let template = dir.path().join("motd.j2");
    std::fs::write(&template, "welcome to {{ host.name }}\n").unwrap();
    upload_to_both(&browser, &url, &template).await;
    browser.click("#upload-template").await;
    browser.click("#upload-dry-run").await;
    let r2 = browser
        .text_of("#upload-plan li[data-host=r2]", |t| t.contains("rendering"))
        .await;
    let rendered = sha256_hex(b"welcome to r2\n");
    assert!(
        r2.starts_with(&format!(
            "r2: would be sent its rendering of 14 B, SHA-256 {rendered}"
        )),
        "{r2}"
    );
    browser.click("#upload-go").await;
    browser
        .text_of("#run-summary", |t| t.contains("2 succeeded, 0 failed"))
        .await;
    assert_eq!(std::fs::read(&on_r1).unwrap(), b"welcome to r1\n");
    assert_eq!(std::fs::read(&on_r2).unwrap(), b"welcome to r2\n");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_control_actions_dry_run_from_a_hosts_page_leaves_its_agent_running() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents, daemon) = fleet(dir.path(), &["r1"]).await;
    let (browser, url) = Browser::signed_in(&daemon, "admin").await;
    browser.visit(&format!("{url}#/hosts/r1")).await;
    browser.click("#host-control-dry-run").await;
    assert!(
        browser
            .find("#host-control-dry-run")
            .await
            .is_selected()
            .await
            .unwrap()
    );
    browser.click("#host-control-exit").await;
    browser
        .text_of("#alert", |t| {
            t == "Restart agent would go to 1 host: r1. Dry run: nothing was done."
        })
        .await;
    // A dry run of a reboot asks nothing first (a question would be an open prompt here).
    browser.click("#host-control-reboot").await;
    browser
        .text_of("#alert", |t| {
            t == "Reboot would go to 1 host: r1. Dry run: nothing was done."
        })
        .await;
    answers(&server, "r1").await;
    assert!(!event_kinds(&server).iter().any(|k| k == "control-sent"));
    browser.close().await;
}
