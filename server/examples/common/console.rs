//! Figures for the web console on a large fleet (api_bench's `--ui`): how many events per second
//! the fleet's change stream (`GET /api/v1/changes`) carries while a run goes to every host;
//! how long Chromium takes to show the dashboard and the host list (from the address entered
//! to the content on the page); and the CPU that Chromium spends while the dashboard, open,
//! follows the run. Chromium (headless, through chromedriver, on loopback) trusts serve's
//! self-signed certificate for this alone.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Counts the change stream's events (`data:` lines) from `response` until `stop` is set.
pub async fn count_changes(
    mut response: reqwest::Response,
    stop: tokio::sync::watch::Receiver<bool>,
) -> u64 {
    let mut count = 0;
    loop {
        if *stop.borrow() {
            return count;
        }
        match tokio::time::timeout(Duration::from_millis(100), response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                count += chunk
                    .split(|b| *b == b'\n')
                    .filter(|l| l.starts_with(b"data:"))
                    .count() as u64;
            }
            Ok(_) => return count,
            Err(_) => {}
        }
    }
}

/// CPU ticks used so far by each process whose command line names Chromium, by pid.
pub fn chromium_ticks() -> std::collections::HashMap<u32, u64> {
    let mut ticks = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return ticks;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let cmdline = std::fs::read(path.join("cmdline")).unwrap_or_default();
        if !cmdline.windows(8).any(|w| w == b"chromium") {
            continue;
        }
        let used = super::stat_ticks(pid);
        ticks.insert(pid, used);
    }
    ticks
}

/// CPU seconds Chromium's processes used between `before` and `after` ([`chromium_ticks`]):
/// what each process alive at the end used since the start (all of it, if it is new); the
/// last moments of a process that ended meanwhile are not counted.
pub fn chromium_cpu_secs(
    before: &std::collections::HashMap<u32, u64>,
    after: &std::collections::HashMap<u32, u64>,
) -> f64 {
    let used: u64 = after
        .iter()
        .map(|(pid, now)| now.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum();
    used as f64 / super::ticks_per_sec()
}

/// Headless Chromium through chromedriver, killed when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and Chromium (trusting any certificate: serve's own).
    pub async fn start() -> Result<Browser, Error> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut out = BufReader::new(driver.stdout.take().ok_or("no output")?);
        let mut line = String::new();
        while !line.contains("started successfully") {
            line.clear();
            if out.read_line(&mut line)? == 0 {
                return Err("chromedriver ended".into());
            }
        }
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let profile = tempfile::tempdir()?;
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--ignore-certificate-errors", "--window-size=1280,900",
                         format!("--user-data-dir={}", profile.path().display())],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            return Err("capabilities".into());
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await?;
        Ok(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    /// Waits (at most a minute) for the element `css`.
    pub async fn wait_for(&self, css: &str) -> Result<(), Error> {
        self.client
            .wait()
            .at_most(Duration::from_secs(60))
            .every(Duration::from_millis(5))
            .for_element(Locator::Css(css))
            .await?;
        Ok(())
    }

    /// Signs in at `base` (`https://…/`) as `user` with `password`.
    pub async fn sign_in(&self, base: &str, user: &str, password: &str) -> Result<(), Error> {
        self.client.goto(base).await?;
        self.wait_for("#signin-name").await?;
        self.client
            .find(Locator::Css("#signin-name"))
            .await?
            .send_keys(user)
            .await?;
        self.client
            .find(Locator::Css("#signin-password"))
            .await?
            .send_keys(&format!("{password}\u{e007}"))
            .await?;
        self.wait_for("#counts").await
    }

    /// From the address entered to `css` on the page: `url` opened from a blank page.
    pub async fn time_to(&self, url: &str, css: &str) -> Result<Duration, Error> {
        self.client.goto("about:blank").await?;
        let started = Instant::now();
        self.client.goto(url).await?;
        self.wait_for(css).await?;
        Ok(started.elapsed())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
