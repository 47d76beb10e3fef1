//! `type,value[,actor]` CSV feeds, and plain lists of indicators (one a
//! line, type inferred) — what analysts paste (fresh-user finding: a list
//! of IPs was read as CSV and every row skipped with "no value for type").

use crate::{Actor, FeedFormat, IocError, IocSetBuilder, IocSource, LoadReport, Origin};

pub(crate) fn load(
    b: &mut IocSetBuilder,
    text: &str,
    origin: &str,
) -> Result<LoadReport, IocError> {
    let mut report = LoadReport::new(FeedFormat::Csv);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let mut rows = Vec::new();
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|source| IocError::Csv {
            origin: origin.to_owned(),
            source,
        })?;
        let line = rec.position().map_or(n as u64 + 1, |p| p.line());
        if rec.get(0).is_some_and(|c| !c.is_empty()) {
            rows.push((line, rec));
        }
    }
    let typed = rows
        .first()
        .is_none_or(|(_, r)| crate::is_type_name(r.get(0).unwrap_or_default()));
    if !typed {
        return load_list(b, &rows, origin);
    }
    for (n, (line, rec)) in rows.iter().enumerate() {
        let line = *line;
        let ty = rec.get(0).unwrap_or_default();
        if n == 0 && ty.eq_ignore_ascii_case("type") {
            continue;
        }
        report.entries += 1;
        let Some(value) = rec.get(1).filter(|v| !v.is_empty()) else {
            report
                .diagnostics
                .push(format!("{origin}:{line}: no value for type {ty:?}"));
            report.skip("row without value");
            continue;
        };
        let o = line_origin(FeedFormat::Csv, rec.get(2), origin, line, &mut report);
        if b.add_typed(ty, value, &o, &mut report) == 0 {
            report.diagnostics.push(format!(
                "{origin}:{line}: not loaded: type {ty:?} value {value:?}"
            ));
        }
    }
    Ok(report)
}

/// A plain list: `value[,actor]` rows, each value's type inferred
/// ([`crate::infer_type`]). Not a feed when fewer than half of the rows
/// hold an indicator (a text file, `/etc/hostname`…).
fn load_list(
    b: &mut IocSetBuilder,
    rows: &[(u64, csv::StringRecord)],
    origin: &str,
) -> Result<LoadReport, IocError> {
    let inferred: Vec<Option<&str>> = rows
        .iter()
        .map(|(_, r)| crate::infer_type(r.get(0).unwrap_or_default()))
        .collect();
    let hits = inferred.iter().flatten().count();
    if hits == 0 || hits * 2 < rows.len() {
        let first = rows
            .iter()
            .zip(&inferred)
            .find(|(_, t)| t.is_none())
            .map(|((line, r), _)| format!(", line {line}: {:?}", r.get(0).unwrap_or_default()))
            .unwrap_or_default();
        return Err(IocError::NotAFeed {
            origin: origin.to_owned(),
            reason: format!(
                "neither `type,value[,actor]` CSV nor a list of indicators ({hits} of {} {} an IP, domain, URL or hash{first})",
                rows.len(),
                if rows.len() == 1 { "line is" } else { "lines are" }
            ),
        });
    }
    let mut report = LoadReport::new(FeedFormat::List);
    for ((line, rec), ty) in rows.iter().zip(inferred) {
        report.entries += 1;
        let value = rec.get(0).unwrap_or_default();
        let Some(ty) = ty else {
            report.diagnostics.push(format!(
                "{origin}:{line}: not an IP, domain, URL or hash: {value:?}"
            ));
            report.skip("invalid line (not an IP, domain, URL or hash)");
            continue;
        };
        let o = line_origin(FeedFormat::List, rec.get(1), origin, *line, &mut report);
        b.add_typed(ty, value, &o, &mut report);
    }
    Ok(report)
}

/// The origin of one CSV/list line: the feed, `line N`, and the actor named
/// in the line's actor column (counted in `report`), if any.
fn line_origin(
    format: FeedFormat,
    actor: Option<&str>,
    origin: &str,
    line: u64,
    report: &mut LoadReport,
) -> Origin {
    let actors: Vec<Actor> = actor
        .filter(|a| !a.is_empty())
        .map(|a| vec![Actor::new(a, &[])])
        .unwrap_or_default();
    for a in &actors {
        report.actor(a);
    }
    Origin {
        source: IocSource {
            format,
            feed: origin.to_owned(),
            id: format!("line {line}"),
            title: None,
        },
        actors,
        conjunction: None,
    }
}

#[cfg(test)]
mod tests {
    use crate::{IocError, IocKind, IocSet};

    /// Fresh-user finding: a plain list of IPs was read as CSV and every
    /// row skipped with "no value for type"; now each line's type is inferred.
    #[test]
    fn plain_list_of_indicators_loads_with_inferred_types() {
        let mut b = IocSet::builder();
        let r = b
            .load(
                "203.0.113.7\n# note\nevil[.]example.com,APT29\nhxxp://bad.example/x.ps1\n44d88612fea8a8f36de82e1278abb02f\n10.0.0.1\nnot-an-ioc\n198.51.100.0/24\n",
                "list.txt",
            )
            .unwrap();
        assert_eq!(r.loaded[&IocKind::Ip], 2);
        assert_eq!(r.loaded[&IocKind::Domain], 1);
        assert_eq!(r.loaded[&IocKind::Url], 1);
        assert_eq!(r.loaded[&IocKind::Md5], 1);
        assert_eq!(r.entries, 7);
        // Left from session 3: was reported as feed format `csv`.
        assert_eq!(r.format, Some(crate::FeedFormat::List));
        assert_eq!(r.actors, vec!["APT29".to_owned()]);
        assert_eq!(
            r.skipped["invalid line (not an IP, domain, URL or hash)"],
            1
        );
        assert_eq!(r.skipped["ip: non-routable address"], 1);
        assert_eq!(
            r.diagnostics,
            vec!["list.txt:7: not an IP, domain, URL or hash: \"not-an-ioc\"".to_owned()]
        );
        let set = b.build();
        assert_eq!(set.len(), 5);
    }

    /// Fresh-user finding: `--ioc /etc/hostname` loaded "0 IOCs", exit 0.
    #[test]
    fn text_that_is_not_a_list_of_indicators_is_not_a_feed() {
        for text in ["vm\n", "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/:\n"] {
            let e = IocSet::builder().load(text, "f").unwrap_err();
            assert!(matches!(e, IocError::NotAFeed { .. }), "{e}");
        }
        let e = IocSet::builder().load("vm\n", "/etc/hostname").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/hostname: not an IOC feed: neither `type,value[,actor]` CSV nor a list of indicators (0 of 1 line is an IP, domain, URL or hash, line 1: \"vm\")"
        );
        // A typed CSV still loads as before, header or not.
        let r = IocSet::builder()
            .load("ip,203.0.113.7,APT29\n", "t.csv")
            .unwrap();
        assert_eq!(r.loaded[&IocKind::Ip], 1);
    }
}
