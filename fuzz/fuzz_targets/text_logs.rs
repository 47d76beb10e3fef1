//! The text log readers of issue #21 (auditd, syslog incl. Sysmon for
//! Linux, Zeek TSV, W3C extended, access logs) through `open_bytes`: the
//! first byte picks a header that makes the sniffer choose one format, so
//! each reader sees fuzzed bodies; `common::read_all` checks every error
//! names the file. No panic, no hang, on any input.
#![no_main]

#[path = "common.rs"]
mod common;

/// Headers that steer `sniff` to each text format (and one for none).
const HEADS: [&[u8]; 6] = [
    b"type=SYSCALL msg=audit(1364481363.243:24287): ",
    b"Oct 24 17:05:38 host sysmon: ",
    b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tquery\n#types\ttime\tstring\taddr\tstring\n",
    b"#Software: Microsoft Internet Information Services 10.0\n#Fields: date time c-ip cs-method cs-uri-stem sc-status cs(User-Agent)\n",
    b"83.149.9.216 - - [17/May/2015:10:05:03 +0000] \"GET /x HTTP/1.1\" 200 203 \"-\" \"ua\"\n",
    b"",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let mut bytes = HEADS[usize::from(sel) % HEADS.len()].to_vec();
    bytes.extend_from_slice(body);
    common::read_all("fuzz.log", &bytes);
});
