"""The web view's server and API (docs/web.md), over real HTTP on loopback.

A private daemon listens with --http 127.0.0.1:0 (or is made to by
`runyard ui`); its token is in STATE/web.token. Every request without the
token is 401, the Host header must name the listener, a change of state is
a POST with the token in X-Runyard-Token from the server's own origin. The
API pages runs by key, filters them, shows one run, its log (in pages and
live as Server-Sent Events that resume with Last-Event-ID after a daemon
restart), its metric series in a bounded number of points that keep the
spikes, its outputs, a sweep's children, and cancels.
"""

import http.client
import json
import os
import socket
import stat
import subprocess
import time
import urllib.parse

import pytest

from conftest import DEADLINE, PY, RUNYARDD, script, wait_for


def web(daemon):
    """(host, port, token) of the daemon's listener."""
    url = (daemon.state_dir / "web.url").read_text().strip()
    u = urllib.parse.urlparse(url)
    return u.hostname, u.port, (daemon.state_dir / "web.token").read_text().strip()


def request(daemon, method, path, token=True, headers=None, body=None, host=None):
    """(status, headers dict, body bytes)."""
    h, port, tok = web(daemon)
    hdrs = dict(headers or {})
    if token is True:
        hdrs["Authorization"] = "Bearer " + tok
    elif token:
        hdrs["Authorization"] = "Bearer " + token
    c = http.client.HTTPConnection(h, port, timeout=30)
    try:
        c.putrequest(method, path, skip_host=True)
        c.putheader("Host", host or "%s:%d" % (h, port))
        for k, v in hdrs.items():
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def get_json(daemon, path, **kw):
    status, _, body = request(daemon, "GET", path, **kw)
    assert status == 200, (path, status, body[:500])
    return json.loads(body)


@pytest.fixture
def wd(daemon_factory):
    return daemon_factory(extra=["--http", "127.0.0.1:0"])


TRAIN = script("""
    import sys, time, runyard
    r = runyard.get_run()
    n = int(sys.argv[1])
    for i in range(n):
        # A spike at 60%: downsampling must keep it.
        r.log("loss", 1000.0 if i == n * 6 // 10 else 1.0 / (i + 1))
    print("trained %d" % n, flush=True)
""")


