//! A headless Chromium driven through chromedriver (WebDriver), shared by
//! `tests/consent_page.rs` and `tests/operator.rs`.
//!
//! Needs Debian's `chromium` and `chromium-driver` packages (`hack/deps`, which `make test`
//! runs, installs them); without them the tests fail and say so.

use std::{
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// A chromedriver process with one Chromium session; `close` ends both, and dropping kills
/// whatever is left (after a failed assertion, say).
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium outlives a killed chromedriver, so kill the process group they share.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

impl Browser {
    /// Starts chromedriver on a free port and opens a Chromium session with a fresh profile.
    pub async fn start() -> Browser {
        let missing = |what: &str| {
            panic!(
                "{what} not found in PATH: install Debian's chromium and chromium-driver \
                 (`hack/deps` does, and `make test` runs it)"
            )
        };
        let chromium = find_in_path("chromium").unwrap_or_else(|| missing("chromium"));
        let chromedriver = find_in_path("chromedriver").unwrap_or_else(|| missing("chromedriver"));
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let webdriver = format!("http://127.0.0.1:{port}");
        let mut last_error = None;
        // chromedriver needs a moment before it accepts sessions.
        for _ in 0..100 {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&webdriver)
                .await
            {
                Ok(client) => {
                    return Browser {
                        client,
                        driver,
                        _profile: profile,
                    };
                }
                Err(error) => last_error = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no WebDriver session from chromedriver: {last_error:?}");
    }

    /// Ends the session, which quits Chromium, then chromedriver.
    pub async fn close(self) {
        self.client.clone().close().await.unwrap();
    }

    /// Waits for the navigation a click started, until the title starts with `prefix`.
    pub async fn wait_title(&self, prefix: &str) -> String {
        let mut title = String::new();
        for _ in 0..200 {
            title = self.client.title().await.unwrap();
            if title.starts_with(prefix) {
                return title;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("page title is {title:?}, expected it to start with {prefix:?}");
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    pub async fn body_text(&self) -> String {
        self.client
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Opens an authorization URL as the ACQP would, accepts the terms and authorizes.
    pub async fn authorize(&self, url: &str) {
        self.client.goto(url).await.unwrap();
        self.wait_title("Review authorization request").await;
        self.click("label[for=accept-terms]").await;
        self.click("button[value=authorize]").await;
        self.wait_title("Authorized").await;
    }
}
