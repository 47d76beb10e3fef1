//! STIX 2.1 patterns (`tracehunt_ioc::parse_stix_pattern`, the parser the STIX
//! indicator loader uses). Invariants: never panics or overflows the stack;
//! the result is deterministic; an accepted pattern has 1..=64 alternatives,
//! each a non-empty AND of at most 64 terms of a supported type; a rejected
//! one says why (non-empty message).
#![no_main]

const TYPES: &[&str] = &[
    "md5", "sha1", "sha256", "sha512", "ipv4", "ipv6", "domain", "url",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(p) = std::str::from_utf8(data) else {
        return;
    };
    let r = tracehunt_ioc::parse_stix_pattern(p);
    assert_eq!(r, tracehunt_ioc::parse_stix_pattern(p), "not deterministic");
    match r {
        Ok(dnf) => {
            assert!(
                !dnf.is_empty() && dnf.len() <= 64,
                "{} alternatives",
                dnf.len()
            );
            for clause in &dnf {
                assert!(!clause.is_empty() && clause.len() <= 64);
                for (ty, _) in clause {
                    assert!(TYPES.contains(ty), "unexpected type {ty}");
                }
            }
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
