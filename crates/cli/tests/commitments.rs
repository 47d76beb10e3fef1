//! `tracehunt commitments` end to end (issue #15): five yearly hunts of synthetic Security
//! logs (2013–2017) into one store, each intrusion a separate incident whose top candidate is
//! Deep Panda (G0009, suspected state China in the MISP galaxy), then the analysis at the
//! 2015-09-25 US–China commitment; and the same from a CSV of counts.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracehunt"))
        .args(args)
        .current_dir(root())
        .env_remove("TRACEHUNT_STORE")
        .output()
        .expect("run tracehunt")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A rule on logons of `intruder`, tagged with ten techniques that rank Deep Panda first.
const RULE: &str = "title: Intruder logon with Deep Panda tradecraft
id: 7a3c1c7e-0000-4000-8000-000000000015
level: high
tags: [attack.t1546.008, attack.t1505.003, attack.t1218.010, attack.t1564.003, attack.t1027.005,
       attack.t1021.002, attack.t1047, attack.t1018, attack.t1057, attack.t1059.001]
logsource: {product: windows, service: security}
detection: {sel: {EventID: 4624, TargetUserName: intruder}, condition: sel}
";

/// Intrusions in month `m` (1–12) of `year`: 14–16 a month until 2015-08, 3–4 a month from
/// 2015-10 (a level drop at the commitment, no trend), and 9 in the transition month.
fn intrusions(year: i32, m: u32) -> u32 {
    match (year, m) {
        (y, _) if y < 2015 => 14 + (m % 3),
        (2015, m) if m < 9 => 14 + (m % 3),
        (2015, 9) => 9,
        _ => 3 + (m % 2),
    }
}

