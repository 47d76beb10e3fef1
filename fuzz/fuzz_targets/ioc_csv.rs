//! `type,value[,actor]` CSV IOC feeds (`IocSetBuilder::load_csv`, and the
//! format-sniffing `IocSetBuilder::load` on the same text), then the compiled
//! set matched against two events. Invariants: errors and per-row
//! diagnostics name the feed; the set is never larger than what was loaded.
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
    match b.load_csv(text, ioc_common::ORIGIN) {
        Ok(report) => {
            // A text without type names is a plain list (fuzz finding `::`,
            // regression test `fuzz_ioc_csv_bare_ipv6_is_a_plain_list_not_csv`).
            assert!(
                matches!(
                    report.format,
                    Some(tracehunt_ioc::FeedFormat::Csv | tracehunt_ioc::FeedFormat::List)
                ),
                "format {:?}",
                report.format
            );
            for d in &report.diagnostics {
                assert!(
                    d.starts_with(ioc_common::ORIGIN),
                    "diagnostic without feed: {d}"
                );
            }
            ioc_common::check_set(b.build(), &report);
        }
        Err(e) => ioc_common::check_error(&e),
    }
    let mut b = tracehunt_ioc::IocSet::builder();
    match b.load(text, ioc_common::ORIGIN) {
        Ok(report) => ioc_common::check_set(b.build(), &report),
        Err(e) => ioc_common::check_error(&e),
    }
});
