//! A real, headless Chromium driven over WebDriver: each `Browser` is its own `chromedriver`
//! process with a fresh profile, so cookies and storage never leak between sessions.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

/// Where Debian's `chromium` and `chromium-driver` packages put them (`.ci/run` installs both).
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a wait for the page lasts before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// One browser window on the server at `base`.
pub struct Browser {
    pub client: Client,
    /// `http://127.0.0.1:PORT` of the server under test.
    pub base: String,
    /// `http://127.0.0.1:PORT` of this browser's chromedriver.
    driver_url: String,
    driver: Child,
    _profile: TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium `width` pixels wide (800 high), with the
    /// colour scheme `dark` or `light`, for the server at `base`.
    pub async fn start(base: &str, width: u32, scheme: &str) -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists(),
            "the browser tests need {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver (.ci/run does)"
        );
        let port = free_port();
        // A group of its own, so that dropping the browser after a failed test also ends the
        // Chromium processes chromedriver started.
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver_url = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().expect("a profile directory");
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={width},800"),
                    format!("--blink-settings=preferredColorScheme={}", if scheme == "dark" { 0 } else { 1 }),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let started = Instant::now();
        let client = loop {
            let mut builder = ClientBuilder::new(HttpConnector::new());
            match builder
                .capabilities(capabilities.clone())
                .connect(&driver_url)
                .await
            {
                Ok(client) => break client,
                // chromedriver may not listen yet.
                Err(_) if started.elapsed() < PATIENCE => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("no WebDriver session: {error}"),
            }
        };
        Browser {
            client,
            base: base.to_owned(),
            driver_url,
            driver,
            _profile: profile,
        }
    }

    /// Opens `path` of the server (`/`, `/#/list/week`, ...).
    pub async fn open(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.client.goto(&url).await.expect("the page loads");
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|error| panic!("script failed: {error}\n{script}"))
    }

    /// Waits until `predicate` (a function body returning a boolean) holds in the page.
    pub async fn wait_until(&self, what: &str, predicate: &str, args: Vec<Value>) {
        let started = Instant::now();
        loop {
            if self.js(predicate, args.clone()).await == json!(true) {
                return;
            }
            if started.elapsed() > PATIENCE {
                let body = self.js("return document.body.innerText", vec![]).await;
                panic!("waited {PATIENCE:?} for {what}; the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The element `selector` matches, once it is in the page.
    pub async fn find(&self, selector: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|error| panic!("no {selector}: {error}"))
    }

    /// Clicks the element `selector` matches.
    pub async fn click(&self, selector: &str) {
        let element = self.find(selector).await;
        element
            .click()
            .await
            .unwrap_or_else(|error| panic!("click {selector}: {error}"));
    }

    /// Replaces the value of the input `selector` matches by typing `text`.
    pub async fn type_into(&self, selector: &str, text: &str) {
        let input = self.find(selector).await;
        input.clear().await.expect("the input clears");
        input.send_keys(text).await.expect("the keys are typed");
    }

    /// Presses `keys` (characters, or WebDriver key codes such as `\u{E004}` for Tab) on
    /// whatever has focus now, as a keyboard would: modifiers (Shift, Control, Alt, Meta) stay
    /// down until the end, so `"\u{E00A}\u{E015}"` is Alt+ArrowDown.
    pub async fn press(&self, keys: &str) {
        let is_modifier = |key: char| matches!(key, '\u{E008}'..='\u{E00A}' | '\u{E03D}');
        let mut actions = KeyActions::new("keyboard".to_owned());
        for key in keys.chars() {
            actions = actions.then(KeyAction::Down { value: key });
            if !is_modifier(key) {
                actions = actions.then(KeyAction::Up { value: key });
            }
        }
        for key in keys.chars().filter(|key| is_modifier(*key)) {
            actions = actions.then(KeyAction::Up { value: key });
        }
        self.client
            .perform_actions(actions)
            .await
            .expect("the keys are pressed");
    }

    /// Logs in through the page's form and waits for the lists.
    pub async fn log_in(&self, user: &str, password: &str) {
        self.open("/").await;
        self.type_into("#login-user", user).await;
        self.type_into("#login-password", password).await;
        self.click("#login-form button[type=submit]").await;
        self.wait_until(
            "the user's name in the header",
            "return document.querySelector('#who')?.textContent.includes(arguments[0]) === true",
            vec![json!(user)],
        )
        .await;
    }

    /// Every message the page logged at level SEVERE (errors, failed loads, CSP violations)
    /// since the last call.
    pub async fn console_errors(&self) -> Vec<String> {
        let session = self.client.session_id().await.expect("a session");
        let session = session.expect("the session has an id");
        let url = format!("{}/session/{session}/se/log", self.driver_url);
        let answer = reqwest::Client::new()
            .post(url)
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("chromedriver answers");
        let log: Value = answer.json().await.expect("a JSON log");
        log["value"]
            .as_array()
            .expect("log entries")
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Ends the session, then (on drop) chromedriver and the browser.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

/// A loopback port free now (another process could take it before chromedriver does, which
/// would fail the start loudly, not silently).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a local address").port()
}
