//! STIX 2.1 indicator bundles (`IocSetBuilder::load_stix`), then the compiled
//! set matched against two events. Invariants: an error names the feed;
//! every rejected indicator is both a diagnostic and counted as skipped
//! ("unsupported pattern"), and nothing else is; the set is never larger
//! than what was loaded.
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
            let skipped = report
                .skipped
                .get("unsupported pattern")
                .copied()
                .unwrap_or(0);
            assert_eq!(report.diagnostics.len(), skipped, "{report:?}");
            assert!(skipped <= report.entries);
            ioc_common::check_set(b.build(), &report);
        }
        Err(e) => ioc_common::check_error(&e),
    }
});
