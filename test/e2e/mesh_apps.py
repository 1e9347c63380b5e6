#!/usr/bin/python3
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
"""Plain TCP apps for the mesh end-to-end tests. They run inside pods and know nothing of Ferry.

  echo-server   --port P            echo every connection until EOF, then half-close
  sha-server    --port P --bytes N  read to EOF, answer "<sha256 of what arrived>\n" and N bytes
  sha-client    --host H --port P --bytes N
                                    send N bytes, half-close, check the server's sha line, read
                                    the N bytes back; prints "OK <up sha> <down sha>"
  many          --host H --port P --count C --concurrent
                                    C echo round trips, all connections open at once or in turn;
                                    prints "OK <C>"
  send          --host H --port P --text T   send T, half-close, expect it echoed
  http-app      --port P --name NAME --behavior ok|fail50|hang|status:N|sleep:MS|echo|
                                    echo-headers
                                    HTTP/1.1 keep-alive backend: GET/POST answer 200 "NAME"
                                    (fail50: every other request 503; hang: never answers;
                                    status:N always N; sleep:MS answers after MS ms; echo:
                                    answers JSON {name, path, host, headers} of the request
                                    with X-Header-Set/-Add/-Remove: from-NAME; echo-headers:
                                    answers JSON {lower-case name: value} of its fields); GET
                                    /__stats (not counted) answers {"GET": n, "POST": m,
                                    "max_active": k, "connections": c, "hosts": {Host: n}}:
                                    what it received, most at once, over how many
                                    connections, by Host; every answer carries X-Seen-Host:
                                    the Host it received
  http-load     --host H --port P --count C --connections K [--method M] [--pace R]
                                    C requests over K keep-alive connections in parallel;
                                    prints JSON {"status": {...}, "body": {...}, "ms": [...]}
  paced-load    --host H --port P --count C --rate R [--kind http|tcp]
                                    C attempts offered at R a second (attempt i at start + i/R),
                                    http: GETs on one keep-alive connection (a new one after a
                                    close), tcp: a new connection each, one line echoed (against
                                    echo-server); prints JSON {"status": {"200": n, "429": m, ...}
                                    (tcp: "allow" / "refused"), "retry_after": 429s carrying
                                    Retry-After, "span_min_s", "span_max_s"}: the time from the
                                    first answer to the last send, and from the first send to the
                                    last answer (what the far end's clock can have seen)
  http-server   --port P            HTTP/1.1: GET answers "path=<path>" and X-Seen-Host; POST
                                    answers "path=<path> traceparent=<received or -> bytes=<body
                                    size>"; CONNECT answers 200, then "tunnel=<target>
                                    host=<Host>" as tunnel bytes, and closes
  http-raw      --host H --port P --text T
                                    send T as is (\\r\\n: CR LF), print all received until close
  http-get      --host H --port P --text "P1 P2"
  http-post     --host H --port P --text "P1 P2" --bytes N [--traceparent T]
                                    requests in turn on one keep-alive connection; one line each:
                                    "<status> <local port> <body>"
  first-server  --port P --sizes S1,S2,...
                                    server speaks first: connection k (in accept order) gets
                                    payload(S[k % len]) at once, then expects it echoed back and
                                    answers "OK\n" or "BAD\n"; closes at EOF
  http-echo     --port P            HTTP/1.1 keep-alive: answers a POST with its body
  probe         --text JSON         JSON list of probes {"id", "host", "port", "kind": tcp|http,
                                    "method", "path", "authority", "headers": {...}}, all at once,
                                    each on a new connection: tcp sends a line and expects it
                                    echoed (echo-server); http sends one request with
                                    Connection: close (http-server). Prints a JSON object id ->
                                    "allow" (echoed, or 200), "deny" (reset, closed without an
                                    answer, or 403) or "other:<what>"
  matrix        --host H --port P --kind echo|first|http --conn new|pooled --sizes S1,S2,...
                [--text LABEL]      one row per size, in turn, each on a new connection:
                                    echo (against echo-server: send payload(S), read it back),
                                    first (against first-server), http (POST payload(S) with
                                    Content-Length in the same write as the head, against
                                    http-echo). conn=new keeps every row's connection open to the
                                    end (with --max-streams-per-connection=1 each row needs a new
                                    HBONE connection); conn=pooled half-closes and waits for the
                                    far end to close before the next row. Prints one line per
                                    row, "ROW <label> size=<S> OK <ms>" or "ROW ... FAIL <why>",
                                    then "DONE rows=<n> failed=<m>"; exit 0 either way
  flood         --host H --port P --count C --text RELEASE_FILE
                                    opens C connections at once (non-blocking; an agent out of
                                    descriptors leaves them queued or resets them), prints
                                    "OPEN <connected> FAILED <not>", holds them until
                                    RELEASE_FILE exists, closes them all and prints "CLOSED"
  slow-headers  --host H --port P --count C --interval S --seconds T
                                    slowloris: C connections, each sends one byte of a request
                                    head every S seconds for T seconds (or until all closed);
                                    prints "OPENED <C> CLOSED <m> (<k> before their first
                                    byte)": m connections were ended by the far side
Exit status 0 on success; on failure a line starting with FAIL says why.
"""
import argparse
import errno
import hashlib
import os
import random
import resource
import select
import socket
import sys
import threading
import time

