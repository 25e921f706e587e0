//! `lab report DIR` opened in a real browser: headless Chromium (Debian's `chromium`) renders
//! the page of a small sweep, takes a screenshot, and the page must show its title, the sweep
//! table and figures of nonzero size, with no console error.
//!
//! The page itself has no script: the test loads a copy with two probes added, one at the top
//! of <head> (records console errors and failed loads) and one before </body> (measures the
//! page after layout and writes it into the DOM, which `--dump-dom` prints). Without Chromium
//! (a laptop) the test says so and passes; under CI (`CI` set) it must run.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::lab;
use tempfile::TempDir;

const HEAD_PROBE: &str = r#"<script>
window.__errors = [];
(function () {
  var error = console.error, warn = console.warn;
  function text(kind, args) { return kind + ": " + Array.prototype.map.call(args, String).join(" "); }
  console.error = function () { __errors.push(text("console.error", arguments)); return error.apply(console, arguments); };
  console.warn = function () { __errors.push(text("console.warn", arguments)); return warn.apply(console, arguments); };
  addEventListener("error", function (e) {
    var t = e.target;
    __errors.push(t && t !== window && (t.src || t.href) ? "failed to load " + (t.src || t.href) : "uncaught: " + e.message);
  }, true);
})();
</script>"#;

const TAIL_PROBE: &str = r#"<script>
addEventListener("load", function () { setTimeout(function () {
  var figures = Array.prototype.map.call(document.querySelectorAll("svg"), function (s) {
    var b = s.getBoundingClientRect(); return [b.width, b.height]; });
  var m = { title: document.title, tables: document.querySelectorAll("table").length,
            rows: document.querySelectorAll("table tbody tr").length, figures: figures, errors: __errors };
  var p = document.createElement("pre"); p.hidden = true;
  p.textContent = "@@MEA" + "SURE@@" + JSON.stringify(m).replace(/[<>&]/g, function (c) {
    return "\\u" + ("000" + c.charCodeAt(0).toString(16)).slice(-4); }) + "@@E" + "ND@@";
  document.body.appendChild(p);
}, 500); });
</script>"#;

fn chromium() -> Option<PathBuf> {
    let found = [
        "/usr/lib/chromium/chromium",
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must check the report in Chromium: apt-get install chromium"
        );
        eprintln!("skipped: no chromium here (apt-get install chromium)");
    }
    found
}

/// The report with the probes added.
fn probed(page: &str) -> String {
    let head = page.find("<head>").expect("a <head>") + "<head>".len();
    let mut out = format!("{}{HEAD_PROBE}{}", &page[..head], &page[head..]);
    let end = out.rfind("</body>").expect("a </body>");
    out.insert_str(end, TAIL_PROBE);
    out
}

/// Chromium's stdout and stderr; the whole process group is killed after `timeout`.
fn headless(bin: &Path, dir: &Path, args: &[String], timeout: Duration) -> (String, String) {
    let mut child = Command::new(bin)
        .args(args)
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .env("XDG_CACHE_HOME", dir.join("xdg-cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > timeout {
            // SAFETY: signals the process group this test started.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!("chromium did not finish in {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (stdout.join().unwrap(), stderr.join().unwrap())
}

#[test]
fn the_report_of_a_sweep_renders_in_chromium() {
    let tmp = TempDir::new().unwrap();
    let out = lab(tmp.path())
        .args(["sweep", "pmd", "--iterations", "10", "--out", "s", "-q"])
        .args(["eta={1,10}", "divergence={kl,euclidean}"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A run that kept only its PNG still gets its figure, drawn from the CSV.
    let png_only = lab(tmp.path())
        .args([
            "run",
            "pmd",
            "--iterations",
            "10",
            "--out",
            "s/extra",
            "-q",
            "--format",
            "png",
        ])
        .output()
        .unwrap();
    assert!(png_only.status.success());
    let written = lab(tmp.path()).args(["report", "s"]).output().unwrap();
    assert!(written.status.success());
    assert!(
        String::from_utf8_lossy(&written.stdout).contains("(5 runs, 5 figures)"),
        "{}",
        String::from_utf8_lossy(&written.stdout)
    );
    let page = std::fs::read_to_string(tmp.path().join("s/report.html")).unwrap();
    // Self-contained: no script, nothing loaded from anywhere (the only URL is SVG's namespace).
    assert!(!page.contains("<script") && !page.contains(" src=") && !page.contains("<link"));
    let urls = page.matches("http").count();
    assert_eq!(urls, page.matches("http://www.w3.org/2000/svg").count());
    for expected in [
        "lab sweep pmd --out s",
        "pmd.monotone",
        "Xiao",
        "lab run pmd --spec",
        "extra (drawn from the CSV)",
    ] {
        assert!(page.contains(expected), "{expected}");
    }
    // Not written over without --force.
    let again = lab(tmp.path()).args(["report", "s"]).output().unwrap();
    assert_eq!(again.status.code(), Some(2));

    let Some(bin) = chromium() else {
        return;
    };
    let wrapper = tmp.path().join("probed.html");
    std::fs::write(&wrapper, probed(&page)).unwrap();
    let shot = tmp.path().join("shot.png");
    let args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--run-all-compositor-stages-before-draw",
        "--virtual-time-budget=3000",
        "--window-size=1200,900",
        "--dump-dom",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("--user-data-dir={}", tmp.path().join("profile").display()),
        format!("--screenshot={}", shot.display()),
        format!("file://{}", wrapper.display()),
    ])
    .collect();
    let (dom, log) = headless(&bin, tmp.path(), &args, Duration::from_secs(90));
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(":INFO:CONSOLE"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let json = dom
        .split("@@MEASURE@@")
        .nth(1)
        .and_then(|s| s.split("@@END@@").next())
        .unwrap_or_else(|| panic!("the page did not load; chromium said:\n{log}"));
    let m: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(m["title"], "lab report: s");
    assert!(m["errors"].as_array().unwrap().is_empty(), "{m}");
    assert!(
        m["tables"].as_u64().unwrap() >= 2,
        "the sweep table and a claim table: {m}"
    );
    assert!(m["rows"].as_u64().unwrap() >= 4, "{m}");
    let figures = m["figures"].as_array().unwrap();
    assert_eq!(figures.len(), 5, "{m}");
    // The first run is open: its figure is laid out at a real size.
    let (w, h) = (
        figures[0][0].as_f64().unwrap(),
        figures[0][1].as_f64().unwrap(),
    );
    assert!(w > 300.0 && h > 200.0, "{m}");
    // The screenshot is the page, not a blank window.
    let image = image::open(&shot).unwrap().to_rgb8();
    assert_eq!((image.width(), image.height()), (1200, 900));
    let dark = image
        .pixels()
        .filter(|p| p.0.iter().all(|&c| c < 128))
        .count();
    assert!(dark > 2_000, "{dark} dark pixels: is the page blank?");
}
