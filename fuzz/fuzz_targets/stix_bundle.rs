//! STIX 2.1 indicator bundles (`IocSetBuilder::load_stix`), then the compiled
//! set matched against two events. Invariants: an error names the feed;
//! every rejected indicator is both a diagnostic and counted as skipped
//! (by reason: "unsupported pattern", or the network it names), every
//! diagnostic is such a skip or an indicator loaded with OR-clauses
//! dropped; the set is never larger than what was loaded.
#![no_main]

#[path = "common.rs"]
mod common;
#[path = "ioc_common.rs"]
mod ioc_common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut b = tracehunt_ioc::IocSet::builder();
    match b.load_stix(text, ioc_common::ORIGIN) {
        Ok(report) => {
            assert_eq!(report.format, Some(tracehunt_ioc::FeedFormat::Stix));
            // Every skipped indicator has one diagnostic; an indicator that
            // loads with some OR-clauses dropped (a network no IOC can be)
            // has one too and is not skipped; no indicator has two. So
            // skipped <= diagnostics <= entries (CI fuzz smoke findings: the
            // harness counted only "unsupported pattern" skips, then told
            // partial drops apart by their message, which a pattern can
            // contain).
            let skipped: usize = report.skipped.values().sum();
            assert!(skipped <= report.diagnostics.len(), "{report:?}");
            assert!(report.diagnostics.len() <= report.entries, "{report:?}");
            ioc_common::check_set(b.build(), &report);
        }
        Err(e) => ioc_common::check_error(&e),
    }
});