CHUNK = 1 << 16


def pattern(n):
    """n deterministic bytes, generated in chunks (both ends can produce and hash them)."""
    block = hashlib.sha256(b"ferry").digest() * (CHUNK // 32)
    while n > 0:
        take = min(n, len(block))
        yield block[:take]
        n -= take


def recv_all(conn):
    h = hashlib.sha256()
    total = 0
    while True:
        data = conn.recv(CHUNK)
        if not data:
            return h.hexdigest(), total
        h.update(data)
        total += len(data)


def serve(port, handler):
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    srv.bind(("::", port))
    srv.listen(4096)
    print("listening on %d" % port, flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def echo(conn):
    try:
        while True:
            data = conn.recv(CHUNK)
            if not data:
                break
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()


def sha_server(nbytes):
    def handle(conn):
        try:
            digest, _ = recv_all(conn)
            conn.sendall((digest + "\n").encode())
            for block in pattern(nbytes):
                conn.sendall(block)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            conn.close()
    return handle


def fail(why):
    print("FAIL: " + why, flush=True)
    sys.exit(1)


def eventually(condition, timeout, what):
    """The bounded condition wait of test/eventually.h: polls `condition` (1 ms doubling to
    50 ms between polls) until it holds or `timeout` seconds have passed, then fails saying
    what was awaited."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while not condition():
        now = time.monotonic()
        if now >= deadline:
            fail("gave up after %g s waiting for %s" % (timeout, what))
        time.sleep(min(pause, deadline - now))
        pause = min(pause * 2, 0.05)


def connect(host, port, timeout=60):
    return socket.create_connection((host, port), timeout=timeout)


def sha_client(host, port, nbytes):
    want = hashlib.sha256()
    for block in pattern(nbytes):
        want.update(block)
    conn = connect(host, port)
    for block in pattern(nbytes):
        conn.sendall(block)
    conn.shutdown(socket.SHUT_WR)
    line = b""
    while not line.endswith(b"\n"):
        c = conn.recv(1)
        if not c:
            fail("connection closed before the server's sha line")
        line += c
    if line.decode().strip() != want.hexdigest():
        fail("server received different bytes: %s != %s" % (line.strip(), want.hexdigest()))
    digest, total = recv_all(conn)
    conn.close()
    if total != nbytes or digest != want.hexdigest():
        fail("received %d bytes with sha %s, want %d bytes with %s" %
             (total, digest, nbytes, want.hexdigest()))
    print("OK %s %s" % (want.hexdigest(), digest), flush=True)


def round_trip(conn, payload):
    conn.sendall(payload)
    conn.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        data = conn.recv(CHUNK)
        if not data:
            break
        got += data
    conn.close()
    return got


def many(host, port, count, concurrent):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if not concurrent:
        for i in range(count):
            payload = b"ping %d" % i
            if round_trip(connect(host, port), payload) != payload:
                fail("round trip %d came back different" % i)
        print("OK %d" % count, flush=True)
        return
    conns = [connect(host, port) for _ in range(count)]  # all open at once
    for i, c in enumerate(conns):
        c.sendall(b"ping %d" % i)
    for i, c in enumerate(conns):
        c.shutdown(socket.SHUT_WR)
    for i, c in enumerate(conns):
        got = b""
        while True:
            data = c.recv(CHUNK)
            if not data:
                break
            got += data
        c.close()
        if got != b"ping %d" % i:
            fail("connection %d came back %r" % (i, got))
    print("OK %d" % count, flush=True)


def recv_exact(conn, n):
    got = b""
    while len(got) < n:
        data = conn.recv(n - len(got))
        if not data:
            fail("connection closed after %d of %d bytes" % (len(got), n))
        got += data
    return got


def hold(host, port, release_file):
    """One connection kept open: a round trip, then another once release_file exists."""
    conn = connect(host, port, timeout=10)
    conn.sendall(b"first")
    if recv_exact(conn, 5) != b"first":
        fail("first echo differs")
    print("HELD", flush=True)
    eventually(lambda: os.path.exists(release_file), 120, "the release file")
    conn.settimeout(10)
    conn.sendall(b"second")
    if recv_exact(conn, 6) != b"second":
        fail("second echo differs")
    conn.close()
    print("OK", flush=True)


def reply(handler, status, body):
    """Answers the request `handler` (an http.server handler) is serving with `body` (bytes),
    and says in X-Seen-Host which Host the request carried."""
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("X-Seen-Host", handler.headers.get("Host", "-"))
    handler.end_headers()
    handler.wfile.write(body)


def serve_http(port, handler):
    """Serves `handler` (an http.server handler class) on [::]:port, IPv4 too, a thread each."""
    import http.server

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6
        daemon_threads = True
        request_queue_size = 1024

        def server_bind(self):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    srv = Server(("::", port), handler)
    print("listening on %d" % port, flush=True)
    srv.serve_forever()


def http_server(port):
    """HTTP/1.1 with keep-alive; answers every GET with 200 and the path it received."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            reply(self, 200, ("path=%s" % self.path).encode())

        def do_CONNECT(self):
            # A CONNECT that reached the app: the tunnel's first bytes say what it was asked.
            self.send_response(200)
            self.end_headers()
            self.wfile.write(("tunnel=%s host=%s" %
                              (self.path, self.headers.get("Host", "-"))).encode())
            self.close_connection = True

        def do_POST(self):
            got = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            reply(self, 200, ("path=%s traceparent=%s bytes=%d" %
                              (self.path, self.headers.get("traceparent", "-"), len(got))).encode())

        do_PUT = do_POST
        do_DELETE = do_GET

        def log_message(self, *args):
            pass

    serve_http(port, Handler)


def http_get(host, port, paths):
    """GETs each path in turn on one keep-alive connection; prints one line per request:
    '<status> <local port of the connection> <body>'."""
    import http.client
    conn = http.client.HTTPConnection(host, port, timeout=10)
    for p in paths:
        conn.request("GET", p)
        r = conn.getresponse()
        body = r.read().decode(errors="replace")
        print("%d %d %s" % (r.status, conn.sock.getsockname()[1], body), flush=True)


def http_raw(host, port, text):
    """Sends `text` as it is (the two characters \\r\\n stand for CR LF) on a new connection
    and prints every byte received until the peer closes (10 s at most)."""
    c = connect(host, port, timeout=10)
    c.sendall(text.replace("\\r\\n", "\r\n").encode())
    out = b""
    try:
        while True:
            data = c.recv(CHUNK)
            if not data:
                break
            out += data
    except (socket.timeout, ConnectionResetError):
        pass
    sys.stdout.write(out.decode(errors="replace"))
    sys.stdout.flush()


def http_app(port, name, behavior):
    import http.server
    import json
    lock = threading.Lock()
    counts = {"GET": 0, "POST": 0}
    active = [0, 0]  # in progress now, most at once
    connections = [0]  # that carried at least one counted request
    hosts = {}  # counted requests by the Host they carried

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # head and body are separate writes

        def answer(self, status, body):
            reply(self, status, body.encode())

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if self.path == "/__stats":
                with lock:
                    self.answer(200, json.dumps(dict(counts, max_active=active[1],
                                                     connections=connections[0],
                                                     hosts=hosts)))
                return
            with lock:
                if not getattr(self, "counted", False):  # one handler per connection
                    self.counted = True
                    connections[0] += 1
                counts[self.command] = counts.get(self.command, 0) + 1
                host = self.headers.get("Host", "-")
                hosts[host] = hosts.get(host, 0) + 1
                n = sum(counts.values())
                active[0] += 1
                active[1] = max(active[1], active[0])
            try:
                self.respond(n)
            finally:
                with lock:
                    active[0] -= 1

        def respond(self, n):
            if behavior == "hang":
                time.sleep(3600)  # the behaviour under test (a backend that never answers)
            elif behavior == "fail50" and n % 2 == 1:
                self.answer(503, "fail " + name)
            elif behavior.startswith("status:"):
                self.answer(int(behavior[7:]), "status " + name)
            elif behavior == "echo-headers":
                self.answer(200, json.dumps({k.lower(): v for k, v in self.headers.items()}))
            elif behavior.startswith("sleep:"):
                time.sleep(int(behavior[6:]) / 1000)  # the latency under test
                self.answer(200, name)
            elif behavior == "echo":
                # The request as received (path with query, Host, header fields by lower-case
                # name, repeated ones joined with ","), and three response fields a route's
                # ResponseHeaderModifier may set, append to or remove.
                seen = {k.lower(): ",".join(self.headers.get_all(k)) for k in self.headers.keys()}
                body = json.dumps({"name": name, "path": self.path,
                                   "host": self.headers.get("Host", "-"),
                                   "headers": seen}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Header-Set", "from-" + name)
                self.send_header("X-Header-Add", "from-" + name)
                self.send_header("X-Header-Remove", "from-" + name)
                self.end_headers()
                self.wfile.write(body)
            else:
                self.answer(200, name)

        def do_GET(self):
            self.handle_any()

        def do_POST(self):
            self.handle_any()

        def log_message(self, *args):
            pass

    serve_http(port, Handler)


def http_load(host, port, count, connections, method, pace=0.0):
    """`pace` > 0: requests start at that many a second in all (0: as fast as answered)."""
    import http.client
    import json
    lock = threading.Lock()
    result = {"status": {}, "body": {}, "ms": [], "errors": []}
    todo = [count]
    began = time.monotonic()

    def worker():
        conn = http.client.HTTPConnection(host, port, timeout=30)
        while True:
            with lock:
                if todo[0] == 0:
                    break
                todo[0] -= 1
                ticket = count - todo[0] - 1
            if pace > 0:
                due = began + ticket / pace
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())  # pacing the offered rate
            start = time.monotonic()
            try:
                conn.request(method, "/", body=b"x" * 16 if method == "POST" else None)
                r = conn.getresponse()
                body = r.read().decode(errors="replace")
                status = str(r.status)
                if r.getheader("connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                status, body = "error", ""
                with lock:
                    result["errors"].append("%s: %s" % (type(e).__name__, e))
            ms = (time.monotonic() - start) * 1000
            with lock:
                result["status"][status] = result["status"].get(status, 0) + 1
                result["body"][body] = result["body"].get(body, 0) + 1
                if len(result["ms"]) < 100:
                    result["ms"].append(round(ms, 1))
        conn.close()

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result["elapsed_s"] = round(time.monotonic() - start, 2)
    result["errors"] = result["errors"][:5]
    print(json.dumps(result), flush=True)
def paced_load(host, port, count, rate, kind):
    import http.client
    import json
    result = {"status": {}, "retry_after": 0, "retry_after_values": [], "errors": []}
    conn = None
    first_send = first_answer = last_send = last_answer = None
    start = time.monotonic()
    for i in range(count):
        due = start + i / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)  # pacing the offered rate, not synchronization
        last_send = time.monotonic()
        if first_send is None:
            first_send = last_send
        if kind == "tcp":
            try:
                with socket.create_connection((host, port), timeout=10) as s:
                    s.sendall(b"ping\n")
                    got = b""
                    while not got.endswith(b"\n"):
                        chunk = s.recv(64)
                        if not chunk:
                            break
                        got += chunk
                    status = "allow" if got == b"ping\n" else "refused"
            except OSError:
                status = "refused"
        else:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=30)
                conn.request("GET", "/")
                r = conn.getresponse()
                r.read()
                status = str(r.status)
                if status == "429" and r.getheader("retry-after") is not None:
                    result["retry_after"] += 1
                    if len(result["retry_after_values"]) < 5:
                        result["retry_after_values"].append(r.getheader("retry-after"))
                if r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                if conn is not None:
                    conn.close()
                conn = None
                status = "error"
                if len(result["errors"]) < 5:
                    result["errors"].append("%s: %s" % (type(e).__name__, e))
        last_answer = time.monotonic()
        if first_answer is None:
            first_answer = last_answer
        result["status"][status] = result["status"].get(status, 0) + 1
    if conn is not None:
        conn.close()
    result["span_min_s"] = max(0.0, last_send - first_answer)
    result["span_max_s"] = last_answer - first_send
    print(json.dumps(result), flush=True)


def http_post(host, port, paths, nbytes, traceparent):
    """POSTs `nbytes` to each path in turn on one keep-alive connection, with `traceparent` when
    given; prints lines as http_get does."""
    import http.client
    conn = http.client.HTTPConnection(host, port, timeout=10)
    headers = {"Content-Type": "application/octet-stream"}
    if traceparent:
        headers["traceparent"] = traceparent
    for p in paths:
        conn.request("POST", p, body=b"p" * nbytes, headers=headers)
        r = conn.getresponse()
        body = r.read().decode(errors="replace")
        print("%d %d %s" % (r.status, conn.sock.getsockname()[1], body), flush=True)


def hold_until_closed(host, port, seconds):
    """Opens one connection, proves it with an echo, then waits for the far side to end it:
    prints OPEN, then CLOSED (EOF or reset) or STILL OPEN after `seconds`."""
    c = connect(host, port, timeout=10)
    c.sendall(b"ping")
    if c.recv(4) != b"ping":
        fail("no echo")
    print("OPEN", flush=True)
    c.settimeout(seconds)
    try:
        data = c.recv(CHUNK)
        print("CLOSED" if not data else "UNEXPECTED %r" % data, flush=True)
    except socket.timeout:
        print("STILL OPEN", flush=True)
    except ConnectionResetError:
        print("CLOSED", flush=True)


def open_many(host, port, count, timeout=10):
    """Starts `count` non-blocking connects at once; returns (connected, failed) after each
    finished or `timeout` passed (unfinished ones count as failed and are closed)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    pending = {}
    for _ in range(count):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            continue
        pending[s.fileno()] = s
    connected, deadline = [], time.time() + timeout
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    while pending and time.time() < deadline:
        for fd, _ in poller.poll(200):
            s = pending.pop(fd)
            poller.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected.append(s)
            else:
                s.close()
    for s in pending.values():
        s.close()
    return connected, count - len(connected)


def flood(host, port, count, release_file):
    conns, failed = open_many(host, port, count)
    print("OPEN %d FAILED %d" % (len(conns), failed), flush=True)
    eventually(lambda: os.path.exists(release_file), 120, "the release file")
    for c in conns:
        c.close()
    print("CLOSED", flush=True)


def slow_headers(host, port, count, interval, seconds):
    head = b"GET /slow HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"a" * 4096
    conns, early = open_many(host, port, count)
    opened, closed, sent = count, early, 0  # `early`: ended before their first byte
    poller = select.poll()
    live = {c.fileno(): c for c in conns}
    for fd in live:
        poller.register(fd, select.POLLIN)
    deadline = time.time() + seconds
    next_byte = time.time()
    while live and time.time() < deadline:
        if time.time() >= next_byte:
            for fd, c in list(live.items()):
                try:
                    c.send(head[sent % len(head):sent % len(head) + 1])
                except OSError:
                    poller.unregister(fd)
                    del live[fd]
                    c.close()
                    closed += 1
            sent += 1
            next_byte += interval
        # Anything readable is the far side ending it (nothing is answered before a head).
        for fd, _ in poller.poll(100):
            if fd in live:
                poller.unregister(fd)
                live.pop(fd).close()
                closed += 1
    print("OPENED %d CLOSED %d (%d before their first byte)" % (opened, closed, early),
          flush=True)
    for c in live.values():
        c.close()


def payload(size):
    """`size` bytes that never repeat at a short period, the same at both ends for one size."""
    return random.Random(size).randbytes(size)


def recv_exact_buf(conn, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = conn.recv_into(view[got:], min(n - got, 1 << 20))
        if k == 0:
            raise ConnectionError("closed after %d of %d bytes" % (got, n))
        got += k
    return bytes(buf)


def first_server(port, sizes):
    counter = [0]
    lock = threading.Lock()

    def handle(conn):
        with lock:
            size = sizes[counter[0] % len(sizes)]
            counter[0] += 1
        try:
            want = payload(size)
            conn.sendall(want)
            back = recv_exact_buf(conn, size)
            conn.sendall(b"OK\n" if back == want else b"BAD\n")
            while conn.recv(CHUNK):
                pass
        except OSError:
            pass
        finally:
            conn.close()
    serve(port, handle)


def http_echo(port):
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            reply(self, 200, self.rfile.read(int(self.headers.get("Content-Length", "0"))))

        def log_message(self, *args):
            pass

    serve_http(port, Handler)


def http_response(conn):
    """(status, body) of one HTTP/1.1 response with Content-Length."""
    head = b""
    while b"\r\n\r\n" not in head:
        data = conn.recv(4096)
        if not data:
            raise ConnectionError("closed in the response head")
        head += data
    head, rest = head.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if len(rest) > length:
        raise ValueError("%d bytes beyond the body" % (len(rest) - length))
    return status, rest + recv_exact_buf(conn, length - len(rest))


def send_all(conn, data):
    """sendall() that returns what went wrong instead of raising (for a writer thread)."""
    try:
        conn.sendall(data)
        return ""
    except OSError as e:
        return "write: %s: %s" % (type(e).__name__, e)


def matrix_row(conn, kind, size):
    """One exchange; returns "" or what went wrong."""
    want = payload(size)
    if kind == "echo":
        # Written by a second thread: the echo comes back while we write, and a big payload
        # would fill both directions' buffers if we only read once done writing.
        sent = []
        writer = threading.Thread(target=lambda: sent.append(send_all(conn, want)))
        writer.start()
        try:
            got = recv_exact_buf(conn, size)
        finally:
            writer.join()
        if sent[0]:
            return sent[0]
        return "" if got == want else "echo differs"
    if kind == "first":
        got = recv_exact_buf(conn, size)
        conn.sendall(got)  # echoed even when wrong, so the server's verdict stays in step
        verdict = recv_exact_buf(conn, 3)
        if got != want:
            return "server's first %d bytes arrived different" % size
        return "" if verdict == b"OK\n" else "server got back %r" % verdict
    head = ("POST /echo HTTP/1.1\r\nHost: matrix\r\nContent-Type: application/octet-stream\r\n"
            "Content-Length: %d\r\n\r\n" % size).encode()
    conn.sendall(head + want)  # head and body in one write
    status, body = http_response(conn)
    if status != 200:
        return "HTTP status %d" % status
    return "" if body == want else "body of %d bytes differs" % len(body)


def matrix(host, port, kind, conn_mode, sizes, label):
    held = []
    failed = 0
    for size in sizes:
        start = time.monotonic()
        try:
            conn = connect(host, port, timeout=60)
            why = matrix_row(conn, kind, size)
            if conn_mode == "new":
                held.append(conn)
            else:
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(CHUNK):
                    pass
                conn.close()
        except (OSError, ValueError) as e:
            why = "%s: %s" % (type(e).__name__, e)
        ms = (time.monotonic() - start) * 1000
        failed += 1 if why else 0
        print("ROW %s size=%d %s" % (label, size, ("FAIL " + why) if why else "OK %.1fms" % ms),
              flush=True)
    for conn in held:
        conn.close()
    print("DONE rows=%d failed=%d" % (len(sizes), failed), flush=True)
def read_to_eof(conn, limit=1 << 16):
    """Every byte until the peer closes (at most `limit`)."""
    out = b""
    while len(out) < limit:
        data = conn.recv(CHUNK)
        if not data:
            break
        out += data
    return out


def probe_one(p):
    """One probe of `probe`: what the far end let through on a new connection."""
    try:
        c = connect(p["host"], p["port"], timeout=10)
    except (ConnectionRefusedError, ConnectionResetError):
        return "deny"
    except OSError as e:
        return "other:connect %s" % e
    try:
        if p["kind"] == "tcp":
            line = b"differential probe\n"
            c.sendall(line)
            c.shutdown(socket.SHUT_WR)
            got = read_to_eof(c)
            if got == line:
                return "allow"
            return "deny" if not got else "other:echoed %r" % got[:40]
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (
            p["method"], p["path"], p["authority"])
        for name, value in p.get("headers", {}).items():
            head += "%s: %s\r\n" % (name, value)
        if p["method"] in ("POST", "PUT"):
            head += "Content-Length: 0\r\n"
        c.sendall((head + "\r\n").encode())
        got = read_to_eof(c)
        if not got:
            return "deny"
        status = got.split(b" ", 2)[1] if got.startswith(b"HTTP/1.1 ") else b"?"
        return {b"200": "allow", b"403": "deny"}.get(status, "other:%r" % got[:60])
    except (ConnectionResetError, BrokenPipeError):
        return "deny"
    except OSError as e:
        if e.errno == errno.ENOTCONN:  # reset before the half-close
            return "deny"
        return "other:%s" % e
    finally:
        c.close()


def probe(spec):
    import json
    probes = json.loads(spec)
    results = {}

    def run(p):
        results[p["id"]] = probe_one(p)

    threads = [threading.Thread(target=run, args=(p,)) for p in probes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(results), flush=True)


def attempts(host, port, count, text):
    """`count` fresh connections, each sending `text` and expecting it echoed; never fails,
    prints how many echoed (OK) and how many did not (FAILED)."""
    ok = 0
    for _ in range(count):
        try:
            if round_trip(connect(host, port, timeout=3), text.encode()) == text.encode():
                ok += 1
        except OSError:
            pass
    print("OK=%d FAILED=%d" % (ok, count - ok), flush=True)


def probe_every(host, port, interval, count, text, stop_file):
    """A fresh connection every `interval` s (each sends `text`, expects it echoed) until
    stop_file exists or `count` were made: prints STARTED after the first, then OK=n FAILED=n
    and the first failures."""
    ok, failures = 0, []
    next_at = time.monotonic()
    for i in range(count):
        if os.path.exists(stop_file):
            break
        try:
            if round_trip(connect(host, port, timeout=3), text.encode()) == text.encode():
                ok += 1
            else:
                failures.append("%d: echo differs" % i)
        except OSError as e:
            failures.append("%d: %s" % (i, e))
        if i == 0:
            print("STARTED", flush=True)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))  # pacing the offered rate
    print("OK=%d FAILED=%d" % (ok, len(failures)), flush=True)
    for f in failures[:10]:
        print("FAIL " + f, flush=True)


def streams(host, port, count, release_file):
    """`count` long-lived connections, each sending its own byte sequence in rounds (the echo
    of each round read back) until release_file exists, then closing cleanly: prints STREAMING
    once every stream has echoed a round, then OK=n BAD=n BYTES=n, a stream being OK when the
    sha256 and length of what came back equal what it sent."""
    results = [None] * count
    started = threading.Barrier(count + 1)

    def one(k):
        sent, got, total = hashlib.sha256(), hashlib.sha256(), 0
        seed = hashlib.sha256(b"stream-%d" % k).digest()
        try:
            conn = connect(host, port, timeout=10)
            conn.settimeout(30)
            for rnd in range(6000):  # bounded: about 120 s at 20 ms a round
                size = 1 + (seed[rnd % 32] * 37 + rnd * 101) % 9000
                block = (seed * (size // 32 + 1))[:size]
                conn.sendall(block)
                sent.update(block)
                back = recv_exact(conn, size)
                got.update(back)
                total += len(back)
                if rnd == 0:
                    started.wait(30)
                if os.path.exists(release_file):
                    break
                time.sleep(0.02)  # pacing: a round every 20 ms until released
            conn.shutdown(socket.SHUT_WR)
            tail = conn.recv(CHUNK)
            conn.close()
            results[k] = not tail and sent.digest() == got.digest()
        except (OSError, threading.BrokenBarrierError) as e:
            print("stream %d: %s" % (k, e), flush=True)
            results[k] = False
        results[k] = (results[k], total)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    try:
        started.wait(30)
        print("STREAMING", flush=True)
    except threading.BrokenBarrierError:
        print("NOT STREAMING", flush=True)
    for t in threads:
        t.join()
    good = sum(1 for r in results if r and r[0])
    print("OK=%d BAD=%d BYTES=%d" % (good, count - good, sum(r[1] for r in results if r)),
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bytes", type=int, default=0)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--concurrent", action="store_true")
    ap.add_argument("--text", default="")
    ap.add_argument("--name", default="")
    ap.add_argument("--behavior", default="ok")
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--method", default="GET")
    ap.add_argument("--traceparent", default="")
    ap.add_argument("--sizes", default="")
    ap.add_argument("--kind", default="echo")
    ap.add_argument("--conn", default="new")
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--pace", type=float, default=0.0)
    a = ap.parse_args()
    try:
        if a.mode == "echo-server":
            serve(a.port, echo)
        elif a.mode == "sha-server":
            serve(a.port, sha_server(a.bytes))
        elif a.mode == "sha-client":
            sha_client(a.host, a.port, a.bytes)
        elif a.mode == "many":
            many(a.host, a.port, a.count, a.concurrent)
        elif a.mode == "hold":
            hold(a.host, a.port, a.text)
        elif a.mode == "hold-until-closed":
            hold_until_closed(a.host, a.port, a.count)
        elif a.mode == "http-server":
            http_server(a.port)
        elif a.mode == "http-app":
            http_app(a.port, a.name, a.behavior)
        elif a.mode == "http-load":
            http_load(a.host, a.port, a.count, a.connections, a.method, a.pace)
        elif a.mode == "paced-load":
            paced_load(a.host, a.port, a.count, a.rate, a.kind)
        elif a.mode == "http-get":
            http_get(a.host, a.port, a.text.split(" "))
        elif a.mode == "http-raw":
            http_raw(a.host, a.port, a.text)
        elif a.mode == "http-post":
            http_post(a.host, a.port, a.text.split(" "), a.bytes, a.traceparent)
        elif a.mode == "first-server":
            first_server(a.port, [int(x) for x in a.sizes.split(",")])
        elif a.mode == "http-echo":
            http_echo(a.port)
        elif a.mode == "matrix":
            matrix(a.host, a.port, a.kind, a.conn, [int(x) for x in a.sizes.split(",")],
                   a.text)
        elif a.mode == "probe":
            probe(a.text)
        elif a.mode == "flood":
            flood(a.host, a.port, a.count, a.text)
        elif a.mode == "slow-headers":
            slow_headers(a.host, a.port, a.count, a.interval, a.seconds)
        elif a.mode == "probe-every":
            probe_every(a.host, a.port, a.interval, a.count, a.text, a.name)
        elif a.mode == "streams":
            streams(a.host, a.port, a.count, a.text)
        elif a.mode == "attempts":
            attempts(a.host, a.port, a.count, a.text)
        elif a.mode == "send":
            got = round_trip(connect(a.host, a.port, timeout=10), a.text.encode())
            if got != a.text.encode():
                fail("echo came back %r" % got)
            print("OK", flush=True)
        else:
            fail("unknown mode " + a.mode)
    except OSError as e:
        fail("%s: %s" % (type(e).__name__, e))


if __name__ == "__main__":
    main()
