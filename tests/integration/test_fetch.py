"""Downloads (daemon/net/fetch.c) against a real HTTP server on 127.0.0.1.

tests/unit/fetch-probe runs the daemon's fetch manager on a uv loop and
prints one JSON line per progress report and per result; httpserver.py
serves files and misbehaves on purpose, and counts what it was asked.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading

import pytest

from conftest import ASAN, BUILD, CLI, RUNYARDD, SANITIZER_MARKS, pid_alive
import httpserver
from httpserver import HttpServer, http_server  # noqa: F401

PROBE = BUILD / "tests" / "unit" / "fetch-probe"

# No proxy may stand between the probe and 127.0.0.1.
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def make_file(srv, name, size, seed=1):
    data = hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1)
    data = data[:size]
    (srv.root / name).write_bytes(data)
    return data, hashlib.sha256(data).hexdigest()


def probe(cache, *args, timeout=120, check_exit=True):
    """Run fetch-probe; return (results, progress lines, completed process)."""
    argv = [str(PROBE), "--cache", str(cache)] + [str(a) for a in args]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=ENV,
                       stdin=subprocess.DEVNULL)
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    assert not [m for m in SANITIZER_MARKS if m in p.stderr], p.stderr
    if check_exit:
        assert p.returncode == 0, "fetch-probe exited %d\n%s\n%s" % (p.returncode, p.stdout,
                                                                    p.stderr)
    done = [l for l in lines if l["event"] == "done"]
    progress = [l for l in lines if l["event"] == "progress"]
    return done, progress, p


def one(cache, *args, **kw):
    done, progress, _ = probe(cache, *args, **kw)
    assert len(done) == 1, done
    return done[0], progress


pytestmark = pytest.mark.skipif(not PROBE.exists(), reason="fetch-probe is not built")


def test_plain_download_with_checksum(tmp_path, http_server):
    data, sha = make_file(http_server, "a.bin", 300_000)
    r, _ = one(tmp_path / "cache", "--sha256", sha, http_server.url("/files/a.bin"))
    assert r["err"] == 0, r
    assert r["sha256"] == sha and r["size"] == len(data) and r["from_cache"] is False
    path = r["path"]
    assert path == str(tmp_path / "cache" / "objects" / sha)
    with open(path, "rb") as f:
        assert f.read() == data
    # Immutable: nobody writes into the cache's objects.
    assert os.stat(path).st_mode & 0o222 == 0
    assert http_server.full_transfers("/files/a.bin") == 1
    # Nothing left behind in the temporary area.
    assert os.listdir(tmp_path / "cache" / "tmp") == []


def test_wrong_checksum_names_both_digests(tmp_path, http_server):
    _, sha = make_file(http_server, "a.bin", 5000)
    wrong = "ab" * 32
    r, _ = one(tmp_path / "cache", "--sha256", wrong, http_server.url("/files/a.bin"))
    assert r["errno"] == "EBADMSG", r
    assert wrong in r["cause"] and sha in r["cause"]
    assert http_server.url("/files/a.bin") in r["cause"]


def test_missing_file_gives_a_clear_cause(tmp_path, http_server):
    url = http_server.url("/files/nope.bin")
    r, _ = one(tmp_path / "cache", url)
    assert r["errno"] == "ENOENT", r
    assert r["cause"] == url + ": HTTP 404 Not Found"
    # Not transient: asked once.
    assert http_server.count("/files/nope.bin") == 1


def test_forbidden_is_not_retried(tmp_path, http_server):
    r, _ = one(tmp_path / "cache", "--retries", "3", http_server.url("/status/403"))
    assert r["errno"] == "EACCES" and "HTTP 403" in r["cause"], r
    assert http_server.count("/status/403") == 1


def test_redirect_is_followed(tmp_path, http_server):
    data, sha = make_file(http_server, "a.bin", 10_000)
    r, _ = one(tmp_path / "cache", http_server.url("/redirect/a.bin"))
    assert r["err"] == 0 and r["sha256"] == sha, r
    assert http_server.count("/redirect/a.bin") == 1
    assert http_server.full_transfers("/files/a.bin") == 1


def test_redirect_loop_fails(tmp_path, http_server):
    url = http_server.url("/redirect-loop")
    r, _ = one(tmp_path / "cache", url)
    assert r["err"] < 0 and r["cause"].startswith(url + ": "), r
    assert "redirect" in r["cause"].lower()


def test_over_the_size_limit_from_content_length(tmp_path, http_server):
    make_file(http_server, "big.bin", 200_000)
    url = http_server.url("/files/big.bin")
    r, _ = one(tmp_path / "cache", "--limit", "100000", url)
    assert r["errno"] == "EFBIG", r
    assert r["cause"].startswith(url + ": ") and "100000" in r["cause"]
    assert "200000" in r["cause"]  # the size the server announced
    assert os.listdir(tmp_path / "cache" / "objects") == []


def test_over_the_size_limit_while_receiving(tmp_path, http_server):
    # No Content-Length: only the bytes themselves tell.
    make_file(http_server, "big.bin", 200_000)
    r, _ = one(tmp_path / "cache", "--max-bytes", "50000",
               http_server.url("/nolength/big.bin"))
    assert r["errno"] == "EFBIG" and "50000" in r["cause"], r
    assert os.listdir(tmp_path / "cache" / "objects") == []
    assert os.listdir(tmp_path / "cache" / "tmp") == []


def test_timeout_on_a_slow_server(tmp_path, http_server):
    make_file(http_server, "slow.bin", 100_000)  # 1 KB every 0.2 s: 20 s
    url = http_server.url("/slow/slow.bin")
    done, progress, _ = probe(tmp_path / "cache", "--timeout-ms", "2500", url)
    assert len(done) == 1
    r = done[0]
    assert r["errno"] == "ETIMEDOUT", r
    assert r["cause"].startswith(url + ": timed out"), r
    # Progress came while bytes moved: about once a second, never more.
    assert 1 <= len(progress) <= 4, progress
    assert all(p["total"] == 100_000 and 0 < p["done"] < 100_000 for p in progress)
    assert all(p["rate"] > 0 for p in progress)


def test_retry_then_success_on_transient_500(tmp_path, http_server):
    http_server.flaky_failures = 2
    data, sha = make_file(http_server, "a.bin", 20_000)
    r, _ = one(tmp_path / "cache", "--retries", "3", http_server.url("/flaky/a.bin"))
    assert r["err"] == 0 and r["sha256"] == sha, r
    assert http_server.count("/flaky/a.bin") == 3


def test_always_500_gives_up_with_attempts(tmp_path, http_server):
    url = http_server.url("/fail/x")
    r, _ = one(tmp_path / "cache", "--retries", "2", url)
    assert r["errno"] == "EIO", r
    assert r["cause"] == url + ": 3 attempts failed: HTTP 500 Internal Server Error"
    assert http_server.count("/fail/x") == 3


def test_connection_refused_is_retried_then_named(tmp_path):
    s = __import__("socket").socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    url = "http://127.0.0.1:%d/x" % port
    r, _ = one(tmp_path / "cache", "--retries", "1", url)
    assert r["errno"] == "ECONNREFUSED", r
    assert r["cause"] == url + ": 2 attempts failed: connection refused"


def test_resume_after_a_dropped_connection(tmp_path, http_server):
    data, sha = make_file(http_server, "a.bin", 400_000)
    r, _ = one(tmp_path / "cache", "--retries", "2", http_server.url("/drop/a.bin"))
    assert r["err"] == 0 and r["sha256"] == sha, r
    reqs = http_server.requests_for("/drop/a.bin")
    assert len(reqs) == 2
    assert "Range" not in reqs[0][2] and reqs[0][4] == 200_000
    # The second asked only for the rest.
    assert reqs[1][2].get("Range") == "bytes=200000-" and reqs[1][3] == 206
    assert reqs[1][4] == 200_000


def test_resume_a_partial_left_by_an_earlier_process(tmp_path, http_server):
    data, sha = make_file(http_server, "a.bin", 400_000)
    url = http_server.url("/drop/a.bin")
    # No retries: the first process fails with half the file on disk.
    r, _ = one(tmp_path / "cache", "--retries", "0", url)
    assert r["errno"] == "EIO" and "connection closed" in r["cause"], r
    parts = [n for n in os.listdir(tmp_path / "cache" / "tmp") if n.endswith(".part")]
    assert len(parts) == 1
    assert os.path.getsize(tmp_path / "cache" / "tmp" / parts[0]) == 200_000
    # The next one rehashes the partial and asks for the rest.
    r, _ = one(tmp_path / "cache", "--retries", "0", url)
    assert r["err"] == 0 and r["sha256"] == sha, r
    reqs = http_server.requests_for("/drop/a.bin")
    assert len(reqs) == 2
    assert reqs[1][2].get("Range") == "bytes=200000-"
    assert reqs[1][2].get("If-Range")  # only while the server has the same body
    assert os.listdir(tmp_path / "cache" / "tmp") == []


def test_revalidation_304_reuses_the_cache(tmp_path, http_server):
    data, sha = make_file(http_server, "a.bin", 100_000)
    url = http_server.url("/files/a.bin")
    first, _ = one(tmp_path / "cache", url)
    assert first["err"] == 0 and first["from_cache"] is False
    second, _ = one(tmp_path / "cache", url)
    assert second["err"] == 0 and second["from_cache"] is True, second
    assert second["sha256"] == sha and second["path"] == first["path"]
    reqs = http_server.requests_for("/files/a.bin")
    assert [r[3] for r in reqs] == [200, 304]
    assert reqs[1][2].get("If-None-Match")
    assert http_server.full_transfers("/files/a.bin") == 1


def test_revalidation_by_last_modified(tmp_path, http_server):
    make_file(http_server, "a.bin", 1000)
    url = http_server.url("/noetag/a.bin")
    assert one(tmp_path / "cache", url)[0]["from_cache"] is False
    second, _ = one(tmp_path / "cache", url)
    assert second["from_cache"] is True, second
    reqs = http_server.requests_for("/noetag/a.bin")
    assert reqs[1][2].get("If-Modified-Since") and reqs[1][3] == 304


def test_changed_file_is_downloaded_again(tmp_path, http_server):
    make_file(http_server, "a.bin", 1000, seed=1)
    url = http_server.url("/files/a.bin")
    first, _ = one(tmp_path / "cache", url)
    _, sha2 = make_file(http_server, "a.bin", 1500, seed=2)
    os.utime(http_server.root / "a.bin", (1e9, 2e9))  # a new mtime, so a new ETag
    second, _ = one(tmp_path / "cache", url)
    assert second["from_cache"] is False and second["sha256"] == sha2
    assert second["sha256"] != first["sha256"]


def test_known_digest_needs_no_request(tmp_path, http_server):
    _, sha = make_file(http_server, "a.bin", 1000)
    one(tmp_path / "cache", http_server.url("/files/a.bin"))
    # Content addressed: another URL with the same expected digest is served
    # from the cache without asking anybody.
    r, _ = one(tmp_path / "cache", "--sha256", sha, http_server.url("/files/other-name"))
    assert r["err"] == 0 and r["from_cache"] is True and r["sha256"] == sha
    assert http_server.count("/files/other-name") == 0


def test_concurrent_fetches_share_one_transfer(tmp_path, http_server):
    http_server.slow_chunk = 20_000
    http_server.slow_delay = 0.1
    data, sha = make_file(http_server, "a.bin", 200_000)
    url = http_server.url("/slow/a.bin")
    done, _, _ = probe(tmp_path / "cache", url, url, "--sha256", sha, url, url)
    assert len(done) == 4
    assert sorted(d["index"] for d in done) == [0, 1, 2, 3]
    assert all(d["err"] == 0 and d["sha256"] == sha for d in done), done
    assert all(d["from_cache"] is False for d in done)
    assert http_server.count("/slow/a.bin") == 1


def test_shared_transfer_checks_each_request(tmp_path, http_server):
    http_server.slow_chunk = 20_000
    http_server.slow_delay = 0.05
    _, sha = make_file(http_server, "a.bin", 100_000)
    url = http_server.url("/slow/a.bin")
    done, _, _ = probe(tmp_path / "cache", url, "--sha256", "cd" * 32, url)
    by = {d["index"]: d for d in done}
    assert by[0]["err"] == 0 and by[0]["sha256"] == sha
    assert by[1]["errno"] == "EBADMSG" and sha in by[1]["cause"]
    assert http_server.count("/slow/a.bin") == 1


def test_canceled_request_does_not_stop_the_others(tmp_path, http_server):
    http_server.slow_chunk = 20_000
    http_server.slow_delay = 0.05
    _, sha = make_file(http_server, "a.bin", 100_000)
    url = http_server.url("/slow/a.bin")
    done, _, _ = probe(tmp_path / "cache", "--cancel", "0", url, url)
    assert [d["index"] for d in done] == [1]
    assert done[0]["err"] == 0 and done[0]["sha256"] == sha


def test_closing_the_manager_mid_transfer(tmp_path, http_server):
    make_file(http_server, "a.bin", 1000)
    make_file(http_server, "slow.bin", 100_000)
    # The first answer closes the manager while the slow one is in flight;
    # the probe checks that the loop still closes cleanly.
    done, _, p = probe(tmp_path / "cache", "--close-after", "1",
                       http_server.url("/files/a.bin"), http_server.url("/slow/slow.bin"))
    assert len(done) == 1 and done[0]["err"] == 0


def test_file_url(tmp_path):
    src = tmp_path / "data set.bin"
    data = os.urandom(70_000)
    src.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    url = "file://" + str(src).replace(" ", "%20")
    r, _ = one(tmp_path / "cache", "--sha256", sha, url)
    assert r["err"] == 0 and r["sha256"] == sha and r["from_cache"] is False, r
    with open(r["path"], "rb") as f:
        assert f.read() == data
    # Unchanged since: not copied again.
    again, _ = one(tmp_path / "cache", url)
    assert again["from_cache"] is True and again["sha256"] == sha
    # Changed: copied again.
    src.write_bytes(data + b"more")
    third, _ = one(tmp_path / "cache", url)
    assert third["from_cache"] is False and third["size"] == len(data) + 4


def test_missing_file_url(tmp_path):
    url = "file://" + str(tmp_path / "nope.bin")
    r, _ = one(tmp_path / "cache", url)
    assert r["errno"] == "ENOENT", r
    assert r["cause"] == url + ": No such file or directory"


def test_file_url_over_the_limit(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 10_000)
    r, _ = one(tmp_path / "cache", "--limit", "1000", "file://" + str(src))
    assert r["errno"] == "EFBIG" and "1000" in r["cause"], r


def test_unsupported_scheme(tmp_path):
    r, _ = one(tmp_path / "cache", "ftp://example.invalid/x")
    assert r["err"] < 0 and r["cause"].startswith("ftp://example.invalid/x: "), r


def test_bad_expected_digest(tmp_path, http_server):
    r, _ = one(tmp_path / "cache", "--sha256", "xyz", http_server.url("/files/a"))
    assert r["errno"] == "EINVAL" and "xyz" in r["cause"], r
    assert http_server.count("/files/a") == 0


def test_daemon_start_passes_download_options(tmp_path):
    sock_dir = tempfile.mkdtemp(prefix="ry-", dir="/tmp")
    sock = os.path.join(sock_dir, "sock")
    state = tmp_path / "state"
    env = dict(os.environ, RUNYARD_DAEMON=str(RUNYARDD))
    env.pop("RUNYARD_SOCKET", None)

    def cli(*args):
        return subprocess.run([str(CLI), "--socket", sock, "--json"] + list(args), env=env,
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    bad = cli("daemon", "start", "--state-dir", str(state), "--download-max-mb", "-1")
    assert bad.returncode == 1 and "--download-max-mb" in bad.stderr
    pid = None
    try:
        res = cli("daemon", "start", "--state-dir", str(state), "--download-max-mb", "5",
                  "--download-timeout", "60")
        assert res.returncode == 0, res.stderr
        pid = json.loads(res.stdout)["pid"]
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
        assert b"--download-max-mb" in argv and b"5" in argv
        assert b"--download-timeout" in argv and b"60" in argv
        assert (state / "downloads" / "objects").is_dir()
        assert (state / "downloads" / "index").is_dir()
        res = cli("daemon", "stop")
        assert res.returncode == 0, res.stderr
        assert not pid_alive(pid)
        pid = None
        log = (state / "runyardd.log").read_text()
        assert not [m for m in SANITIZER_MARKS if m in log], log
        assert "open handles" not in log
    finally:
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(sock_dir, ignore_errors=True)


def test_runyardd_rejects_bad_download_options(tmp_path):
    for opt, val in (("--download-max-mb", "0"), ("--download-timeout", "soon")):
        p = subprocess.run([str(RUNYARDD), "--state-dir", str(tmp_path / "s"), opt, val],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and opt in p.stderr


def test_a_complete_partial_starts_over(tmp_path, http_server):
    # A partial as long as the body (the earlier process died before it
    # could finish): the server has no range left to give (416), so the
    # download starts over rather than failing.
    data, sha = make_file(http_server, "a.bin", 30_000)
    url = http_server.url("/files/a.bin")
    key = hashlib.sha256(url.encode()).hexdigest()
    tmp = tmp_path / "cache" / "tmp"
    tmp.mkdir(parents=True)
    (tmp / (key + ".part")).write_bytes(data)
    etag = httpserver._etag(str((http_server.root / "a.bin").resolve()))
    (tmp / (key + ".part.json")).write_text(json.dumps({"url": url, "etag": etag}))
    r, _ = one(tmp_path / "cache", "--retries", "0", url)
    assert r["err"] == 0 and r["sha256"] == sha, r
    assert [q[3] for q in http_server.requests_for("/files/a.bin")] == [416, 200]


def test_a_partial_of_a_changed_body_starts_over(tmp_path, http_server):
    # The partial came from an older body: If-Range makes the server send
    # the whole new one, which replaces the partial's bytes.
    data, sha = make_file(http_server, "a.bin", 30_000)
    url = http_server.url("/files/a.bin")
    key = hashlib.sha256(url.encode()).hexdigest()
    tmp = tmp_path / "cache" / "tmp"
    tmp.mkdir(parents=True)
    (tmp / (key + ".part")).write_bytes(b"stale bytes " * 1000)
    (tmp / (key + ".part.json")).write_text(json.dumps({"url": url, "etag": '"old"'}))
    r, _ = one(tmp_path / "cache", "--retries", "0", url)
    assert r["err"] == 0 and r["sha256"] == sha and r["size"] == len(data), r
    reqs = http_server.requests_for("/files/a.bin")
    assert len(reqs) == 1 and reqs[0][2].get("If-Range") == '"old"' and reqs[0][3] == 200
