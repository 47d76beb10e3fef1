#!/usr/bin/env python3
"""Runs every `tracehunt` example of README.md and checks that it works (issue #19).

Examples are taken from the README's `sh`/`bash` code blocks (each block one bash
script, run command by command) and from inline code spans that are a whole
command line (`tracehunt …` without placeholders such as PATH, FILE, `[`, `|`, `…`).
Each runs in a fresh sandbox directory whose names are the README's: `logs/`
(the bundled samples), `sigma/` (SigmaHQ from ../shared/corpora), `audit.log`,
`auth.log`, `cloudtrail/`, `zeek/`, `access.log`, `events.jsonl`,
`monthly.csv` and a `hunts.db` store made by one hunt first. Absolute example
paths (`/cases/host42/`, `/var/log/…`) are mapped into the sandbox by the table
PATHS below; that table is the only rewriting, besides:
  * `tail -F FILE |` becomes `cat FILE |` (so a `--stdin` run ends);
  * a `watch` that follows files runs for WATCH_SECONDS, then gets SIGINT (it
    must stop cleanly: exit 0);
  * a command left running in the background (`… &`) gets SIGINT at the end of
    its block, and its exit status is checked too;
  * after a backgrounded `watch --listen ADDR`, the script waits until
    `/v1/health` answers;
  * the NATS block starts its own cluster on a free base port (NATS_BASE_PORT),
    and is skipped, with the reason printed, when `nats-server` is not on PATH.

Every command must exit 0 unless the README's own comment on that line says
`exit N`. Prints one line per example (README line, exit status, seconds,
command) and a total; exits 1 if any example failed, 2 if it could not run.

Usage: scripts/readme-examples.py [--bin target/release/tracehunt]
                                  [--corpora ../shared/corpora] [--list] [-v]
"""
import argparse
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WATCH_SECONDS = 6
TIMEOUT = 300

# README paths → sandbox paths (longest first when applied).
PATHS = {
    "/cases/host42/": "logs/",
    "/var/log/winlogbeat/*.ndjson": "winlogbeat/*.ndjson",
    "/var/lib/tracehunt/watch.json": "watch-state.json",
    "/var/log/tracehunt.jsonl": "tracehunt-live.jsonl",
    "/var/log/audit/audit.log": "audit.log",
    "/var/log/auth.log": "auth.log",
    "/tmp/nats": "nats",
    "../shared/corpora/": "corpora/",
}

# Sandbox fixtures: name → path under the corpora (or the repo with "repo:").
FIXTURES = {
    "samples": "repo:samples",
    "scripts": "repo:scripts",
    "logs": "repo:samples/evtx",
    "sigma": "sigma",
    "audit.log": "linux/auditd-laurel/record-perl-reverse-shell.txt",
    "auth.log": "linux/syslog-beats/auth-test.log",
    "cloudtrail": "cloud/cloudtrail-stratus",
    "zeek": "network/zeek-zed/tsv",
    "access.log": "web/apache-elastic-examples/apache_logs",
    "events.jsonl": "mordor/windows/defense_evasion/host/psh_mshta_html_application_execution/"
    "psh_mshta_html_application_execution_2020-10-2203521411.json",
}

# A placeholder: `[`, `|`, `...`, `…`, `<`, or an all-capitals word of 3+ letters (PATH, LOGS, DATE) or N/ID.
PLACEHOLDER = re.compile(r"\[|\||\.\.\.|…|<|\b([A-Z]{3,}|N|ID)\b")


