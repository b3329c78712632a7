//! The policy editor, end to end in a real headless Chromium (Debian's chromium, driven by chromedriver over
//! the WebDriver protocol): build the tutorial's "backend admits only frontend" policy with the form, check
//! the graph shows frontend allowed and not-frontend denied, ask for an explanation with the keyboard, and
//! save a screenshot (`PALISADE_SCREENSHOT=path` to choose where; the README's comes from here).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver session over plain HTTP/1.1.
struct Driver {
    port: u16,
    session: String,
}

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // chromedriver keeps the connection open: read the head, then exactly the body it announces.
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap() == 0 || l == "\r\n" {
            break;
        }
        head.push_str(&l.to_ascii_lowercase());
    }
    let length =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).map(|n| n.trim().parse::<usize>().unwrap());
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body).unwrap();
        }
        None => loop {
            // chunked
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            body.extend_from_slice(&chunk[..n]);
        },
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

impl Driver {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = http(self.port, method, &format!("/session/{}{path}", self.session), body.as_ref());
        if let Some(err) = v["value"]["error"].as_str() {
            panic!("webdriver {method} {path}: {err}: {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    fn find(&self, css: &str) -> String {
        let v = self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        v.as_object().and_then(|m| m.values().next()).and_then(Value::as_str).expect("an element").to_owned()
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.cmd("POST", &format!("/element/{e}/value"), Some(json!({"text": text})));
    }

    fn js(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": []})))
    }

    fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.js(script);
            if !v.is_null() && v != json!(false) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn build_the_tutorial_policy_in_the_browser() {
    let have =
        std::path::Path::new("/usr/bin/chromium").exists() && std::path::Path::new("/usr/bin/chromedriver").exists();
    if !have {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium and chromium-driver");
        eprintln!("skipped: needs /usr/bin/chromium and /usr/bin/chromedriver");
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut ui = Kill(
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["ui", "--addr", "127.0.0.1:0", "-f"])
            .arg(root.join("examples/ui/tutorial-cluster.yaml"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(ui.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("the editor's address").to_owned();

    let port = free_port();
    let _driver = Kill(
        Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let profile = std::env::temp_dir().join(format!("palisade-ui-chromium-{}", std::process::id()));
    let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": "/usr/bin/chromium",
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,800", format!("--user-data-dir={}", profile.display())]
    }}}});
    let session = http(port, "POST", "/session", Some(&caps));
    let id = session["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {session}")).to_owned();
    let d = Driver { port, session: id };

    d.cmd("POST", "/url", Some(json!({"url": url})));
    d.wait_for("the page", "return document.body.dataset.ready === '1'");

    // The tutorial's policy, through the form: backend admits only frontend, on TCP 80.
    d.type_into("#builder input[name=name]", "backend-allow-frontend");
    d.type_into("#builder input[name=podSelector]", "app=backend");
    d.click(".add-rule[data-dir=ingress]");
    d.type_into(".rules[data-dir=ingress] .peer .pod", "app=frontend");
    d.click(".rules[data-dir=ingress] .add-port");
    d.type_into(".rules[data-dir=ingress] .port .num", "80");
    d.click("#write");

    let flow = |from: &str| format!(r#"[data-dir="ingress"][data-from="default/{from}"][data-to="default/backend"]"#);
    let allowed = |from: &str| {
        d.wait_for(
            &format!("the {from} flow"),
            &format!(r#"const e = document.querySelector('{}'); return e && e.dataset.allowed"#, flow(from)),
        )
    };
    assert_eq!(allowed("frontend"), json!("true"), "frontend -> backend is allowed");
    assert_eq!(allowed("not-frontend"), json!("false"), "not-frontend -> backend is denied");
    let rule = d.js(&format!(r#"return document.querySelector('{}').dataset.rule"#, flow("frontend")));
    assert_eq!(rule, json!("default/backend-allow-frontend spec.ingress[0]"));
    let pane = d.js("return document.querySelector('#yaml').value");
    assert!(pane.as_str().unwrap().contains("app: frontend"), "the form wrote the YAML: {pane}");
    let summary = d.js("return document.querySelector('#graph-summary').textContent");
    assert!(summary.as_str().unwrap().contains("backend"), "{summary}");

    // Keyboard: the denied flow is focusable, and Enter brings the engine's explanation.
    let denied = d.find(&flow("not-frontend"));
    d.cmd("POST", &format!("/element/{denied}/value"), Some(json!({"text": "\u{E007}"})));
    let text = d.wait_for(
        "the explanation",
        "const t = document.querySelector('#explanation').textContent; return t.startsWith('DENIED') && t",
    );
    assert!(text.as_str().unwrap().contains("no: default/not-frontend has app=not-frontend"), "{text}");

    // Inline validation: a bad field is reported at its line.
    d.js("const y = document.querySelector('#yaml'); y.value = y.value.replace('protocol: TCP', 'protocol: TCPX'); y.dispatchEvent(new Event('input'));");
    let err = d.wait_for("the error", "const b = document.querySelector('#errors button'); return b && b.textContent");
    assert!(err.as_str().unwrap().starts_with("line "), "{err}");
    d.js("const y = document.querySelector('#yaml'); y.value = y.value.replace('TCPX', 'TCP'); y.dispatchEvent(new Event('input'));");
    d.wait_for("the fix", "return !document.querySelector('#errors button')");
    d.wait_for("the graph again", &format!(r#"return !!document.querySelector('{}')"#, flow("frontend")));

    d.js("window.scrollTo(0, 0); document.activeElement.blur();");
    let shot = d.cmd("GET", "/screenshot", None);
    let png = base64_decode(shot.as_str().unwrap());
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = std::env::var_os("PALISADE_SCREENSHOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("palisade-ui-editor.png"));
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());

    // A narrow window: everything still fits across (no sideways scrolling).
    d.cmd("POST", "/window/rect", Some(json!({"width": 480, "height": 900})));
    let fits = d.js("return document.documentElement.scrollWidth <= window.innerWidth + 1");
    assert_eq!(fits, json!(true), "the page scrolls sideways on a narrow window");

    d.cmd("DELETE", "", None);
    let _ = std::fs::remove_dir_all(&profile);
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(val(c)) << (18 - 6 * i);
        }
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..chunk.len()]);
    }
    out
}
