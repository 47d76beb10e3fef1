//! `type,value[,actor]` CSV feeds.

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
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|source| IocError::Csv {
            origin: origin.to_owned(),
            source,
        })?;
        let line = rec.position().map_or(n as u64 + 1, |p| p.line());
        let ty = rec.get(0).unwrap_or_default();
        if ty.is_empty() {
            continue;
        }
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
        let actors: Vec<Actor> = rec
            .get(2)
            .filter(|a| !a.is_empty())
            .map(|a| vec![Actor::new(a, &[])])
            .unwrap_or_default();
        for a in &actors {
            report.actor(a);
        }
        let o = Origin {
            source: IocSource {
                format: FeedFormat::Csv,
                feed: origin.to_owned(),
                id: format!("line {line}"),
                title: None,
            },
            actors,
            conjunction: None,
        };
        if b.add_typed(ty, value, &o, &mut report) == 0 {
            report.diagnostics.push(format!(
                "{origin}:{line}: not loaded: type {ty:?} value {value:?}"
            ));
        }
    }
    Ok(report)
}