/// One JSON-lines file per month: a logoff on the 1st and the 28th (the coverage: the file
/// has events all month) and the month's intrusions, each on its own host.
fn write_year(dir: &Path, year: i32) {
    for m in 1..=12u32 {
        let mut lines = Vec::new();
        let ev = |id: u32, host: &str, day: u32, rec: u32, user: &str| {
            format!(
                r#"{{"EventID": {id}, "Channel": "Security", "Computer": "{host}", "TimeCreated": "{year}-{m:02}-{day:02}T12:00:00Z", "EventRecordID": {rec}, "TargetUserName": "{user}"}}"#
            )
        };
        lines.push(ev(4634, "dc1", 1, 1, "svc"));
        for k in 0..intrusions(year, m) {
            lines.push(ev(
                4624,
                &format!("ws{year}{m:02}-{k}"),
                2 + k,
                10 + k,
                "intruder",
            ));
        }
        lines.push(ev(4634, "dc1", 28, 99, "svc"));
        let p = dir
            .join(format!("{year}"))
            .join(format!("{year}-{m:02}.json"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, lines.join("\n") + "\n").unwrap();
    }
}

#[test]
fn five_hunts_into_one_store_then_a_level_drop_at_the_us_china_commitment() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("intruder.yml");
    std::fs::write(&rule, RULE).unwrap();
    let store = dir.path().join("hunts.db");
    let s = store.to_str().unwrap();
    for year in 2013..=2017 {
        write_year(dir.path(), year);
        let logs = dir.path().join(format!("{year}"));
        ok(&run(&[
            "hunt",
            logs.to_str().unwrap(),
            "--rules",
            rule.to_str().unwrap(),
            "--store",
            s,
            "--format",
            "jsonl",
            "--output",
            dir.path().join("out.jsonl").to_str().unwrap(),
            // Each hunt writes the same output file again.
            "--clobber",
        ]));
    }
    let v: Value = serde_json::from_str(&ok(&run(&[
        "commitments",
        "--store",
        s,
        "--state",
        "China",
        "--only",
        "us-china-2015",
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(v["state"], "CN");
    // The series is exactly what was written: 60 months, one source each.
    let counts: Vec<f64> = v["series"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_f64().unwrap())
        .collect();
    let expected: Vec<f64> = (2013..=2017)
        .flat_map(|y| (1..=12).map(move |m| f64::from(intrusions(y, m))))
        .collect();
    assert_eq!(counts, expected);
    assert!(v["series"]["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e.as_f64() == Some(1.0)));
    assert_eq!(
        v["incidents"],
        serde_json::json!({"counted": expected.iter().sum::<f64>() as u64, "uncovered": 0})
    );

    let d = &v["dates"][0];
    assert_eq!(d["commitment"]["id"], "us-china-2015");
    let level = &d["analysis"]["its"]["level_change"];
    let ratio = level["ratio"].as_f64().unwrap();
    // Means 15 → 3.5 a month: a level ratio near 0.23, its CI well below 1.
    assert!((0.15..0.35).contains(&ratio), "{level}");
    assert!(level["ci_high"].as_f64().unwrap() < 1.0, "{level}");
    let verdict = d["verdict"].as_str().unwrap();
    assert!(verdict.contains("2015-09-25"), "{verdict}");
    assert!(verdict.contains("level drop"), "{verdict}");

    // The table names the date, the verdict and the assumptions.
    let table = ok(&run(&["commitments", "--store", s, "--state", "CN"]));
    for needle in [
        "China (CN)",
        "2015-09-25",
        "2014-05-19",
        "verdict:",
        "assumptions:",
        "dates compared",
    ] {
        assert!(table.contains(needle), "{needle} missing:\n{table}");
    }

    // The store's HTML report: every section, the three commitment charts of China with
    // their verdicts, the one actor.
    let html_path = dir.path().join("report.html");
    let out = run(&[
        "report",
        "--store",
        s,
        "--output",
        html_path.to_str().unwrap(),
    ]);
    ok(&out);
    let html = std::fs::read_to_string(&html_path).unwrap();
    for id in [
        "summary",
        "timeline",
        "incidents",
        "heatmap",
        "actors",
        "commitments",
    ] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "section {id} missing"
        );
    }
    for date in ["2015-09-25", "2015-10-22", "2015-11-16"] {
        assert!(
            html.contains(&format!("significant level drop at {date}")),
            "{date}"
        );
    }
    assert!(html.contains("G0009") && html.contains("Deep Panda"));
    assert!(!html.contains("<script"), "the report needs no script");

    // No Russian group in the store: every count is zero, and the tool says it cannot fit.
    let ru = run(&[
        "commitments",
        "--store",
        s,
        "--state",
        "RU",
        "--format",
        "json",
    ]);
    let ru: Value = serde_json::from_str(&ok(&ru)).unwrap();
    let verdict = ru["dates"][0]["verdict"].as_str().unwrap();
    assert!(verdict.contains("not estimable"), "{verdict}");
}

#[test]
fn counts_from_csv_and_bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("monthly.csv");
    let mut text = String::from("period,count\n");
    for y in 2013..=2017 {
        for m in 1..=12u32 {
            text.push_str(&format!("{y}-{m:02},{}\n", intrusions(y, m)));
        }
    }
    std::fs::write(&csv, &text).unwrap();
    let v: Value = serde_json::from_str(&ok(&run(&[
        "commitments",
        "--counts",
        csv.to_str().unwrap(),
        "--only",
        "us-china-2015",
        "--format",
        "json",
    ])))
    .unwrap();
    assert!(v["dates"][0]["verdict"]
        .as_str()
        .unwrap()
        .contains("level drop"));

    std::fs::write(&csv, "period,count\n2015-01,3\n2015-02,x\n").unwrap();
    let bad = run(&["commitments", "--counts", csv.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("monthly.csv") && err.contains("line 3"),
        "{err}"
    );

    // Hints for the two commonest CSV mistakes (fresh-user finding).
    std::fs::write(&csv, "period;count\n2015-01;3\n").unwrap();
    let bad = run(&["commitments", "--counts", csv.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("comma-separated: period,count"), "{err}");
    std::fs::write(&csv, "period,count\n2015-W01,3\n").unwrap();
    let bad = run(&["commitments", "--counts", csv.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("add --period week"), "{err}");

    let bad = run(&[
        "commitments",
        "--counts",
        csv.to_str().unwrap(),
        "--state",
        "Atlantis",
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Atlantis"));
    let none = run(&["commitments"]);
    assert!(String::from_utf8_lossy(&none.stderr).contains("--store"));
}
