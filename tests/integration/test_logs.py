"""Log lines: streams, order, following, and a follower that does not read."""

import re
import subprocess
import threading

from conftest import (CLI, DEADLINE, SMALL_ASAN_QUARANTINE, WAIT_FILE, parse_ts, rss_kb, script,
                      wait_for)


def test_log_lines_streams_and_sequence(daemon, make_tree):
    src = make_tree({"both.py": script("""
        import sys
        for i in range(50):
            print("out-%d" % i)
            print("err-%d" % i, file=sys.stderr)
        sys.stdout.write("tail-without-newline")
    """)})
    sub = daemon.submit(src, "both.py")
    run = daemon.wait_terminal(sub["id"])
    assert run["status"] == "Completed", run
    assert run["log_lines"] == 101

    lines = daemon.cli("logs", sub["id"], json=True).json
    assert isinstance(lines, list)
    assert [l["seq"] for l in lines] == list(range(1, 102))
    out = [l["text"] for l in lines if l["stream"] == "stdout"]
    err = [l["text"] for l in lines if l["stream"] == "stderr"]
    assert out == ["out-%d" % i for i in range(50)] + ["tail-without-newline"]
    assert err == ["err-%d" % i for i in range(50)]
    stamps = [parse_ts(l["ts"]) for l in lines]
    assert stamps == sorted(stamps), "timestamps go backwards along seq"

    only_err = daemon.cli("logs", sub["id"], "--stream", "stderr", json=True).json
    assert [l["text"] for l in only_err] == err
    assert {l["stream"] for l in only_err} == {"stderr"}
    assert [l["seq"] for l in only_err] == [l["seq"] for l in lines if l["stream"] == "stderr"]

    human = daemon.cli("logs", sub["id"]).stdout
    assert "out-7" in human and "err-7" in human and "tail-without-newline" in human


