//! Which partition a host's events go to, the subjects they travel on, and
//! which partitions a worker takes (`--partitions 0-3,6`).

/// The partition of `host` among `n` (at least 1): FNV-1a (32-bit) of the
/// host name lowercased (ASCII), modulo `n`. Stable across runs, machines
/// and versions, so one host's events always reach the same worker and its
/// correlation windows and incidents stay whole. Events without a host go
/// to the partition of the empty name.
pub fn partition_of(host: Option<&str>, n: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in host.unwrap_or("").bytes() {
        h ^= u32::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x0100_0193);
    }
    h % n.max(1)
}

/// The host as one NATS subject token: lowercase ASCII letters, digits,
/// `-` and `_` kept, every other character `_`, at most 64 characters, `_`
/// for none. Only for filtering by subject; the event itself keeps the
/// host exactly (two hosts may share a token).
pub fn host_token(host: Option<&str>) -> String {
    let t: String = host
        .unwrap_or("")
        .chars()
        .take(64)
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '_',
        })
        .collect();
    if t.is_empty() {
        "_".to_owned()
    } else {
        t
    }
}

/// A set of partitions, parsed from `all` or a list of numbers and ranges
/// (`0-3,6`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionSpec {
    /// Every partition of the stream.
    All,
    /// These partitions (sorted, unique).
    Some(Vec<u32>),
}

impl PartitionSpec {
    /// Parses `all`, `N`, `A-B` or a comma-separated list of them.
    ///
    /// # Errors
    /// Not a number, a range whose end is before its start, or over
    /// 4,096 partitions: the message quotes the part.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(PartitionSpec::All);
        }
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim) {
            let num = |t: &str| {
                t.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|&n| n < MAX_PARTITIONS)
                    .ok_or_else(|| {
                        format!(
                            "{part:?} in --partitions is not a partition number (0 to {})",
                            MAX_PARTITIONS - 1
                        )
                    })
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if b < a {
                        return Err(format!(
                            "{part:?} in --partitions: the range ends before it starts"
                        ));
                    }
                    v.extend(a..=b);
                }
                None => v.push(num(part)?),
            }
        }
        v.sort_unstable();
        v.dedup();
        Ok(PartitionSpec::Some(v))
    }

    /// The partitions among `n`.
    ///
    /// # Errors
    /// A partition is not below `n`.
    pub fn resolve(&self, n: u32) -> Result<Vec<u32>, String> {
        match self {
            PartitionSpec::All => Ok((0..n).collect()),
            PartitionSpec::Some(v) => match v.iter().find(|&&p| p >= n) {
                Some(p) => Err(format!(
                    "partition {p} does not exist: the stream has {n} partitions (0 to {})",
                    n - 1
                )),
                None => Ok(v.clone()),
            },
        }
    }
}

/// Most partitions a stream may have.
pub const MAX_PARTITIONS: u32 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_is_fnv1a_of_the_lowercased_host() {
        // FNV-1a 32 of "" is the offset basis; of "a" 0xe40c292c.
        assert_eq!(partition_of(None, u32::MAX), 0x811c_9dc5);
        assert_eq!(partition_of(Some("a"), u32::MAX), 0xe40c_292c);
        assert_eq!(partition_of(Some("A"), u32::MAX), 0xe40c_292c);
        assert_eq!(
            partition_of(Some("WS1.corp"), 16),
            partition_of(Some("ws1.CORP"), 16)
        );
        assert_eq!(partition_of(Some("x"), 0), 0);
    }

    #[test]
    fn hosts_spread_over_partitions() {
        let mut seen = [0u32; 8];
        for i in 0..800 {
            seen[partition_of(Some(&format!("host-{i}")), 8) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (60..=140).contains(&c)), "{seen:?}");
    }

    #[test]
    fn host_tokens_are_subject_safe() {
        assert_eq!(host_token(Some("WS1.corp.local")), "ws1_corp_local");
        assert_eq!(host_token(Some("a b*>c")), "a_b__c");
        assert_eq!(host_token(None), "_");
        assert_eq!(host_token(Some(&"x".repeat(100))).len(), 64);
        assert_eq!(host_token(Some("é")), "_");
    }

    #[test]
    fn specs_parse_and_resolve() {
        assert_eq!(PartitionSpec::parse("all").unwrap(), PartitionSpec::All);
        assert_eq!(
            PartitionSpec::parse("6, 0-2,1").unwrap(),
            PartitionSpec::Some(vec![0, 1, 2, 6])
        );
        assert_eq!(PartitionSpec::All.resolve(3).unwrap(), vec![0, 1, 2]);
        assert!(PartitionSpec::parse("3-1")
            .unwrap_err()
            .contains("ends before"));
        assert!(PartitionSpec::parse("x").unwrap_err().contains("\"x\""));
        assert!(PartitionSpec::parse("5000").is_err());
        let e = PartitionSpec::parse("0-8").unwrap().resolve(8).unwrap_err();
        assert!(e.contains("partition 8 does not exist"), "{e}");
    }
}
