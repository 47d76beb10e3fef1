//! Syscall numbers → names, for auditd records that are not "enriched"
//! (no `\x1d` + `SYSCALL=name` suffix), so that SigmaHQ rules naming
//! `SYSCALL: execve` still match `syscall=59`.
//!
//! Sources (numbers are ABI, never renumbered):
//! * x86_64 (`arch=c000003e`): the Linux kernel's
//!   `arch/x86/entry/syscalls/syscall_64.tbl` (the `common`/`64` rows).
//! * aarch64 (`arch=c00000b7`) and riscv64 (`arch=c00000f3`): the generic
//!   table `include/uapi/asm-generic/unistd.h`.
//!
//! Only the syscalls audit rules and detections commonly name are listed
//! (process, file, network, identity, module, mount and tracing calls); an
//! unknown number gets no `SYSCALL` name (the raw `syscall` stays).

/// `(number, name)` from `syscall_64.tbl`, sorted by number.
const X86_64: &[(u32, &str)] = &[
    (0, "read"),
    (1, "write"),
    (2, "open"),
    (3, "close"),
    (4, "stat"),
    (5, "fstat"),
    (6, "lstat"),
    (9, "mmap"),
    (10, "mprotect"),
    (16, "ioctl"),
    (21, "access"),
    (22, "pipe"),
    (23, "select"),
    (32, "dup"),
    (33, "dup2"),
    (41, "socket"),
    (42, "connect"),
    (43, "accept"),
    (44, "sendto"),
    (45, "recvfrom"),
    (46, "sendmsg"),
    (47, "recvmsg"),
    (49, "bind"),
    (50, "listen"),
    (54, "setsockopt"),
    (56, "clone"),
    (57, "fork"),
    (58, "vfork"),
    (59, "execve"),
    (60, "exit"),
    (61, "wait4"),
    (62, "kill"),
    (63, "uname"),
    (72, "fcntl"),
    (76, "truncate"),
    (77, "ftruncate"),
    (80, "chdir"),
    (82, "rename"),
    (83, "mkdir"),
    (84, "rmdir"),
    (85, "creat"),
    (86, "link"),
    (87, "unlink"),
    (88, "symlink"),
    (89, "readlink"),
    (90, "chmod"),
    (91, "fchmod"),
    (92, "chown"),
    (93, "fchown"),
    (94, "lchown"),
    (95, "umask"),
    (99, "sysinfo"),
    (101, "ptrace"),
    (103, "syslog"),
    (105, "setuid"),
    (106, "setgid"),
    (109, "setpgid"),
    (112, "setsid"),
    (113, "setreuid"),
    (114, "setregid"),
    (117, "setresuid"),
    (119, "setresgid"),
    (122, "setfsuid"),
    (123, "setfsgid"),
    (126, "capset"),
    (133, "mknod"),
    (155, "pivot_root"),
    (157, "prctl"),
    (159, "adjtimex"),
    (160, "setrlimit"),
    (161, "chroot"),
    (164, "settimeofday"),
    (165, "mount"),
    (166, "umount2"),
    (167, "swapon"),
    (168, "swapoff"),
    (169, "reboot"),
    (170, "sethostname"),
    (175, "init_module"),
    (176, "delete_module"),
    (188, "setxattr"),
    (189, "lsetxattr"),
    (190, "fsetxattr"),
    (197, "removexattr"),
    (200, "tkill"),
    (227, "clock_settime"),
    (231, "exit_group"),
    (234, "tgkill"),
    (257, "openat"),
    (258, "mkdirat"),
    (259, "mknodat"),
    (260, "fchownat"),
    (263, "unlinkat"),
    (264, "renameat"),
    (265, "linkat"),
    (266, "symlinkat"),
    (268, "fchmodat"),
    (272, "unshare"),
    (288, "accept4"),
    (298, "perf_event_open"),
    (304, "open_by_handle_at"),
    (308, "setns"),
    (313, "finit_module"),
    (316, "renameat2"),
    (319, "memfd_create"),
    (321, "bpf"),
    (322, "execveat"),
    (425, "io_uring_setup"),
    (426, "io_uring_enter"),
    (435, "clone3"),
    (437, "openat2"),
    (452, "fchmodat2"),
];

/// `(number, name)` from `asm-generic/unistd.h`, sorted by number.
const GENERIC: &[(u32, &str)] = &[
    (29, "ioctl"),
    (33, "mknodat"),
    (34, "mkdirat"),
    (35, "unlinkat"),
    (36, "symlinkat"),
    (37, "linkat"),
    (38, "renameat"),
    (39, "umount2"),
    (40, "mount"),
    (41, "pivot_root"),
    (45, "truncate"),
    (46, "ftruncate"),
    (49, "chdir"),
    (51, "chroot"),
    (52, "fchmod"),
    (53, "fchmodat"),
    (54, "fchownat"),
    (55, "fchown"),
    (56, "openat"),
    (57, "close"),
    (63, "read"),
    (64, "write"),
    (93, "exit"),
    (94, "exit_group"),
    (97, "unshare"),
    (116, "syslog"),
    (117, "ptrace"),
    (129, "kill"),
    (130, "tkill"),
    (131, "tgkill"),
    (142, "reboot"),
    (143, "setregid"),
    (144, "setgid"),
    (145, "setreuid"),
    (146, "setuid"),
    (147, "setresuid"),
    (149, "setresgid"),
    (151, "setfsuid"),
    (152, "setfsgid"),
    (160, "uname"),
    (161, "sethostname"),
    (167, "prctl"),
    (179, "sysinfo"),
    (198, "socket"),
    (200, "bind"),
    (201, "listen"),
    (202, "accept"),
    (203, "connect"),
    (206, "sendto"),
    (207, "recvfrom"),
    (208, "setsockopt"),
    (220, "clone"),
    (221, "execve"),
    (222, "mmap"),
    (226, "mprotect"),
    (242, "accept4"),
    (241, "perf_event_open"),
    (268, "setns"),
    (273, "finit_module"),
    (276, "renameat2"),
    (279, "memfd_create"),
    (280, "bpf"),
    (281, "execveat"),
    (105, "init_module"),
    (106, "delete_module"),
    (425, "io_uring_setup"),
    (426, "io_uring_enter"),
    (435, "clone3"),
    (437, "openat2"),
    (452, "fchmodat2"),
];

/// The name of syscall `number` on the audit architecture `arch` (the
/// record's `arch=` value in hex, e.g. `c000003e`), or `None` when the
/// architecture or number is not in the tables above.
pub(crate) fn name(arch: &str, number: &str) -> Option<&'static str> {
    let n: u32 = number.parse().ok()?;
    let table = match arch.to_ascii_lowercase().as_str() {
        "c000003e" | "x86_64" => X86_64,
        "c00000b7" | "aarch64" | "c00000f3" | "riscv64" => GENERIC,
        _ => return None,
    };
    table.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_numbers() {
        assert_eq!(name("c000003e", "59"), Some("execve"));
        assert_eq!(name("c000003e", "42"), Some("connect"));
        assert_eq!(name("c000003e", "322"), Some("execveat"));
        assert_eq!(name("c00000b7", "221"), Some("execve"));
        assert_eq!(name("c00000b7", "64"), Some("write"));
        assert_eq!(name("40000003", "11"), None);
        assert_eq!(name("c000003e", "x"), None);
        // No number twice in a table.
        for t in [X86_64, GENERIC] {
            let mut n: Vec<_> = t.iter().map(|(k, _)| *k).collect();
            n.sort_unstable();
            n.dedup();
            assert_eq!(n.len(), t.len());
        }
    }
}
