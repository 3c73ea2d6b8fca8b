"""Bad input gets a clear error (or a closed connection) and changes nothing."""

import struct

import pytest

import ryclient
from conftest import PY, rss_kb


@pytest.fixture
def busy(daemon, make_tree):
    """A daemon with one finished run; yields (daemon, source dir with a.py).

    On the way out, checks that the daemon still answers and that the run
    list is what it was."""
    src = make_tree({"a.py": "print('one')\n"})
    sub = daemon.submit(src, "a.py")
    daemon.wait_terminal(sub["id"])
    before = daemon.cli("runs", json=True).json
    yield daemon, str(src)
    with daemon.client() as c:
        assert c.call("daemon.status")["pid"] == daemon.pid
    assert daemon.cli("runs", json=True).json == before


def error_of(client, op, args=None, id=None):
    reply = client.request(op, args, id=id)
    assert reply["ok"] is False, "expected an error for %s %r, got %r" % (op, args, reply)
    return reply["error"]


def test_malformed_json_frame_is_bad_request_and_connection_stays(busy):
    d, _ = busy
    with d.client() as c:
        c.send_raw(ryclient.frame(b'{"id": 1, "op": "daemon.status", '))
        reply = c.read_reply()
        assert reply["ok"] is False and reply["id"] == 0
        assert reply["error"]["code"] == "BadRequest"
        c.send_raw(ryclient.frame(b"[1, 2, 3]"))
        assert c.read_reply()["error"]["code"] == "BadRequest"
        c.send_raw(ryclient.frame(b'{"op": "daemon.status"}'))  # no id
        assert c.read_reply()["error"]["code"] == "BadRequest"
        assert c.call("daemon.status")["pid"] == d.pid


def test_wrong_magic_closes_the_connection(busy):
    d, _ = busy
    with d.client() as c:
        payload = b'{"id": 1, "op": "daemon.status"}'
        c.send_raw(b"XYZ1" + struct.pack(">I", len(payload)) + payload)
        assert c.wait_closed(), "connection not closed after a wrong magic"


def test_oversized_length_closes_without_allocating(busy):
    d, _ = busy
    before = rss_kb(d.pid)
    with d.client() as c:
        c.send_raw(b"RYD1" + struct.pack(">I", 0xFFFFFFFF))
        assert c.wait_closed(), "connection not closed after a 4 GiB length"
    with d.client() as c:
        c.send_raw(b"RYD1" + struct.pack(">I", 16 * 1024 * 1024 + 1) + b"{" * 1000)
        assert c.wait_closed(), "connection not closed after a length over 16 MiB"
    assert rss_kb(d.pid) < before + 64 * 1024


def test_request_before_hello_is_handshake_required(busy):
    d, _ = busy
    with d.client(hello=False) as c:
        assert error_of(c, "daemon.status")["code"] == "HandshakeRequired"
        assert error_of(c, "run.list")["code"] == "HandshakeRequired"


def test_hello_with_another_version_is_version_mismatch(busy):
    d, _ = busy
    with d.client(hello=False) as c:
        err = error_of(c, "hello", {"proto": 99, "client": "future/9"})
        assert err["code"] == "VersionMismatch"
        assert "99" in err["message"] and "1" in err["message"].replace("99", "")


def test_unknown_op(busy):
    d, _ = busy
    with d.client() as c:
        assert error_of(c, "run.explode", {"run": 1})["code"] == "UnknownOp"
        assert c.call("daemon.status")


@pytest.mark.parametrize("op,args,name", [
    ("run.submit", {"command": "a.py", "source": "@SRC"}, "command"),
    ("run.submit", {"command": [], "source": "@SRC"}, "command"),
    ("run.submit", {"command": ["a.py", 3], "source": "@SRC"}, "command"),
    ("run.submit", {"command": ["a.py"], "source": 17}, "source"),
    ("run.submit", {"command": ["a.py"], "source": "relative/dir"}, "source"),
    ("run.submit", {"command": ["a.py"], "source": "@SRC", "priority": "high"}, "priority"),
    ("run.submit", {"command": ["a.py"], "source": "@SRC", "priority": 5000}, "priority"),
    ("run.submit", {"command": ["a.py"], "source": "@SRC", "timeout": -1}, "timeout"),
    ("run.submit", {"command": ["a.py"], "source": "@SRC", "env": {"A": 1}}, "env"),
    ("run.submit", {"command": ["a.py"], "source": "@SRC", "experiment": "bad name!"},
     "experiment"),
    ("run.list", {"limit": "ten"}, "limit"),
    ("run.list", {"limit": 0}, "limit"),
    ("run.list", {"status": "Sleeping"}, "status"),
    ("run.show", {"run": [1]}, "run"),
    ("run.show", {}, "run"),
    ("run.logs", {"run": 1, "after_seq": "x"}, "after_seq"),
    ("run.logs", {"run": 1, "stream": "stdin"}, "stream"),
])
def test_wrong_argument_is_invalid_argument_naming_it(busy, op, args, name):
    d, src = busy
    args = {k: (src if v == "@SRC" else v) for k, v in args.items()}
    with d.client() as c:
        err = error_of(c, op, args)
        assert err["code"] == "InvalidArgument", err
        assert name in err["message"], err


@pytest.mark.parametrize("op", ["run.show", "run.logs", "run.cancel", "run.outputs", "run.watch"])
def test_unknown_run_is_not_found(busy, op):
    d, _ = busy
    with d.client() as c:
        for ref in ("nope_1700000000_deadbeef", 999, "999", "#999"):
            assert error_of(c, op, {"run": ref})["code"] == "NotFound", ref


@pytest.mark.parametrize("verb", ["show", "logs", "cancel", "outputs", "wait"])
def test_unknown_run_from_the_cli_exits_2(busy, verb):
    d, _ = busy
    res = d.cli(verb, "999", check=2)
    assert res.stderr.strip(), "no error message"


def test_missing_source_and_program_not_found(busy, tmp_path):
    d, _ = busy
    src = tmp_path / "exists"
    src.mkdir()
    (src / "real.py").write_text("print(1)\n")
    (src / "plain.txt").write_text("x")
    cases = [
        {"command": ["real.py"], "source": str(tmp_path / "missing")},
        {"command": ["real.py"], "source": str(src / "plain.txt")},
        {"command": ["missing.py"], "source": str(src)},
        {"command": ["no-such-program-anywhere-xyz"], "source": str(src)},
        {"command": ["sub/missing.sh"], "source": str(src)},
        {"command": ["/nonexistent/bin/tool"], "source": str(src)},
    ]
    with d.client() as c:
        for args in cases:
            args["python"] = PY
            err = error_of(c, "run.submit", args)
            assert err["code"] == "InvalidArgument", (args, err)
            assert err["message"]
    res = d.cli("submit", "--source", tmp_path / "missing", "--python", PY, "--", "real.py",
                check=False)
    assert res.rc in (1, 2) and res.stderr.strip()
    res = d.cli("submit", "--source", src, "--python", PY, "--", "missing.py", check=2)


def test_client_dying_mid_frame(busy):
    d, _ = busy
    c = d.client()
    c.send_raw(b"RYD1" + struct.pack(">I", 100) + b'{"id": 5, "op"')
    c.abort()
    c = d.client(hello=False)
    c.send_raw(b"RY")
    c.close()
    with d.client() as c:
        assert c.call("daemon.status")["pid"] == d.pid
