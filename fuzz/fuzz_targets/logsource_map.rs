//! The logsource mapping YAML (`LogsourceMap::from_yaml`, what
//! `--logsource-map FILE` loads), merged in front of the built-in map.
//! Invariants: an error says it is the logsource mapping; every entry of an
//! accepted map with a category or service resolves (to its own sources, or
//! an earlier entry's for the same key; a product alone is resolved in
//! code); the merged map still resolves every built-in entry.
#![no_main]

use tracehunt_sigma::ast::LogSource;
use tracehunt_sigma::LogsourceMap;

fn logsource(
    product: &Option<String>,
    category: &Option<String>,
    service: &Option<String>,
) -> LogSource {
    LogSource {
        product: product.clone(),
        category: category.clone(),
        service: service.clone(),
        ..Default::default()
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let map = match LogsourceMap::from_yaml(text) {
        Ok(m) => m,
        Err(e) => {
            assert!(e.to_string().starts_with("logsource mapping:"), "{e}");
            return;
        }
    };
    for e in map.entries() {
        // A product named alone is resolved in code (issue #21): every
        // channel of that product's entries, or no event when they name
        // none (seed `product: linux` with `sources: []`).
        if e.category.is_none() && e.service.is_none() {
            continue;
        }
        // A product-less rule whose key two products map is ambiguous by
        // design (`resolve` answers none rather than guess a product).
        let same_key = |o: &&tracehunt_sigma::LogsourceEntry| {
            let eq = |a: &Option<String>, b: &Option<String>| match (a, b) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (None, None) => true,
                _ => false,
            };
            if e.category.is_some() {
                eq(&o.category, &e.category)
            } else {
                o.service.is_some() && eq(&o.service, &e.service)
            }
        };
        let products_differ = map.entries().iter().filter(same_key).any(|o| {
            o.product.as_deref().map(str::to_ascii_lowercase)
                != e.product.as_deref().map(str::to_ascii_lowercase)
        });
        if e.product.is_none() && products_differ {
            continue;
        }
        let ls = logsource(&e.product, &e.category, &e.service);
        assert!(
            map.resolve(&ls).is_some(),
            "own entry does not resolve: {ls:?}"
        );
    }
    let mut merged = LogsourceMap::builtin();
    let builtin: Vec<_> = merged.entries().to_vec();
    merged.extend_front(map);
    for e in &builtin {
        let ls = logsource(&e.product, &e.category, &e.service);
        assert!(merged.resolve(&ls).is_some(), "builtin entry lost: {ls:?}");
    }
});