def test_logs_timestamps_flag(daemon, make_tree):
    src = make_tree({"p.py": "print('stamped')\n"})
    sub = daemon.submit(src, "p.py")
    daemon.wait_terminal(sub["id"])
    out = daemon.cli("logs", sub["id"], "--timestamps").stdout
    line = [l for l in out.splitlines() if "stamped" in l][0]
    assert re.search(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d", line), line


def test_long_lines_split_and_invalid_utf8_replaced(daemon, make_tree):
    src = make_tree({"odd.py": script("""
        import sys
        sys.stdout.write("x" * 150000 + "\\n")
        sys.stdout.flush()
        sys.stdout.buffer.write(b"bad-\\xff-byte\\n")
    """)})
    sub = daemon.submit(src, "odd.py")
    assert daemon.wait_terminal(sub["id"])["status"] == "Completed"
    lines = daemon.logs(sub["id"])
    long = [l["text"] for l in lines[:-1]]
    assert all(0 < len(t.encode()) <= 65536 for t in long), [len(t) for t in long]
    assert "".join(long) == "x" * 150000
    assert lines[-1]["text"] == "bad-\ufffd-byte"


def test_logs_paging(daemon, make_tree):
    src = make_tree({"p.py": "for i in range(25):\n    print(i)\n"})
    sub = daemon.submit(src, "p.py")
    daemon.wait_terminal(sub["id"])
    page = daemon.rpc("run.logs", {"run": sub["id"], "limit": 10})
    assert [l["text"] for l in page["lines"]] == [str(i) for i in range(10)]
    assert page["more"] is True and page["next_seq"] == 10
    page = daemon.rpc("run.logs", {"run": sub["id"], "after_seq": 20, "limit": 10})
    assert [l["text"] for l in page["lines"]] == [str(i) for i in range(20, 25)]
    assert page["more"] is False and page["terminal"] is True


class LineReader:
    """Collects a child's stdout lines in a thread, so tests can wait on them."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def has(self, text):
        with self.lock:
            return any(text in l for l in self.lines)


def test_logs_follow_while_running(daemon, make_tree, ext):
    go = ext / "go"
    src = make_tree({"f.py": WAIT_FILE + script("""
        import sys
        print("before-the-file")
        wait_file(sys.argv[1])
        print("after-the-file")
    """)})
    sub = daemon.submit(src, "f.py", str(go))
    proc = subprocess.Popen([str(CLI), "--socket", daemon.socket, "logs", sub["id"], "-f"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        reader = LineReader(proc)
        wait_for(lambda: reader.has("before-the-file"), what="logs -f to print the first line")
        assert daemon.status(sub["id"]) == "Running"
        assert not reader.has("after-the-file")
        go.write_text("")
        rc = proc.wait(timeout=DEADLINE)
        reader.thread.join(10)
        assert rc == 0, proc.stderr.read()
        assert reader.has("after-the-file")
        assert sum("before-the-file" in l for l in reader.lines) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_slow_follower_does_not_slow_the_run_or_grow_memory(daemon_factory, make_tree, ext):
    # 300,000 lines of ~300 bytes: ~100 MB of events if the daemon queued them all for a
    # follower that does not read. It must not: the run ends, memory stays flat, and the
    # follower still gets every line once it reads.
    n, width = 300_000, 300
    daemon = daemon_factory(env=SMALL_ASAN_QUARANTINE)
    go = ext / "go"
    src = make_tree({"flood.py": WAIT_FILE + script("""
        import sys
        wait_file(sys.argv[1])
        n, pad = int(sys.argv[2]), "x" * int(sys.argv[3])
        for i in range(0, n, 100):
            sys.stdout.write("".join("%d %s\\n" % (j, pad) for j in range(i, min(i + 100, n))))
    """)})
    sub = daemon.submit(src, "flood.py", str(go), str(n), str(width))
    daemon.wait_status(sub["id"], "Running")

    watcher = daemon.client()
    watch = watcher.call("run.watch", {"run": sub["id"], "logs": True})
    sid = watch["sub"]
    base = rss_kb(daemon.pid)
    go.write_text("")

    # Do not read the watcher. The run must end anyway and the daemon stay small.
    peak = [0]

    def ended():
        peak[0] = max(peak[0], rss_kb(daemon.pid))
        r = daemon.show(sub["id"])
        return r if r["status"] in ("Completed", "Failed", "Canceled") else None

    run = wait_for(ended, timeout=DEADLINE, interval=0.1,
                   what="the run to end while its follower does not read")
    assert run["status"] == "Completed", run
    assert run["log_lines"] == n

    # Now read: every line, in order, exactly once, then run.end.
    pad = "x" * width
    seqs, bad = [], []
    events = 0
    while True:
        ev = watcher.next_event(timeout=DEADLINE)
        if ev.get("sub") != sid:
            continue
        if ev["event"] == "run.log":
            for l in ev["data"]["lines"]:
                if l["text"] != "%d %s" % (len(seqs), pad):
                    bad.append(l)
                seqs.append(l["seq"])
        elif ev["event"] == "run.end":
            assert ev["data"]["run"]["status"] == "Completed"
            break
        events += 1
        if events % 50 == 0:
            peak[0] = max(peak[0], rss_kb(daemon.pid))
    watcher.close()
    assert len(seqs) == n, "follower got %d lines of %d" % (len(seqs), n)
    assert seqs == list(range(1, n + 1)), "lines out of order, repeated or skipped"
    assert not bad, "unexpected line texts, first: %r" % bad[:1]
    grown = peak[0] - base
    assert peak[0] < 150 * 1024, "daemon VmRSS reached %d kB with a slow follower" % peak[0]
    assert grown < 64 * 1024, "daemon VmRSS grew by %d kB (from %d kB) with a slow follower" % (
        grown, base)
    # The daemon is still fine.
    assert daemon.rpc("daemon.status")["pid"] == daemon.pid
