//! MISP event JSON → IOCs (`IocSetBuilder::load_misp`), then the compiled
//! set matched against two events. Invariants: an error names the feed; a
//! report says MISP; the de-duplicated set is never larger than what the
//! report counts as loaded.
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
    match b.load_misp(text, ioc_common::ORIGIN) {
        Ok(report) => {
            assert_eq!(report.format, Some(tracehunt_ioc::FeedFormat::Misp));
            ioc_common::check_set(b.build(), &report);
        }
        Err(e) => ioc_common::check_error(&e),
    }
});
