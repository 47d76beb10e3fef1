//! Partition leases on a real JetStream cluster (`scripts/nats-cluster.sh`;
//! skipped without `TRACEHUNT_NATS_URLS`, required with
//! `TRACEHUNT_REQUIRE_NATS=1`): one owner at a time, refresh by the owner
//! only, release and expiry hand the partition over.

use std::time::Duration;
use tracehunt_jetstream::{connect, Lease, Names};

async fn js() -> Option<tracehunt_jetstream::async_nats::jetstream::Context> {
    let Ok(urls) = std::env::var("TRACEHUNT_NATS_URLS") else {
        assert!(
            std::env::var("TRACEHUNT_REQUIRE_NATS").is_err(),
            "TRACEHUNT_REQUIRE_NATS is set but TRACEHUNT_NATS_URLS is not"
        );
        eprintln!("skipped: no NATS cluster");
        return None;
    };
    let token = std::env::var("TRACEHUNT_NATS_TOKEN").ok();
    let client = connect(&urls, token, "lease-test", None).await.unwrap();
    Some(tracehunt_jetstream::async_nats::jetstream::new(client))
}

fn names(test: &str) -> Names {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Names::new(Some(&format!("{test}{}x{n}", std::process::id()))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_owner_at_a_time_and_release_hands_over() {
    let Some(js) = js().await else { return };
    let ns = names("lease");
    let ttl = Duration::from_secs(3);
    let a = Lease::open(&js, &ns, "a", ttl, 3).await.unwrap();
    let b = Lease::open(&js, &ns, "b", ttl, 3).await.unwrap();
    assert_eq!(a.ttl(), ttl);
    let rev = a.try_take(0).await.unwrap().unwrap();
    assert_eq!(b.try_take(0).await.unwrap(), Err("a".to_owned()));
    // Another partition is free.
    assert!(b.try_take(1).await.unwrap().is_ok());
    // Only the owner refreshes; a refresh with an old revision fails.
    let rev2 = a.refresh(0, rev).await.unwrap().unwrap();
    assert!(rev2 > rev);
    assert_eq!(b.refresh(0, rev).await.unwrap(), None);
    // The same owner restarted takes its own lease back at once.
    let a_again = Lease::open(&js, &ns, "a", ttl, 3).await.unwrap();
    let rev3 = a_again.try_take(0).await.unwrap().unwrap();
    assert_eq!(
        a.refresh(0, rev2).await.unwrap(),
        None,
        "the old revision is stale"
    );
    // Released: b takes it.
    a_again.release(0, rev3).await.unwrap();
    assert!(b.try_take(0).await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrefreshed_lease_expires_after_its_ttl() {
    let Some(js) = js().await else { return };
    let ns = names("expire");
    let ttl = Duration::from_secs(2);
    let a = Lease::open(&js, &ns, "a", ttl, 3).await.unwrap();
    let b = Lease::open(&js, &ns, "b", ttl, 3).await.unwrap();
    let rev = a.try_take(7).await.unwrap().unwrap();
    assert!(b.try_take(7).await.unwrap().is_err());
    let start = std::time::Instant::now();
    loop {
        if b.try_take(7).await.unwrap().is_ok() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "taken after {waited:?}"
    );
    // a learns it lost the lease at its next refresh.
    assert_eq!(a.refresh(7, rev).await.unwrap(), None);
}