def examples(readme):
    """(kind, first line number, text) for each sh/bash block and inline command."""
    out = []
    lines = readme.split("\n")
    i = 0
    in_other = False
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^```(\w*)\s*$", line)
        if m and not in_other:
            lang = m.group(1)
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            if lang in ("sh", "bash"):
                out.append(("block", i + 2, "\n".join(lines[i + 1 : j])))
            i = j + 1
            continue
        for span in re.findall(r"`(tracehunt [^`]+)`", line):
            # A whole command, not a mention of one (`tracehunt export stix`):
            # at least 4 words, the last not a flag waiting for its value.
            words = span.split()
            if not PLACEHOLDER.search(span) and len(words) >= 4 and not words[-1].startswith("-"):
                out.append(("inline", i + 1, span))
        i += 1
    return out


def logical_commands(block):
    """The block's commands: comments dropped, `\\` continuations joined."""
    cmds, cur, start = [], "", None
    for n, raw in enumerate(block.split("\n")):
        line = raw.rstrip()
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if start is None:
            start = n
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        cmds.append((start, cur.strip()))
        cur, start = "", None
    return cmds


def rewrite(cmd):
    for k in sorted(PATHS, key=len, reverse=True):
        cmd = cmd.replace(k, PATHS[k])
    cmd = re.sub(r"\btail -F (\S+) \|", r"cat \1 |", cmd)
    return cmd


def expected_exit(cmd):
    comment = cmd[len(strip_comment(cmd)):]
    m = re.search(r"#.*\bexit (\d+)", comment)
    return int(m.group(1)) if m else 0


def strip_comment(cmd):
    """`cmd` without a trailing `# …` comment; a `#` inside quotes is kept."""
    quote = None
    for i, ch in enumerate(cmd):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or cmd[i - 1].isspace()):
            return cmd[:i].rstrip()
    return cmd


def free_port_base():
    """A base port with 3 consecutive client ports and their cluster/monitor ports free."""
    for base in range(24222, 60000, 97):
        ok = True
        # scripts/nats-cluster.sh: clients on base+0..2, routes +2000, monitoring +4000.
        for p in [base + off + n for off in (0, 2000, 4000) for n in range(3)]:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", p)) == 0:
                    ok = False
                    break
        if ok:
            return base
    return 24222


def setup(sandbox, corpora, binary):
    for name, src in FIXTURES.items():
        path = os.path.join(ROOT, src[5:]) if src.startswith("repo:") else os.path.join(corpora, src)
        if not os.path.exists(path):
            raise SystemExit(f"readme-examples: fixture {name}: {path} is missing")
        os.symlink(path, os.path.join(sandbox, name))
    os.symlink(corpora, os.path.join(sandbox, "corpora"))
    os.makedirs(os.path.join(sandbox, "crates", "attack", "data"))
    os.makedirs(os.path.join(sandbox, "winlogbeat"))
    shutil.copy(os.path.join(sandbox, "events.jsonl"), os.path.join(sandbox, "winlogbeat", "dc1.ndjson"))
    with open(os.path.join(sandbox, "monthly.csv"), "w") as f:
        f.write("period,count\n")
        for k in range(60):
            y, mth = 2013 + k // 12, k % 12 + 1
            f.write(f"{y}-{mth:02d},{max(1, 12 - (k // 12) * 2 + (k % 3))}\n")
    # The store the store commands read: one hunt of the samples.
    r = subprocess.run([binary, "hunt", "samples/evtx", "--store", "hunts.db", "-q", "-f", "jsonl"],
                       cwd=sandbox, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"readme-examples: setting up hunts.db failed: {r.stderr}")


def run_block(sandbox, env, cmds, verbose):
    """Runs one block's commands in one bash process; returns [(index, rc, secs)]."""
    script = ["set +e", "exec 3>&1", "__bg=()"]
    for idx, (_, cmd) in enumerate(cmds):
        body = rewrite(strip_comment(cmd))
        if body.endswith("&"):
            script.append(f"{body[:-1].strip()} >/dev/null 2>\"$TRACEHUNT_README_ERR/{idx}\" &")
            script.append(f"__bg+=(\"$! {idx}\")")
            m = re.search(r"--listen (\S+)", body)
            if m:
                addr = m.group(1)
                script.append(
                    f"for __i in $(seq 100); do curl -sf http://{addr}/v1/health >/dev/null && break; sleep 0.1; done")
            continue
        if body == "wait":
            script.append("for __p in \"${__bg[@]}\"; do set -- $__p; wait $1; echo \"@@rc $2 $? 0 0\" >&3; done; __bg=()")
            script.append(f"echo \"@@rc {idx} 0 0 0\" >&3")
            continue
        if re.match(r"^tracehunt watch\b", body) and "--stdin" not in body and "--listen" not in body:
            body = f"timeout --preserve-status -s INT {WATCH_SECONDS} {body}"
        script.append("__t=$EPOCHREALTIME")
        # A group, not a subshell: `eval "$(… start)"` must export into the block.
        script.append(f"{{ {body} ; }} >/dev/null 2>\"$TRACEHUNT_README_ERR/{idx}\"")
        script.append(f"__rc=$?; echo \"@@rc {idx} $__rc $__t $EPOCHREALTIME\" >&3")
    script.append("for __p in \"${__bg[@]}\"; do set -- $__p; kill -INT $1 2>/dev/null; wait $1; "
                  "echo \"@@rc $2 $? 0 0\" >&3; done")
    r = subprocess.run(["bash", "-c", "\n".join(script)], cwd=sandbox, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=TIMEOUT * 4)
    results = []
    for line in r.stdout.splitlines():
        if line.startswith("@@rc "):
            _, idx, rc, t0, t1 = line.split()
            results.append((int(idx), int(rc), float(t1) - float(t0)))
    if verbose and r.stderr:
        sys.stderr.write(r.stderr)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tracehunt"))
    ap.add_argument("--corpora", default=os.path.join(ROOT, "..", "shared", "corpora"))
    ap.add_argument("--list", action="store_true", help="list the examples, run nothing")
    ap.add_argument("-v", action="store_true", help="print each failing command's stderr")
    a = ap.parse_args()
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    exs = examples(readme)
    if a.list:
        for kind, line, text in exs:
            print(f"README:{line} [{kind}] {text}")
        return 0
    binary = os.path.abspath(a.bin)
    if not os.access(binary, os.X_OK):
        print(f"readme-examples: no binary at {binary} (cargo build --release -p tracehunt)", file=sys.stderr)
        return 2
    if not os.path.isdir(a.corpora):
        print(f"readme-examples: no corpora at {a.corpora}", file=sys.stderr)
        return 2
    bindir = os.path.join(tempfile.mkdtemp(prefix="th-readme-bin-"), "bin")
    os.makedirs(bindir)
    os.symlink(binary, os.path.join(bindir, "tracehunt"))
    env = dict(os.environ)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    for k in ("TRACEHUNT_STORE", "TRACEHUNT_NATS_URLS", "TRACEHUNT_NATS_TOKEN", "NO_COLOR"):
        env.pop(k, None)
    failed = passed = skipped = 0
    for kind, line, text in exs:
        cmds = logical_commands(text) if kind == "block" else [(0, text)]
        # `cargo run`/`cargo test` lines are what the README's quick start and CI run.
        if all(c.startswith("cargo ") for _, c in cmds):
            continue
        if "# needs network" in text:
            print(f"README:{line}  skipped (the README says it needs network access)")
            skipped += 1
            continue
        if any("nats-cluster.sh" in c for _, c in cmds):
            if not shutil.which("nats-server"):
                print(f"README:{line}  skipped (no nats-server on PATH): NATS block")
                skipped += 1
                continue
            env_block = dict(env, NATS_BASE_PORT=str(free_port_base()))
        else:
            env_block = env
        sandbox = tempfile.mkdtemp(prefix="th-readme-")
        err = os.path.join(sandbox, ".stderr")
        os.makedirs(err)
        env_block = dict(env_block, TRACEHUNT_README_ERR=err)
        setup(sandbox, os.path.abspath(a.corpora), binary)
        results = run_block(sandbox, env_block, cmds, a.v)
        seen = set()
        for idx, rc, secs in results:
            seen.add(idx)
            off, cmd = cmds[idx]
            want = expected_exit(cmd)
            ok = rc == want
            passed += ok
            failed += not ok
            if not cmd.startswith("tracehunt") and ok:
                continue
            print(f"README:{line + off:<5} {'ok  ' if ok else 'FAIL'} exit {rc:<3} {secs:6.2f} s  {cmd[:110]}")
            errfile = os.path.join(err, str(idx))
            if not ok and os.path.exists(errfile):
                print("    stderr: " + open(errfile).read()[-1500:].replace("\n", "\n    "))
        for idx, (off, cmd) in enumerate(cmds):
            if idx not in seen:
                print(f"README:{line + off:<5} FAIL no result: {cmd[:110]}")
                failed += 1
        shutil.rmtree(sandbox, ignore_errors=True)
    print(f"readme-examples: {passed} passed, {failed} failed, {skipped} blocks skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