def test_token_host_and_cookie(wd):
    tok_path = wd.state_dir / "web.token"
    assert stat.S_IMODE(tok_path.stat().st_mode) == 0o600
    token = tok_path.read_text().strip()
    assert len(token) == 64
    assert request(wd, "GET", "/api/runs", token=False)[0] == 401
    assert request(wd, "GET", "/api/runs", token="0" * 64)[0] == 401
    status, _, body = request(wd, "GET", "/", token=False)
    assert status == 401 and b"runyard ui" in body
    # DNS rebinding: a page of another name that resolves to us.
    status, _, body = request(wd, "GET", "/api/runs", host="evil.example:80")
    assert status == 403 and b"Host" in body
    # The URL runyard ui prints: the token once, then a cookie.
    status, hdrs, _ = request(wd, "GET", "/?token=" + token, token=False)
    assert status == 303 and hdrs["location"] == "/"
    cookie = hdrs["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert request(wd, "GET", "/?token=" + "1" * 64, token=False)[0] == 401
    pair = cookie.split(";")[0]
    assert request(wd, "GET", "/api/runs", token=False, headers={"Cookie": pair})[0] == 200
    # localhost names us too.
    _, port, _ = web(wd)
    assert request(wd, "GET", "/api/runs", host="localhost:%d" % port)[0] == 200
    # The same token after a restart.
    wd.stop()
    wd.start()
    assert tok_path.read_text().strip() == token


def test_state_changes_need_the_header_and_our_origin(wd, make_tree):
    src = make_tree({"sleep.py": "import time\ntime.sleep(60)\n"})
    run = wd.submit(src, "sleep.py")
    wait_for(lambda: wd.show(run["id"])["status"] == "Running", what="the run to run")
    token = web(wd)[2]
    path = "/api/runs/%s/cancel" % run["id"]
    # The cookie alone (what a cross-site form would send) is not enough.
    status, _, body = request(wd, "POST", path, body=b"")
    assert status == 403 and b"X-Runyard-Token" in body
    _, port, _ = web(wd)
    status, _, _ = request(wd, "POST", path, body=b"",
                           headers={"X-Runyard-Token": token, "Origin": "http://evil.example"})
    assert status == 403
    assert wd.show(run["id"])["status"] == "Running"
    # A GET never changes anything.
    assert request(wd, "GET", path)[0] == 405
    status, _, body = request(wd, "POST", path, body=b"", headers={
        "X-Runyard-Token": token, "Origin": "http://127.0.0.1:%d" % port})
    assert status == 200, body
    assert wd.wait_terminal(run["id"])["status"] == "Canceled"
    status, _, body = request(wd, "POST", path, body=b"", headers={"X-Runyard-Token": token})
    assert status == 409 and b"ended" in body


def test_runs_page_by_key_with_filters(wd, make_tree):
    src = make_tree({"ok.py": "print('ok')\n", "bad.py": "raise SystemExit(3)\n"})
    ids = []
    for i in range(5):
        ids.append(wd.submit(src, "ok.py", "--lr", str(i), experiment="a" if i % 2 else "b")["id"])
    bad = wd.submit(src, "bad.py", experiment="b")["id"]
    for r in ids + [bad]:
        wd.wait_terminal(r)
    wd.cli("tag", ids[0], "best=yes")
    seen, before = [], 0
    while True:
        page = get_json(wd, "/api/runs?limit=2" + ("&before=%d" % before if before else ""))
        assert len(page["runs"]) <= 2
        seen += [r["id"] for r in page["runs"]]
        if page["next"] is None:
            break
        before = page["next"]
    assert seen == list(reversed(ids + [bad]))
    a = get_json(wd, "/api/runs?experiment=a")["runs"]
    assert {r["id"] for r in a} == {ids[1], ids[3]}
    failed = get_json(wd, "/api/runs?status=Failed")["runs"]
    assert [r["id"] for r in failed] == [bad]
    assert [r["id"] for r in get_json(wd, "/api/runs?q=--lr%203")["runs"]] == [ids[3]]
    assert [r["id"] for r in get_json(wd, "/api/runs?q=100%25")["runs"]] == []
    tagged = get_json(wd, "/api/runs?tag=best%3Dyes")["runs"]
    assert [r["id"] for r in tagged] == [ids[0]] and tagged[0]["tags"] == {"best": "yes"}
    assert get_json(wd, "/api/runs?tag=best%3Dno")["runs"] == []
    one = get_json(wd, "/api/runs/%s" % ids[2])
    assert one["command"] == ["ok.py", "--lr", "2"] and "Completed" in one["transitions"]
    assert get_json(wd, "/api/runs/%d" % one["seq"])["id"] == ids[2]
    exps = {e["name"]: e["runs"] for e in get_json(wd, "/api/experiments")["experiments"]}
    assert exps == {"a": 2, "b": 4}


def test_bad_requests_get_clear_errors(wd):
    for path, status, words in [
        ("/api/runs?limit=abc", 400, b"limit"), ("/api/runs?limit=100000", 400, b"limit"),
        ("/api/runs?status=Sleeping", 400, b"Sleeping"), ("/api/runs?kind=job", 400, b"kind"),
        ("/api/runs/nope", 404, b"nope"), ("/api/runs/nope/logs", 404, b"nope"),
        ("/api/nothing", 404, b"no such"), ("/../../etc/passwd", 404, b"no such"),
        ("/api/runs/1/2/3/4/5/6/7/8/9", 404, b"no such"), ("/.hidden", 404, b"no such"),
    ]:
        got, _, body = request(wd, "GET", path)
        assert got == status and words in body, (path, got, body)
        assert json.loads(body)["error"]["code"]
    token = web(wd)[2]
    status, _, body = request(wd, "POST", "/api/runs/1/cancel", body=b"x" * (200 * 1024),
                              headers={"X-Runyard-Token": token})
    assert status in (413, 404), body
    # The socket still answers after all that.
    assert wd.rpc("daemon.status")["pid"] == wd.pid


def test_logs_in_pages_and_live_across_a_restart(wd, make_tree):
    src = make_tree({"talk.py": script("""
        import time
        for i in range(6):
            print("line %d" % i, flush=True)
            time.sleep(0.5)
    """)})
    run = wd.submit(src, "talk.py")
    h, port, token = web(wd)
    s = socket.create_connection((h, port), timeout=DEADLINE)
    s.sendall(("GET /api/runs/%s/logs/stream HTTP/1.1\r\nHost: %s:%d\r\n"
               "Authorization: Bearer %s\r\n\r\n" % (run["id"], h, port, token)).encode())
    buf = b""
    while b"line 1" not in buf:
        chunk = s.recv(65536)
        assert chunk, buf
        buf += chunk
    assert b"text/event-stream" in buf and b"id: 1\n" in buf and b"id: 2\n" in buf
    s.close()
    # The daemon goes away; the same address comes back and the stream
    # resumes after the last id the client saw.
    wd.kill9()
    wd.start()
    wait_for(lambda: web(wd)[1] == port and request(wd, "GET", "/api/runs")[0] == 200,
             what="the web view to listen again on port %d" % port)
    s = socket.create_connection((h, port), timeout=DEADLINE)
    s.sendall(("GET /api/runs/%s/logs/stream HTTP/1.1\r\nHost: %s:%d\r\n"
               "Authorization: Bearer %s\r\nLast-Event-ID: 2\r\n\r\n"
               % (run["id"], h, port, token)).encode())
    buf = b""
    while b"event: end" not in buf:
        chunk = s.recv(65536)
        assert chunk, buf
        buf += chunk
    s.close()
    events = [json.loads(l[6:]) for l in buf.decode().split("\n") if l.startswith("data: {\"")]
    assert [e["text"] for e in events if "text" in e] == ["line %d" % i for i in range(2, 6)]
    assert b'"status":"Completed"' in buf
    page = get_json(wd, "/api/runs/%s/logs?after=4" % run["id"])
    assert [l["text"] for l in page["lines"]] == ["line 4", "line 5"] and page["ended"]


def test_a_chart_is_bounded_and_keeps_the_spike(wd, make_tree):
    src = make_tree({"train.py": TRAIN})
    big = wd.submit(src, "train.py", "20000")
    small = wd.submit(src, "train.py", "50")
    for r in (big, small):
        assert wd.wait_terminal(r["id"])["status"] == "Completed"
    m = get_json(wd, "/api/runs/%s/metrics" % big["id"])["metrics"]
    assert [(x["name"], x["count"]) for x in m] == [("loss", 20000)]
    c = get_json(wd, "/api/runs/%s/metrics/loss?points=300" % big["id"])
    assert c["count"] == 20000 and c["downsampled"] and len(c["points"]) <= 300
    values = [p[1] for p in c["points"]]
    assert 1000.0 in values, "the spike was smoothed away"
    assert c["points"][-1] == [19999, 1.0 / 20000]
    assert [p[0] for p in c["points"]] == sorted(p[0] for p in c["points"])
    c = get_json(wd, "/api/runs/%s/metrics/loss" % small["id"])
    assert len(c["points"]) == 50 and not c["downsampled"]
    assert request(wd, "GET", "/api/runs/%s/metrics/loss?points=1" % big["id"])[0] == 400
    assert request(wd, "GET", "/api/runs/%s/metrics/acc" % big["id"])[0] == 404
    runs = get_json(wd, "/api/runs")["runs"]
    assert {r["id"]: r["metrics"]["loss"] for r in runs} == {big["id"]: 1.0 / 20000,
                                                              small["id"]: 1.0 / 50}


def test_outputs_download(wd, make_tree):
    src = make_tree({"out.py": script("""
        import os
        os.makedirs("outputs/sub", exist_ok=True)
        open("outputs/sub/model.bin", "wb").write(bytes(range(256)) * 10)
    """)})
    run = wd.submit(src, "out.py")
    assert wd.wait_terminal(run["id"])["status"] == "Completed"
    files = get_json(wd, "/api/runs/%s/outputs" % run["id"])["files"]
    assert [(f["path"], f["size"]) for f in files] == [("outputs/sub/model.bin", 2560)]
    status, hdrs, body = request(wd, "GET", "/api/runs/%s/outputs/outputs/sub/model.bin"
                                 % run["id"])
    assert status == 200 and body == bytes(range(256)) * 10
    assert "model.bin" in hdrs["content-disposition"]
    for bad in ("outputs/../out.py", "outputs/nothing", "%2e%2e/%2e%2e/etc/passwd"):
        assert request(wd, "GET", "/api/runs/%s/outputs/%s" % (run["id"], bad))[0] == 404


def test_a_sweeps_children(wd, make_tree):
    src = make_tree({"train.py": script("""
        import argparse, runyard
        p = argparse.ArgumentParser(); p.add_argument("--lr", type=float)
        a = p.parse_args()
        runyard.get_run().log("acc", a.lr)
    """)})
    sw = wd.cli("sweep", "submit", "--source", src, "--python", PY, "--metric", "acc",
                "--goal", "maximize", "--sampling", "grid", "--param", "--lr=choice(0.1, 0.2)",
                "--max-total", "2", "--max-concurrent", "2", "--", "train.py", json=True).json
    wait_for(lambda: wd.show(sw["id"])["status"] == "Completed", what="the sweep to end")
    one = get_json(wd, "/api/runs/%s" % sw["id"])
    assert one["kind"] == "sweep" and one["sweep"]["best"]["value"] == 0.2, one["sweep"]
    kids = get_json(wd, "/api/runs/%s/children" % sw["id"])["runs"]
    assert sorted(k["params"]["--lr"] for k in kids) == [0.1, 0.2]
    assert all(k["parent"] == sw["id"] for k in kids)
    assert len(get_json(wd, "/api/runs?parent=%s" % sw["id"])["runs"]) == 2
    assert len(get_json(wd, "/api/runs?kind=sweep")["runs"]) == 1


def test_runyard_ui_starts_the_listener_and_prints_the_url(daemon):
    assert not (daemon.state_dir / "web.url").exists()
    out = daemon.cli("ui").stdout.strip()
    u = urllib.parse.urlparse(out)
    assert u.hostname == "127.0.0.1" and u.query == "token=" + web(daemon)[2]
    assert daemon.cli("ui").stdout.strip() == out
    j = daemon.cli("ui", json=True).json
    assert j["login_url"] == out and j["started"] is False
    assert get_json(daemon, "/api/runs") == {"runs": [], "next": None}
    res = daemon.cli("ui", "--port", "x", check=False)
    assert res.rc != 0 and "--port" in res.stderr


def test_only_loopback_unless_said(tmp_path):
    for args, words in [(["--http", "0.0.0.0:0"], "--http-allow-remote"),
                        (["--http", "nonsense"], "ADDR:PORT"),
                        (["--http", "127.0.0.1:99999"], "ADDR:PORT"),
                        (["--http", "256.1.1.1:0", "--http-allow-remote"], "not an IPv4")]:
        res = subprocess.run([str(RUNYARDD), "--state-dir", str(tmp_path / "s"), "--socket",
                              str(tmp_path / "sock")] + args, capture_output=True, text=True,
                             timeout=30)
        assert res.returncode != 0 and words in res.stderr, (args, res.stderr)


def test_remote_with_the_flag_warns(daemon_factory):
    d = daemon_factory(extra=["--http", "0.0.0.0:0", "--http-allow-remote"])
    assert "beyond this machine" in d.log_text()
    assert request(d, "GET", "/api/runs", host="anything:1")[0] == 200


def test_connections_are_bounded_and_the_daemon_goes_on(wd, make_tree):
    src = make_tree({"sleep.py": "import time\ntime.sleep(120)\n"})
    run = wd.submit(src, "sleep.py")
    h, port, token = web(wd)
    held = []
    for _ in range(80):
        s = socket.create_connection((h, port), timeout=10)
        s.sendall(("GET /api/runs/%s/logs/stream HTTP/1.1\r\nHost: %s:%d\r\n"
                   "Authorization: Bearer %s\r\n\r\n" % (run["id"], h, port, token)).encode())
        held.append(s)
    # Past the bound new connections are closed; the socket and the page's
    # API still answer once the held ones go.
    assert wd.rpc("daemon.status")["pid"] == wd.pid
    for s in held:
        s.close()
    wait_for(lambda: request(wd, "GET", "/api/runs")[0] == 200, what="the API to answer again")
    wd.cli("cancel", run["id"])


def chart_as_a_scan_draws_it(values, max_points):
    """The chart of [(step, value or None)] as a scan of every point would draw it, in the
    buckets the rollups allow (docs/web.md, "Rollups")."""
    n = len(values)
    buckets = (max_points - 1) // 2 if max_points > 2 else 1
    width = 1 if n <= max_points else -(-n // buckets)
    for size in (1 << 15, 1 << 10, 1 << 5):
        if width >= size:
            width = -(-width // size) * size
            break
    out, cur, last = [], None, None
    for i, (step, v) in enumerate(values):
        if v is None:
            continue
        last = i
        if width == 1:
            out.append([step, v])
            continue
        b = i // width
        if cur is None or cur[0] != b:
            if cur:
                out += [[values[j][0], values[j][1]] for j in sorted({cur[1], cur[2]})]
            cur = [b, i, i]
        elif v < values[cur[1]][1]:
            cur[1] = i
        elif v > values[cur[2]][1]:
            cur[2] = i
    if cur:
        out += [[values[j][0], values[j][1]] for j in sorted({cur[1], cur[2]})]
        if last not in (cur[1], cur[2]):
            out.append([values[last][0], values[last][1]])
    return out


def test_charts_agree_with_the_points_after_a_kill(daemon_factory, make_tree):
    """The rollups are written with the points: a daemon killed while a run logs fast
    leaves none missing or counted twice, and after the restart every chart is the one a
    scan of the stored points draws."""
    d = daemon_factory(extra=["--http", "127.0.0.1:0"])
    src = make_tree({"log.py": script("""
        import time, runyard
        r = runyard.get_run()
        for i in range(120000):
            r.log("v", 5000.0 if i % 4099 == 7 else float((i * 7919) % 1000))
            if i % 20000 == 0:
                r.log("v", "NaN text")  # not a number: not in the charts
                time.sleep(0.5)
    """)})
    run = d.submit(src, "log.py")
    wait_for(lambda: (get_json(d, "/api/runs/%s/metrics" % run["id"])["metrics"] or
                      [{"count": 0}])[0]["count"] > 30000, timeout=DEADLINE)
    assert d.status(run["id"]) == "Running"
    d.kill9()
    d.restart()
    assert d.wait_terminal(run["id"])["status"] == "Completed"
    stored = []
    after = 0
    while True:
        page = d.rpc("run.metrics", {"run": run["id"], "name": "v", "after": after,
                                     "limit": 10000})
        stored += [(p["step"], None if isinstance(p["value"], str) else p["value"])
                   for p in page["points"]]
        if not page["more"]:
            break
        after = page["next"]
    assert len(stored) == 120006
    for points in (3, 100, 999, 2000):
        c = get_json(d, "/api/runs/%s/metrics/v?points=%d" % (run["id"], points))
        assert c["count"] == len(stored) and len(c["points"]) <= points
        assert c["points"] == chart_as_a_scan_draws_it(stored, points), points
    assert max(p[1] for p in c["points"]) == 5000.0


def test_a_runs_snapshot(wd, make_tree):
    src = make_tree({"main.py": "print('hi')\n", "lib/a.py": "A = 1\n", "skip.log": "x\n",
                     ".amlignore": "*.log\n"})
    run = wd.submit(src, "main.py")
    assert wd.wait_terminal(run["id"])["status"] == "Completed"
    snap = get_json(wd, "/api/runs/%s/snapshot" % run["id"])
    assert snap["snapshot"] == wd.show(run["id"])["snapshot"] and not snap["more"]
    assert [(f["path"], f["size"]) for f in snap["files"]] == [
        (".amlignore", 6), ("lib/a.py", 6), ("main.py", 12)]
    one = get_json(wd, "/api/runs/%s/snapshot?limit=1" % run["id"])
    assert len(one["files"]) == 1 and one["more"]
    for bad in ("limit=0", "limit=10001", "limit=x"):
        assert request(wd, "GET", "/api/runs/%s/snapshot?%s" % (run["id"], bad))[0] == 400
    assert request(wd, "GET", "/api/runs/nope_1_00000000/snapshot")[0] == 404


def pages(daemon, query):
    """Every run of a sorted listing, two a page, following "next"."""
    seen, before = [], None
    while True:
        page = get_json(daemon, "/api/runs?limit=2&%s%s" % (
            query, "&before=" + urllib.parse.quote(str(before)) if before is not None else ""))
        assert len(page["runs"]) <= 2
        seen += page["runs"]
        if page["next"] is None:
            return seen
        before = page["next"]


def test_runs_sorted_by_number_or_by_a_metric_in_keyset_pages(wd, make_tree):
    src = make_tree({"acc.py": script("""
        import sys, runyard
        if sys.argv[1] != "none":
            runyard.get_run().log("acc", float(sys.argv[1]))
    """)})
    # Ties (0.5 twice) are broken by number; a run without acc is not listed by acc.
    accs = ["0.5", "0.9", "0.1", "none", "0.5", "0.7"]
    ids = [wd.submit(src, "acc.py", a)["id"] for a in accs]
    for r in ids:
        assert wd.wait_terminal(r)["status"] == "Completed"
    assert [r["id"] for r in pages(wd, "order=asc")] == ids
    assert [r["id"] for r in pages(wd, "sort=seq&order=desc")] == ids[::-1]
    by_acc = pages(wd, "sort=metric:acc")
    assert [r["metrics"]["acc"] for r in by_acc] == [0.9, 0.7, 0.5, 0.5, 0.1]
    assert [r["id"] for r in by_acc][2:4] == [ids[4], ids[0]]
    up = pages(wd, "sort=metric:acc&order=asc")
    assert [r["id"] for r in up] == [r["id"] for r in by_acc][::-1]
    assert get_json(wd, "/api/runs?sort=metric:nothing")["runs"] == []
    for bad in ("sort=size", "sort=metric:", "order=up", "sort=metric:acc&before=3",
                "sort=metric:acc&before=x:3", "sort=metric:acc&before=nan:3", "before=-1",
                "before=2x"):
        status, _, body = request(wd, "GET", "/api/runs?" + bad)
        assert status == 400, (bad, status, body)
        assert json.loads(body)["error"]["code"] == "InvalidArgument"


def test_an_error_that_quotes_bad_bytes_is_still_utf8(wd):
    for path in ("/api/runs?status=%FF%FE", "/api/runs/%FF/metrics/x", "/api/runs?sort=zz%C3"):
        status, _, body = request(wd, "GET", path)
        assert status in (400, 404), (path, status)
        body.decode("utf-8")  # strict: raises on invalid bytes
        assert json.loads(body)["error"]["code"]
