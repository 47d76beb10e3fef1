//! `tracehunt update-rules` against a real local HTTP server (a
//! `TcpListener` thread answering HTTP/1.1) serving zips built from real
//! SigmaHQ rules (`../shared/corpora/sigma/rules`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracehunt"))
}

fn sigma_rules() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/sigma/rules");
    assert!(
        p.is_dir(),
        "the SigmaHQ corpus is missing at {}",
        p.display()
    );
    p
}

/// The first `n` rule files (by name) of a SigmaHQ rules folder.
fn rule_files(folder: &str, n: usize) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(sigma_rules().join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    v.sort();
    v.truncate(n);
    assert_eq!(v.len(), n);
    v
}

/// A zip of `files` under `prefix/` (as SigmaHQ packages put `rules/…`),
/// plus `extra` entries `(name, bytes)` as given.
fn zip_of(prefix: &str, files: &[PathBuf], extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for f in files {
        let name = format!("{prefix}/{}", f.file_name().unwrap().to_string_lossy());
        w.start_file(name, opts).unwrap();
        w.write_all(&std::fs::read(f).unwrap()).unwrap();
    }
    for (name, bytes) in extra {
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Serves `bodies` by path on 127.0.0.1 (404 otherwise); returns the base URL.
fn serve(bodies: HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req);
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let (status, body) = match bodies.get(&path) {
                Some(b) => ("200 OK", b.as_slice()),
                None => ("404 Not Found", &b"not found"[..]),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/zip\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    format!("http://{addr}")
}

fn update(url: &str, dir: &Path, extra: &[&str]) -> Output {
    bin()
        .args(["update-rules", "--url", url, "--dir"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

fn yml_count(dir: &Path) -> usize {
    walk(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .count()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn update_rules_downloads_verifies_and_swaps() {
    let a = zip_of("rules", &rule_files("windows/process_creation", 300), &[]);
    let b = zip_of(
        "rules",
        &rule_files("windows/registry/registry_set", 120),
        &[],
    );
    let evil = zip_of(
        "rules",
        &rule_files("windows/process_creation", 3),
        &[("../evil.yml", b"title: evil\n")],
    );
    let base = serve(HashMap::from([
        ("/a.zip".to_owned(), a),
        ("/b.zip".to_owned(), b),
        ("/evil.zip".to_owned(), evil),
        ("/page.html".to_owned(), b"<html>moved</html>".to_vec()),
    ]));
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("rules");

    // First install: 300 real process_creation rules, all load.
    let out = update(&format!("{base}/a.zip"), &dir, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("now holds 300 rules (0 failed to load); no previous rules"),
        "{stdout}"
    );
    assert_eq!(yml_count(&dir), 300);
    // The digest printed is the one --sha256 accepts.
    let digest = stdout
        .split("sha256 ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap()
        .to_owned();
    assert_eq!(digest.len(), 64);

    // A second package: the first is kept as rules.old.
    let out = update(&format!("{base}/b.zip"), &dir, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("now holds 120 rules (0 failed to load); previously 300 rules, kept in"),
        "{stdout}"
    );
    assert_eq!(yml_count(&dir), 120);
    let old = top.path().join("rules.old");
    assert_eq!(yml_count(&old), 300);
    // The new rules hunt: `rules check` on the directory agrees.
    let check = bin().args(["rules", "check"]).arg(&dir).output().unwrap();
    assert!(String::from_utf8_lossy(&check.stdout).contains("120 files, rules: 120 loaded"));

    // A wrong --sha256 fails clearly and changes nothing.
    let out = update(
        &format!("{base}/a.zip"),
        &dir,
        &["--sha256", &"0".repeat(64)],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SHA-256 mismatch: expected 0000"), "{err}");
    assert!(err.contains(&digest), "{err}");
    assert_eq!(yml_count(&dir), 120);
    assert_eq!(yml_count(&old), 300);
    // The right one (upper case too) is accepted.
    let out = update(
        &format!("{base}/a.zip"),
        &dir,
        &["--sha256", &digest.to_uppercase()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(yml_count(&dir), 300);
    assert_eq!(yml_count(&old), 120);

    // `../evil.yml` refuses the whole package: nothing written outside, nothing swapped.
    let out = update(&format!("{base}/evil.zip"), &dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`../evil.yml` has an absolute path or `..`: package refused"),
        "{err}"
    );
    assert!(!top.path().join("evil.yml").exists());
    assert_eq!(yml_count(&dir), 300);

    // Not a zip, and a 404: clear errors, nothing changed.
    let out = update(&format!("{base}/page.html"), &dir, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("the package is not a zip"));
    let out = update(&format!("{base}/missing.zip"), &dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    assert_eq!(yml_count(&dir), 300);
    // No temporary directory is left behind.
    let names: Vec<String> = std::fs::read_dir(top.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["rules", "rules.old"], "{names:?}");
}

/// Zip bombs: a package unpacking past 512 MiB or holding more than
/// 100,000 entries is refused, and the rules directory is left alone.
#[test]
fn update_rules_refuses_packages_over_the_caps() {
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    // One entry of 513 MiB of zeros (about 0.5 MB compressed).
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("rules/zeros.yml", opts).unwrap();
    let block = vec![0u8; 1 << 20];
    for _ in 0..513 {
        w.write_all(&block).unwrap();
    }
    let bomb = w.finish().unwrap().into_inner();
    // 100,001 empty entries.
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..100_001 {
        w.start_file(format!("r/{i}.yml"), stored).unwrap();
    }
    let many = w.finish().unwrap().into_inner();
    let good = zip_of("rules", &rule_files("windows/process_creation", 10), &[]);
    let base = serve(HashMap::from([
        ("/bomb.zip".to_owned(), bomb),
        ("/many.zip".to_owned(), many),
        ("/good.zip".to_owned(), good),
    ]));
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("rules");
    assert!(update(&format!("{base}/good.zip"), &dir, &[])
        .status
        .success());
    let out = update(&format!("{base}/bomb.zip"), &dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unpacks to more than 536870912 bytes: refused"),
        "{err}"
    );
    let out = update(&format!("{base}/many.zip"), &dir, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has 100001 entries, more than 100000: refused"),
        "{err}"
    );
    assert_eq!(yml_count(&dir), 10);
    assert_eq!(std::fs::read_dir(top.path()).unwrap().count(), 1);
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A `--dir` holding someone's files, a `DIR.old` tracehunt did not write,
/// a regular file, `.`, `..`, `rd/.` and `/` are refused: nothing is moved
/// or deleted. Only directories carrying `.tracehunt-rules` are replaced.
#[test]
fn update_rules_never_moves_or_deletes_a_dir_it_did_not_install() {
    let good = zip_of("rules", &rule_files("windows/process_creation", 5), &[]);
    let base = serve(HashMap::from([("/good.zip".to_owned(), good)]));
    let url = format!("{base}/good.zip");
    let top = tempfile::tempdir().unwrap();
    let proj = top.path().join("proj");
    let proj_old = top.path().join("proj.old");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::create_dir_all(&proj_old).unwrap();
    std::fs::write(proj.join("main.c"), "code\n").unwrap();
    std::fs::write(proj_old.join("thesis.txt"), "thesis\n").unwrap();

    let out = update(&url, &proj, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("proj holds files tracehunt did not install (no .tracehunt-rules); choose another --dir"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(proj.join("main.c")).unwrap(),
        "code\n"
    );
    assert_eq!(
        std::fs::read_to_string(proj_old.join("thesis.txt")).unwrap(),
        "thesis\n"
    );

    // An empty --dir is fine, but a foreign DIR.old is refused, named.
    std::fs::remove_file(proj.join("main.c")).unwrap();
    let out = update(&url, &proj, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains(
            "proj.old (where the previous rules would be kept) was not installed by tracehunt"
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(proj_old.join("thesis.txt")).unwrap(),
        "thesis\n"
    );
    std::fs::remove_dir_all(&proj_old).unwrap();
    let out = update(&url, &proj, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(yml_count(&proj), 5);
    let marker = std::fs::read_to_string(proj.join(".tracehunt-rules")).unwrap();
    assert!(marker.contains(&format!("url = {url}\n")), "{marker}");
    assert!(marker.contains("sha256 = "), "{marker}");
    // A second install replaces it and keeps it (marked) as proj.old; a third
    // replaces that proj.old.
    assert!(update(&url, &proj, &[]).status.success());
    assert!(proj_old.join(".tracehunt-rules").is_file());
    assert!(update(&url, &proj, &[]).status.success());
    assert_eq!(yml_count(&proj_old), 5);

    // A regular file, `.`, `..`, `x/.`, `x/..`, `/`: refused, nothing renamed.
    std::fs::write(top.path().join("afile.txt"), "keep\n").unwrap();
    for (dir, msg) in [
        ("afile.txt", "--dir afile.txt is not a directory"),
        (".", "--dir .: not a rules directory"),
        ("..", "--dir ..: not a rules directory"),
        ("proj/.", "--dir proj/.: not a rules directory"),
        ("proj/..", "--dir proj/..: not a rules directory"),
        ("/", "--dir /: not a rules directory"),
    ] {
        let out = bin()
            .current_dir(top.path())
            .args(["update-rules", "--url", &url, "--dir", dir])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{dir}");
        assert!(stderr_of(&out).contains(msg), "{dir}: {}", stderr_of(&out));
    }
    // The current directory named by its full path is refused too.
    let out = bin()
        .current_dir(&proj)
        .args(["update-rules", "--url", &url, "--dir"])
        .arg(&proj)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("the current directory or one of its parents"),
        "{}",
        stderr_of(&out)
    );
    let mut names: Vec<String> = std::fs::read_dir(top.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["afile.txt", "proj", "proj.old"]);
    assert_eq!(
        std::fs::read_to_string(top.path().join("afile.txt")).unwrap(),
        "keep\n"
    );
}

/// Entries with an absolute path, a drive letter (`C:/x`, `C:x`) or a
/// duplicate name refuse the package, naming the entry.
#[test]
fn update_rules_refuses_absolute_drive_and_duplicate_entries() {
    let files = rule_files("windows/process_creation", 3);
    // A duplicate: `rules/b.yml` renamed to `rules/a.yml` in the bytes (the
    // zip writer refuses to write one).
    let mut dup = zip_of(
        "rules",
        &[],
        &[
            ("rules/a.yml", &std::fs::read(&files[0]).unwrap()),
            ("rules/b.yml", &std::fs::read(&files[1]).unwrap()),
        ],
    );
    let (from, to) = (b"rules/b.yml", b"rules/a.yml");
    let mut i = 0;
    while i + from.len() <= dup.len() {
        if &dup[i..i + from.len()] == from {
            dup[i..i + from.len()].copy_from_slice(to);
        }
        i += 1;
    }
    let mut bodies = HashMap::from([("/dup.zip".to_owned(), dup)]);
    for (i, name) in ["/tmp/x.yml", "C:/x.yml", "C:x.yml", "\\x.yml"]
        .iter()
        .enumerate()
    {
        bodies.insert(
            format!("/bad{i}.zip"),
            zip_of("rules", &files, &[(name, b"title: x\n")]),
        );
    }
    let base = serve(bodies);
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("rules");
    for (i, name) in ["/tmp/x.yml", "C:/x.yml", "C:x.yml", "\\x.yml"]
        .iter()
        .enumerate()
    {
        let out = update(&format!("{base}/bad{i}.zip"), &dir, &[]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = stderr_of(&out);
        assert!(
            err.contains(&format!("zip entry `{name}` has an absolute path")),
            "{name}: {err}"
        );
    }
    let out = update(&format!("{base}/dup.zip"), &dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("zip entry `rules/a.yml` appears twice: package refused"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(top.path()).unwrap().count(), 0);
}

/// `--sha256` is checked before any network access; credentials in the URL
/// never appear in output; a local zip (`file://` or a plain path) installs
/// without network; the success message says how to hunt with the rules.
#[test]
fn update_rules_checks_sha256_first_redacts_credentials_and_reads_local_zips() {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("rules");
    // Port 1 on loopback: nothing listens, so a download would fail with
    // "connection refused", not the --sha256 error.
    let out = update("http://127.0.0.1:1/x.zip", &dir, &["--sha256", "zz"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("--sha256 `zz` is not a SHA-256 (64 hex digits)"),
        "{err}"
    );
    assert!(!err.contains("onnect"), "{err}");

    let good = zip_of("rules", &rule_files("windows/process_creation", 4), &[]);
    let zip_path = top.path().join("good.zip");
    std::fs::write(&zip_path, &good).unwrap();
    let base = serve(HashMap::from([("/good.zip".to_owned(), good)]));
    let with_creds = base.replace("http://", "http://user:s3cret@");
    for url in [
        format!("{with_creds}/good.zip"),
        format!("{with_creds}/missing.zip"),
        "http://user:s3cret@127.0.0.1:1/x.zip".to_owned(),
    ] {
        let out = update(&url, &dir, &[]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr_of(&out)
        );
        assert!(!all.contains("s3cret"), "{all}");
        assert!(all.contains("http://***@127.0.0.1:"), "{all}");
    }
    assert_eq!(yml_count(&dir), 4);

    for url in [
        format!("file://{}", zip_path.display()),
        zip_path.display().to_string(),
    ] {
        let out = update(&url, &dir, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{url}: {}", stderr_of(&out));
        assert!(
            stdout.contains("now holds 4 rules (0 failed to load)"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "hunt with them: tracehunt hunt LOGS -r {}",
                dir.display()
            )),
            "{stdout}"
        );
    }
}

/// An endless body is cut at 256 MiB and streamed to a temporary file, not
/// held in memory: the peak RSS seen while it downloads stays far below it.
#[cfg(target_os = "linux")]
#[test]
fn update_rules_streams_an_endless_body_without_holding_it_in_memory() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nConnection: close\r\n\r\n"
            );
            let block = vec![0u8; 1 << 20];
            while s.write_all(&block).is_ok() {}
        }
    });
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("rules");
    let mut child = bin()
        .args([
            "update-rules",
            "--url",
            &format!("http://{addr}/x.zip"),
            "--dir",
        ])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("(at most 268435456 bytes): more than 268435456 bytes"),
        "{err}"
    );
    assert!(peak_kb > 0);
    assert!(peak_kb < 100 << 10, "peak RSS {peak_kb} kB");
    assert_eq!(std::fs::read_dir(top.path()).unwrap().count(), 0);
}
