//! The wire form of events (`tracehunt publish` → `tracehunt worker`):
//! decoding any bytes never panics, and whatever decodes re-encodes to a
//! line that decodes to the same event (the round trip the worker's event
//! identities rest on).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ev) = tracehunt_readers::wire::decode(text) {
        let line = tracehunt_readers::wire::encode(&ev);
        let back = tracehunt_readers::wire::decode(&line).expect("an encoded event decodes");
        // Debug, not ==: NaN values compare unequal but print the same.
        assert_eq!(format!("{back:?}"), format!("{ev:?}"));
        assert_eq!(tracehunt_readers::wire::encode(&back), line);
    }
});
