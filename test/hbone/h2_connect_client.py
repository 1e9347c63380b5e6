#!/usr/bin/python3
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
"""An HBONE client we did not write: Python's ssl + the `h2` package (Debian python3-h2).

Opens one mutual-TLS 1.3 connection (ALPN h2) and one stream, then checks the server's answer:
  echo           CONNECT <authority>, send a payload, half-close, expect 200 and the payload back
  expect-status  send <method> to <authority> and expect the given :status
--baggage adds a `baggage` header (the source's claimed metadata) to the request.
Prints the server's SPIFFE ID and "OK" on success; exits non-zero with a reason otherwise.
"""
import argparse
import os
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events


def fail(why):
    print("FAIL: " + why)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--authority", required=True)
    ap.add_argument("--mode", choices=["echo", "expect-status"], default="echo")
    ap.add_argument("--method", default="CONNECT")
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--bytes", type=int, default=256 * 1024)
    ap.add_argument("--baggage", default="", help="a W3C baggage header to send with the request")
    args = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(args.cert, args.key)
    ctx.load_verify_locations(args.ca)
    ctx.check_hostname = False  # SVIDs name workloads by URI SAN, not DNS
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["h2"])

    sock = socket.create_connection(("127.0.0.1", args.port), timeout=20)
    tls = ctx.wrap_socket(sock)
    if tls.selected_alpn_protocol() != "h2":
        fail("ALPN did not select h2: %r" % tls.selected_alpn_protocol())
    sans = [v for (k, v) in tls.getpeercert().get("subjectAltName", ()) if k == "URI"]
    print("server identity: " + ",".join(sans))
    print("tls: %s %s" % (tls.version(), tls.cipher()[0]))

    # h2 4.1 insists on :path/:scheme for every request, which RFC 9113 forbids for CONNECT.
    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                       validate_outbound_headers=False)
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())

    sid = conn.get_next_available_stream_id()
    headers = [(":method", args.method), (":authority", args.authority)]
    if args.method != "CONNECT":
        headers += [(":scheme", "https"), (":path", "/")]
    if args.baggage:
        headers.append(("baggage", args.baggage))
    payload = os.urandom(args.bytes) if args.mode == "echo" else b""
    conn.send_headers(sid, headers, end_stream=args.mode != "echo")
    tls.sendall(conn.data_to_send())

    status = None
    received = bytearray()
    sent = 0
    ended = False
    while not ended:
        # Send what flow control allows, then read.
        while args.mode == "echo" and status == 200 and sent < len(payload):
            window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
            if window <= 0:
                break
            chunk = payload[sent:sent + window]
            conn.send_data(sid, chunk, end_stream=sent + len(chunk) == len(payload))
            sent += len(chunk)
        tls.sendall(conn.data_to_send())
        data = tls.recv(65536)
        if not data:
            fail("server closed the connection")
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                status = int(dict(event.headers)[":status"])
                if args.mode == "expect-status" or status != 200:
                    ended = True
            elif isinstance(event, h2.events.DataReceived):
                received += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, sid)
            elif isinstance(event, h2.events.StreamEnded):
                ended = True
            elif isinstance(event, h2.events.StreamReset):
                if args.mode == "echo":
                    fail("stream reset with code %d" % event.error_code)
                ended = True
    tls.sendall(conn.data_to_send())

    if status != args.status:
        fail("expected :status %d, got %r" % (args.status, status))
    if args.mode == "echo" and bytes(received) != payload:
        fail("echo mismatch: sent %d bytes, got %d back" % (len(payload), len(received)))
    conn.close_connection()
    tls.sendall(conn.data_to_send())
    tls.close()
    print("OK")


if __name__ == "__main__":
    main()
