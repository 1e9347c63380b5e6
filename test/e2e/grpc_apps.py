#!/usr/bin/python3
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
"""gRPC apps for the mesh end-to-end tests (issue 22), on Debian's python3-grpcio, with raw bytes
as messages (generic handlers: no generated code). They run inside pods and know nothing of Ferry.

  server --port P --name NAME [--behavior ok|unavailable50]
        /ferry.Echo/Call answers NAME (unavailable50: every other call, the first included,
        fails with UNAVAILABLE as a trailers-only answer); /ferry.Echo/Stats answers JSON
        {"calls": n, "unavailable": m} (not counted)
  client --target HOST:PORT --count C [--method M] [--parallel K] [--metadata K=V]
        C unary calls of M (default /ferry.Echo/Call) on ONE channel (one HTTP/2 connection), at
        most K in flight; prints JSON {"ok": {answer: n}, "errors": {status name: n},
        "connections": 1}
  ws-server --port P    a minimal WebSocket server: answers the handshake with 101 and then
        echoes every byte it receives
  ws-client --host H --port P --text T
        handshake (GET with Upgrade: websocket), then sends T as raw bytes after the 101 and
        expects them echoed; prints "101 <echoed text>"
"""

import argparse
import base64
import concurrent.futures
import hashlib
import json
import socket
import socketserver
import sys
import threading

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B85"


def server(port, name, behavior):
    import grpc

    lock = threading.Lock()
    stats = {"calls": 0, "unavailable": 0}

    def call(request, context):
        with lock:
            stats["calls"] += 1
            fail = behavior == "unavailable50" and stats["calls"] % 2 == 1
            if fail:
                stats["unavailable"] += 1
        if fail:
            context.abort(grpc.StatusCode.UNAVAILABLE, "flaky " + name)
        return name.encode()

    def stat(request, context):
        with lock:
            return json.dumps(stats).encode()

    handler = grpc.method_handlers_generic_handler(
        "ferry.Echo",
        {
            "Call": grpc.unary_unary_rpc_method_handler(call),
            "Stats": grpc.unary_unary_rpc_method_handler(stat),
        },
    )
    srv = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=16))
    srv.add_generic_rpc_handlers((handler,))
    srv.add_insecure_port("0.0.0.0:%d" % port)
    srv.start()
    srv.wait_for_termination()


def client(target, count, method, parallel, metadata):
    import grpc

    # One channel, one subchannel, one HTTP/2 connection: every call shares it.
    channel = grpc.insecure_channel(target, options=[("grpc.enable_retries", 0)])
    stub = channel.unary_unary(method)
    ok, errors = {}, {}
    lock = threading.Lock()

    def one(_):
        try:
            answer = stub(b"hello", timeout=30, metadata=metadata).decode()
            with lock:
                ok[answer] = ok.get(answer, 0) + 1
        except grpc.RpcError as e:
            with lock:
                errors[e.code().name] = errors.get(e.code().name, 0) + 1

    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, range(count)))
    print(json.dumps({"ok": ok, "errors": errors}))


def ws_server(port):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            conn = self.request
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            head, rest = head.split(b"\r\n\r\n", 1)
            key = ""
            for line in head.decode().split("\r\n")[1:]:
                n, _, v = line.partition(":")
                if n.strip().lower() == "sec-websocket-key":
                    key = v.strip()
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept)
                         .encode())
            if rest:
                conn.sendall(rest)
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    Server(("0.0.0.0", port), Handler).serve_forever()


def ws_client(host, port, text):
    key = base64.b64encode(b"ferry-websocket!").decode()
    conn = socket.create_connection((host, port), timeout=30)
    conn.sendall(("GET /chat HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (host, key))
                 .encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            break
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1) if b"\r\n\r\n" in head else (head, b"")
    status = head.split(b" ", 2)[1].decode() if head else "none"
    expect = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    if status == "101" and expect.encode() not in head:
        print("101 bad-accept")
        return
    if status != "101":
        print(status + " " + head.decode(errors="replace").replace("\r\n", "|"))
        return
    conn.sendall(text.encode())
    got = rest
    while len(got) < len(text):
        chunk = conn.recv(4096)
        if not chunk:
            break
        got += chunk
    print("101 " + got.decode(errors="replace"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="")
    p.add_argument("--name", default="")
    p.add_argument("--behavior", default="ok")
    p.add_argument("--target", default="")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--method", default="/ferry.Echo/Call")
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--text", default="")
    p.add_argument("--metadata", action="append", default=[])
    a = p.parse_args()
    if a.cmd == "server":
        server(a.port, a.name, a.behavior)
    elif a.cmd == "client":
        client(a.target, a.count, a.method, a.parallel,
               [tuple(kv.split("=", 1)) for kv in a.metadata] or None)
    elif a.cmd == "ws-server":
        ws_server(a.port)
    elif a.cmd == "ws-client":
        ws_client(a.host, a.port, a.text)
    else:
        sys.exit("unknown command " + a.cmd)


if __name__ == "__main__":
    main()
