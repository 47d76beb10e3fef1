//! Shared helpers for the fuzz targets (included with `#[path]`; each
//! target uses some of them).
#![allow(dead_code)]

use tracehunt_event::Event;
use tracehunt_readers::{evtx_chunks_from_bytes, open_bytes, RecordError};

/// Reads `bytes` through the reader as file `name`; for EVTX, also checks
/// that the chunk API yields exactly the streaming reader's items.
pub fn read_all(name: &str, bytes: &[u8]) -> Vec<Result<Event, RecordError>> {
    let Ok(it) = open_bytes(name, bytes.to_vec()) else {
        return Vec::new();
    };
    let stream: Vec<_> = it.collect();
    if let Ok(chunks) = evtx_chunks_from_bytes(name, bytes.to_vec()) {
        let concat: Vec<_> = (0..chunks.len()).flat_map(|i| chunks.chunk(i)).collect();
        assert_eq!(stream, concat, "chunk API differs from streaming");
    }
    for r in &stream {
        if let Err(e) = r {
            assert!(e.to_string().starts_with(name));
        }
    }
    stream
}

/// Two small events to scan with fuzzed rules: a Sysmon process creation
/// and a Security 4688.
pub fn events() -> Vec<Event> {
    let lines = br#"{"Event":{"System":{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"WS1"},"EventData":{"Image":"C:\\Windows\\System32\\cmd.exe","CommandLine":"cmd /c whoami /all","ParentImage":"C:\\Windows\\explorer.exe","User":"CORP\\bob","Hashes":"MD5=00,SHA256=11"}}}
{"EventID":4688,"Channel":"Security","Hostname":"DC1","NewProcessName":"C:\\Windows\\System32\\rundll32.exe","CommandLine":"rundll32 comsvcs.dll MiniDump 624 C:\\t.dmp full","SubjectUserName":"admin","IpAddress":"10.1.2.3"}
"#;
    open_bytes("events.jsonl", lines.to_vec())
        .map(|it| it.filter_map(Result::ok).collect())
        .unwrap_or_default()
}
