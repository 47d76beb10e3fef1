//! Software and group evidence from rules (issue #18 item 5), on SigmaHQ's real rules
//! (`../shared/corpora/sigma`, SigmaHQ/sigma 8eaafff1f, DRL 1.1) and the built-in ATT&CK
//! v18.1 knowledge base: what the names in `rules-emerging-threats` folders and titles resolve
//! to (and a sample of what does not), the tags, and the evidence a firing rule gives.
//! Skips with a message when the corpora are not beside the project.

use std::path::{Path, PathBuf};

use tracehunt_attack::ActorKb;
use tracehunt_attribution::{Attributor, EvidenceKind};
use tracehunt_engine::{CompileOptions, NameOrigin};
use tracehunt_pipeline::rule_names::{emerging_place, Category, NameIndex, NameReport};
use tracehunt_pipeline::Loaded;

fn sigma() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/sigma");
    if p.join("rules-emerging-threats").is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: ../shared/corpora not present");
        None
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yml") {
            out.push(p);
        }
    }
}

fn load(dir: &Path) -> Loaded {
    let mut files = Vec::new();
    yaml_files(dir, &mut files);
    let parsed = files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            tracehunt_sigma::load_rules(&p.display().to_string(), &text)
        })
        .collect();
    Loaded::build(Vec::new(), parsed, &CompileOptions::default())
}

fn resolved(sigma: &Path) -> (Loaded, NameReport) {
    let mut loaded = load(&sigma.join("rules-emerging-threats"));
    let report = loaded.resolve_names(ActorKb::builtin());
    (loaded, report)
}

#[test]
fn emerging_place_reads_the_sigmahq_layout() {
    let p = emerging_place("x/rules-emerging-threats/2017/TA/Turla/a.yml").unwrap();
    assert_eq!(
        (p.category, p.folder),
        (Category::ThreatActor, Some("Turla"))
    );
    let p = emerging_place(r"C:\sigma\2025\Malware\file_event_x.yml").unwrap();
    assert_eq!((p.category, p.folder), (Category::Malware, None));
    assert!(emerging_place("rules-emerging-threats/2021/Exploits/CVE-2021-44228/a.yml").is_none());
    assert!(emerging_place("rules/windows/process_creation/a.yml").is_none());
}

#[test]
fn names_in_titles_skip_generic_words_and_take_the_longest_name() {
    let idx = NameIndex::new(ActorKb::builtin());
    // `Net.EXE` is the Windows command, not evidence of ATT&CK's Net (S0039).
    let names = idx.names_in("DarkGate - User Created Via Net.EXE", false);
    assert_eq!(names, [("DarkGate".to_owned(), vec!["S1111".to_owned()])]);
    // Longest first: `Cobalt Strike` (S0154), not the group alias `Cobalt`.
    let names = idx.names_in("Lace Tempest Cobalt Strike Download", false);
    assert_eq!(
        names,
        [("Cobalt Strike".to_owned(), vec!["S0154".to_owned()])]
    );
    // Folder names also try group names without `Group` (ATT&CK: `Lazarus Group`).
    assert_eq!(idx.names_in("Lazarus", true)[0].1, ["G0032"]);
    assert!(idx.names_in("Lazarus", false).is_empty());
    // MISP galaxy synonym linked to ATT&CK: `Equation Group` → G0020 (ATT&CK: `Equation`).
    assert_eq!(idx.names_in("EquationGroup", true)[0].1, ["G0020"]);
}

fn named_of(loaded: &Loaded, file_end: &str) -> Vec<(String, String, NameOrigin)> {
    let rs = &loaded.ruleset;
    let i = (0..rs.len())
        .find(|&i| rs.rule(i).file.ends_with(file_end))
        .unwrap_or_else(|| panic!("no rule file {file_end}"));
    rs.rule(i)
        .named
        .iter()
        .map(|r| (r.id.clone(), r.name.clone(), r.origin))
        .collect()
}

