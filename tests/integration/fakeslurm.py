"""A small stand-in for slurmrestd (API v0.0.38) on a Unix socket, for tests that
need a server runyardd can talk to without a cluster: bad answers, API versions
runyard does not speak, refused credentials, and job states a real one-node
cluster cannot easily produce (NODE_FAIL, BOOT_FAIL, TIMEOUT while pending).
Jobs never run: their states change only when a test says so."""

import json
import os
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse


class FakeSlurm:
    def __init__(self, path, versions=("v0.0.38",), status=None):
        self.path = path
        self.versions = versions
        self.status = status  # answer every request with this HTTP status
        self.submit_delay = 0  # seconds a submit's answer is held back
        self.jobs = {}
        self.requests = []  # (method, path, headers)
        self.last_update = 0
        self.lock = threading.Lock()
        self.server = None
        self.thread = None

    # -- test side ----------------------------------------------------------------

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def address_string(self):
                return "unix"

            def do_GET(self):
                fake.handle(self, "GET")

            def do_POST(self):
                fake.handle(self, "POST")

            def do_DELETE(self):
                fake.handle(self, "DELETE")

        if os.path.exists(self.path):
            os.unlink(self.path)
        self.server = socketserver.ThreadingUnixStreamServer(self.path, Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if os.path.exists(self.path):
            os.unlink(self.path)

    def set_state(self, job_id, state, reason="None"):
        with self.lock:
            self.jobs[job_id]["job_state"] = state
            self.jobs[job_id]["state_reason"] = reason
            self.last_update = time.time()

    def job_of(self, name):
        with self.lock:
            for j in self.jobs.values():
                if j["name"] == name:
                    return j
        return None

    def count(self, method, prefix):
        with self.lock:
            return sum(1 for m, p, _ in self.requests if m == method and p.startswith(prefix))

    # -- server side --------------------------------------------------------------

    def reply(self, h, status, doc=None):
        body = b"" if doc is None else json.dumps(doc).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def handle(self, h, method):
        url = urlparse(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self.lock:
            self.requests.append((method, url.path, dict(h.headers)))
        if self.status:
            return self.reply(h, self.status, {"errors": [{"error": "refused by the fake"}]})
        if url.path in ("/openapi/v3", "/openapi"):
            paths = {}
            for v in self.versions:
                for p in ("job/submit", "jobs", "job/{job_id}", "ping"):
                    paths["/slurm/%s/%s" % (v, p)] = {}
            return self.reply(h, 200, {"paths": paths})
        if "v0.0.38" not in self.versions or not url.path.startswith("/slurm/v0.0.38/"):
            return self.reply(h, 404, {"errors": [{"error": "no such path"}]})
        what = url.path[len("/slurm/v0.0.38/"):]
        if what == "ping" and method == "GET":
            return self.reply(h, 200, {"errors": [], "pings": [{"ping": "UP"}]})
        if what == "job/submit" and method == "POST":
            doc = json.loads(body)
            with self.lock:
                job_id = len(self.jobs) + 1
                self.jobs[job_id] = {
                    "job_id": job_id, "name": doc["job"]["name"], "job_state": "PENDING",
                    "state_reason": "None", "exit_code": 0,
                    "time_limit": doc["job"].get("time_limit", 0), "submitted": doc,
                }
                self.last_update = time.time()
            time.sleep(self.submit_delay)
            try:
                return self.reply(h, 200, {"errors": [], "job_id": job_id, "step_id": "BATCH"})
            except OSError:
                return None  # the client went away meanwhile
        if what == "jobs" and method == "GET":
            since = parse_qs(url.query).get("update_time")
            with self.lock:
                if since and int(since[0]) >= int(self.last_update):
                    h.send_response(304)
                    h.send_header("Content-Length", "0")
                    h.end_headers()
                    return None
                jobs = [{k: v for k, v in j.items() if k != "submitted"}
                        for j in self.jobs.values()]
            return self.reply(h, 200, {"errors": [], "jobs": jobs})
        if what.startswith("job/") and method == "DELETE":
            job_id = int(what[4:])
            if job_id not in self.jobs:
                return self.reply(h, 500, {"errors": [{"error": "Invalid job id specified"}]})
            self.set_state(job_id, "CANCELLED")
            return self.reply(h, 200, {"errors": []})
        return self.reply(h, 404, {"errors": [{"error": "no such path"}]})
