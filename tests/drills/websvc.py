#!/usr/bin/env python3
"""websvc.py: the HTTP service the drills put under stress.

A threaded HTTP server that logs every request in nginx's combined format
with $request_time appended (what sitrep's `logs:` tails), with endpoints
whose cost is real, not simulated:

  /work?mb=N     hashes N MiB (sha256 releases the GIL: true CPU work, so
                 CPU starvation slows it as it would a C service)
  /sleep?s=X     waits X seconds (an I/O-bound call)
  /orders?customer=N  a SQLite query looking up each of a customer's orders
                 in a large table (drill 7: fast with its index, a scan per
                 order without it)
  /health        200

--max-inflight N answers 503 at once when N requests are in progress (a
concurrency limit, as a worker pool or nginx's limit_conn gives).
--timeout S answers 504 once a request has taken S seconds, as a gateway's
read timeout does (nginx's proxy_read_timeout): the answer and its log line
come at S, while the work goes on in the background, as a real backend's
would, holding its database connection until it is done.
--db-pool N  at most N database queries at once (a connection pool, 4 by
default); the rest wait for a connection, and that wait counts.

Usage: websvc.py --port P --log FILE [--max-inflight N] [--timeout S] [--db FILE]
                 [--db-pool N]
"""
import argparse
import hashlib
import http.server
import os
import sqlite3
import threading
import time
import urllib.parse

a = None
inflight = 0
lock = threading.Lock()
logf = None
local = threading.local()
pool = None  # threading.Semaphore(--db-pool), set in main


def db():
    if not hasattr(local, "db"):
        local.db = sqlite3.connect(a.db, timeout=30, check_same_thread=False)
        # No transient per-statement index: a server database does not build
        # one either, so a dropped index costs a scan per lookup.
        local.db.execute("PRAGMA automatic_index = OFF")
    return local.db


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        global inflight
        t0 = time.time()
        with lock:
            busy = a.max_inflight and inflight >= a.max_inflight
            if not busy:
                inflight += 1
        if busy:
            return self.answer(503, b"busy\n", t0)
        out = []
        worker = threading.Thread(target=self.work, args=(out,), daemon=True)
        worker.start()
        worker.join(a.timeout or None)
        if worker.is_alive():
            status, body = 504, b"timeout\n"  # the gateway gives up; the work goes on
        else:
            status, body = out[0]
        self.answer(status, body, t0)

    def work(self, out):
        global inflight
        try:
            out.append(self.route())
        except Exception as e:  # the service's own failure: a 500, as in life
            out.append((500, ("error: %s\n" % e).encode()))
        finally:
            with lock:
                inflight -= 1

    def route(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path == "/health":
            return 200, b"ok\n"
        if u.path == "/work":
            data = b"x" * (int(float(q.get("mb", "1")) * (1 << 20)))
            return 200, hashlib.sha256(data).hexdigest().encode() + b"\n"
        if u.path == "/sleep":
            time.sleep(float(q.get("s", "0.01")))
            return 200, b"slept\n"
        if u.path == "/orders":
            # A customer's orders that have a returned item: one items lookup per order.
            with pool:
                n = db().execute("SELECT count(*) FROM orders o WHERE o.customer = ? AND EXISTS "
                                 "(SELECT 1 FROM items i WHERE i.ref = o.ref AND i.qty < 0)",
                                 (int(q.get("customer", "1")),)).fetchone()[0]
            return 200, ("%d\n" % n).encode()
        if u.path.startswith("/missing"):
            return 404, b"not found\n"
        return 404, b"no such endpoint\n"

    def answer(self, status, body, t0):
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass
        dt = time.time() - t0
        line = '%s - - [%s] "%s %s HTTP/1.1" %d %d "-" "%s" %.3f\n' % (
            self.client_address[0], time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t0)),
            self.command, self.path, status, len(body), self.headers.get("User-Agent", "-"), dt)
        with lock:
            logf.write(line)
            logf.flush()

    def log_message(self, *args):
        pass


def main():
    global a, logf, pool
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--max-inflight", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=0)
    ap.add_argument("--db")
    ap.add_argument("--db-pool", type=int, default=4)
    a = ap.parse_args()
    pool = threading.Semaphore(a.db_pool)
    logf = open(a.log, "a")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), H)
    # The listen backlog stays socketserver's default of 5 (it is fixed at
    # construction): a small app server whose accept queue overflows when a
    # flood outruns its one accept loop, as the flood drill needs.
    srv.daemon_threads = True
    print("listening on %d (pid %d)" % (a.port, os.getpid()), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