/// The mapping over all of `rules-emerging-threats`: counts measured on SigmaHQ 8eaafff1f
/// (473 rule files; 260 in `Malware`/`TA` folders, the rest `Exploits`).
#[test]
fn emerging_threats_rules_resolve_to_attack_software_and_groups() {
    let Some(sigma) = sigma() else { return };
    let (loaded, r) = resolved(&sigma);
    eprintln!("by id: {:?}", r.by_id);
    eprintln!("unresolved folders: {:?}", r.unresolved_folders);
    assert_eq!(loaded.ruleset.len(), 473);
    assert_eq!((r.considered, r.resolved), (260, 156));
    // 72 distinct ids: 29 groups, 43 software.
    assert_eq!(r.by_id.len(), 72);
    assert_eq!(r.by_id.keys().filter(|k| k.starts_with('G')).count(), 29);
    let count = |id: &str| r.by_id.get(id).copied().unwrap_or(0);
    assert_eq!(
        count("G0032"),
        9,
        "Lazarus Group (folders `Lazarus`, `Diamond-Sleet`)"
    );
    assert_eq!(count("S0022"), 9, "Uroburos (folder `Malware/SNAKE`)");
    assert_eq!(
        count("G0016"),
        7,
        "APT29 (`APT29-CozyBear`, `Cozy-Bear`, `UNC2452`)"
    );
    assert_eq!(count("G0010"), 5, "Turla (`TA/Turla` folders)");
    assert_eq!(count("G0007"), 6, "APT28 (`APT28`, `Forest-Blizzard`)");
    assert_eq!(count("S0367"), 3, "Emotet");
    assert_eq!(count("S0650"), 6, "QakBot (`QBot`, `Qakbot`)");
    // Generic words never count: `Net.EXE`, `Cmd.EXE`, `.NET` in titles.
    assert_eq!((count("S0039"), count("S0106")), (0, 0));
    // What does not resolve: 104 rules, 98 of them in 44 folders where no rule names anything
    // ATT&CK v18.1 knows (the other 6 beside a rule that does, e.g. `Lace-Tempest`).
    assert_eq!(r.unresolved_folders.len(), 44);
    assert_eq!(r.unresolved_folders.values().sum::<usize>(), 98);
    for f in [
        "2021/Malware/DarkSide",
        "2023/Malware/COLDSTEEL",
        "2023/TA/3CX-Supply-Chain",
        "2025/Malware/Shai-Hulud",
        "2019/TA/Operation-Wocao",
    ] {
        assert!(r.unresolved_folders.contains_key(f), "{f}");
    }
    // MISP galaxy clusters that merge several ATT&CK groups stay unused.
    assert_eq!(
        r.ambiguous.keys().collect::<Vec<_>>(),
        ["Greenbug", "Winnti"]
    );
    assert_eq!(r.ambiguous["Greenbug"], ["G0003", "G0049", "G0059"]);

    // Per rule: folder and title, category preference, MISP and stripped aliases.
    let folder = NameOrigin::Folder;
    let title = NameOrigin::Title;
    let t = |id: &str, name: &str, o| (id.to_owned(), name.to_owned(), o);
    assert_eq!(
        named_of(
            &loaded,
            "2017/TA/Turla/win_system_apt_turla_service_png.yml"
        ),
        [t("G0010", "Turla", folder), t("G0010", "Turla", title)]
    );
    // `SNAKE` is also a Turla alias: in a `Malware` folder the software wins.
    let snake: Vec<_> = loaded
        .ruleset
        .rules()
        .iter()
        .filter(|m| m.file.contains("2023/Malware/SNAKE/"))
        .collect();
    assert_eq!(snake.len(), 9);
    assert!(snake
        .iter()
        .all(|m| !m.named.is_empty() && m.named.iter().all(|r| r.id == "S0022")));
    assert_eq!(
        named_of(
            &loaded,
            "2023/TA/Cozy-Bear/win_taskscheduler_apt_cozy_bear_graphical_proton_task_names.yml"
        )[0],
        t("G0016", "Cozy Bear", folder)
    );
    assert_eq!(
        named_of(
            &loaded,
            "2023/TA/Lazarus/image_load_apt_lazarus_side_load_activity.yml"
        ),
        [t("G0032", "Lazarus", folder)]
    );
}

#[test]
fn rules_outside_emerging_threats_name_nothing_and_tags_stay_tags() {
    let Some(sigma) = sigma() else { return };
    let mut loaded = load(&sigma.join("rules-threat-hunting"));
    let r = loaded.resolve_names(ActorKb::builtin());
    assert_eq!(r.considered, 0);
    assert!(loaded.ruleset.rules().iter().all(|m| m.named.is_empty()));
    // Tags: rules of rules-emerging-threats tagged with a software or group id (45 files).
    let (et, _) = resolved(&sigma);
    let tagged = et
        .ruleset
        .rules()
        .iter()
        .filter(|m| !m.software.is_empty() || !m.groups.is_empty())
        .count();
    assert_eq!(tagged, 45);
}

/// A firing rule's software/group becomes evidence that says where it came from, and the
/// attribution shows it (`observed_as`).
#[test]
fn named_software_and_groups_are_evidence_with_their_origin() {
    let Some(sigma) = sigma() else { return };
    let (loaded, _) = resolved(&sigma);
    let rs = &loaded.ruleset;
    let find = |end: &str| {
        (0..rs.len())
            .find(|&i| rs.rule(i).file.ends_with(end))
            .unwrap()
    };
    let turla = find("2017/TA/Turla/win_system_apt_turla_service_png.yml");
    let emotet = find("2019/Malware/Emotet/proc_creation_win_malware_emotet.yml");
    let ev = tracehunt_pipeline::evidence(rs, [turla, turla, emotet]);
    assert_eq!(ev.groups.len(), 1);
    let g = &ev.groups[0];
    assert_eq!((g.id.as_str(), g.events), ("G0010", 2));
    assert_eq!(
        g.origins,
        ["tag attack.g0010", "folder \"Turla\"", "title \"Turla\""]
    );
    assert_eq!(ev.software.len(), 1);
    assert_eq!(ev.software[0].id, "S0367");
    assert_eq!(
        ev.software[0].origins,
        ["folder \"Emotet\"", "title \"Emotet\""]
    );

    let a = Attributor::new(ActorKb::builtin()).attribute(&ev);
    let tag = a
        .candidates
        .iter()
        .find(|c| c.id == "G0010")
        .and_then(|c| c.matched.iter().find(|e| e.kind == EvidenceKind::GroupTag))
        .expect("Turla's group evidence");
    assert_eq!(tag.observed_as, g.origins);
    let emotet_users: Vec<&str> = a
        .candidates
        .iter()
        .filter(|c| c.matched.iter().any(|e| e.id == "S0367"))
        .map(|c| c.id.as_str())
        .collect();
    eprintln!("Emotet users among the candidates: {emotet_users:?}");
    assert_eq!(
        emotet_users,
        ["G0102"],
        "Wizard Spider, the one group ATT&CK v18.1 links to Emotet"
    );
}
