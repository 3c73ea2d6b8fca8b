"""A raw client for runyard's wire protocol (docs/protocol.md), for tests.

Frames are the magic b"RYD1", a big-endian uint32 payload length, then one
JSON object. This client does nothing clever on purpose: tests use it to send
exactly the bytes they mean, well-formed or not.
"""

import json
import socket
import struct
import time

MAGIC = b"RYD1"
PROTO = 1


class Closed(Exception):
    """The daemon closed the connection."""


class ProtocolError(Exception):
    """An error reply: {"ok": false, "error": {"code", "message"}}."""

    def __init__(self, code, message, reply):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message
        self.reply = reply


def frame(payload):
    """Encode bytes, str or a JSON-able object as one frame."""
    if not isinstance(payload, (bytes, bytearray)):
        if not isinstance(payload, str):
            payload = json.dumps(payload)
        payload = payload.encode()
    return MAGIC + struct.pack(">I", len(payload)) + payload


class Client:
    def __init__(self, path, timeout=60.0, hello=False):
        self.path = str(path)
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(self.path)
        self.buf = b""
        self.next_id = 1
        self.events = []  # events read while waiting for a reply
        if hello:
            self.hello()

    def close(self):
        self.sock.close()

    def abort(self):
        """Close with a reset instead of an orderly shutdown."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- bytes ---------------------------------------------------------------

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(frame(obj))

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the daemon within %.0fs" % self.timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("connection closed by the daemon")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def recv_frame(self, timeout=None):
        """Read one frame and return its decoded JSON (raises Closed at EOF)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        header = self._read_exact(8, deadline)
        if header[:4] != MAGIC:
            raise AssertionError("frame with wrong magic from the daemon: %r" % header[:4])
        (length,) = struct.unpack(">I", header[4:])
        return json.loads(self._read_exact(length, deadline))

    def wait_closed(self, timeout=None):
        """True when the daemon closes the connection without sending anything."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return self.buf == b""
            except socket.timeout:
                return False
            if not chunk:
                return self.buf == b""
            self.buf += chunk

    # -- messages ------------------------------------------------------------

    def read_reply(self, timeout=None):
        """Next frame that is not an event; events read meanwhile are queued."""
        while True:
            msg = self.recv_frame(timeout)
            if "event" in msg:
                self.events.append(msg)
                continue
            return msg

    def request(self, op, args=None, id=None):
        """Send a request and return the whole reply object."""
        if id is None:
            id = self.next_id
            self.next_id += 1
        req = {"id": id, "op": op}
        if args is not None:
            req["args"] = args
        self.send(req)
        reply = self.read_reply()
        assert reply.get("id") == id, "reply %r does not answer request %d" % (reply, id)
        return reply

    def call(self, op, args=None):
        """Send a request; return its result or raise ProtocolError."""
        reply = self.request(op, args)
        if not reply.get("ok"):
            err = reply.get("error") or {}
            raise ProtocolError(err.get("code"), err.get("message"), reply)
        return reply.get("result")

    def hello(self, proto=PROTO):
        return self.call("hello", {"proto": proto, "client": "runyard-tests/1"})

    def next_event(self, timeout=None):
        if self.events:
            return self.events.pop(0)
        msg = self.recv_frame(timeout)
        assert "event" in msg, "expected an event, got %r" % msg
        return msg
