#!/usr/bin/env python3
"""INVITE -> 200 and join -> last NOTIFY over UDP, with N conference subscribers.

Usage: join_notify_latency.py HOST:PORT N [--joins 3]

A keeper call opens room `big`; N watchers SUBSCRIBE to it (Event: conference, from a few
UDP sockets, each its own dialog) and answer every NOTIFY with 200; once each has its first
NOTIFY, a joiner dials in, --joins times (hanging up in between): the time from its INVITE
to its 200, and to the last of the N NOTIFYs that announce it, are printed. The server must
let anyone watch (`--watcher '*'`) and take this many messages from one address
(`--rate-per-source`). Standard library only.
"""
import argparse
import itertools
import re
import selectors
import socket
import struct
import sys
import time

ids = itertools.count(1)
# Linux: SO_TIMESTAMPNS (and SCM_TIMESTAMPNS) is 35; Python 3.11 does not name it.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def header(msg, name):
    m = re.search(r"^" + name + r":\s*(.*?)\r$", msg, re.M | re.I)
    return m.group(1) if m else None


def reply_200(msg):
    vias = re.findall(r"^(Via:.*?)\r$", msg, re.M | re.I)
    lines = ["SIP/2.0 200 OK"] + vias
    for h in ("From", "To", "Call-ID", "CSeq"):
        lines.append(f"{h}: {header(msg, h)}")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def request(method, room, server, sock, call_id, tag, cseq, extra="", body="", to_tag=None):
    host, port = sock.getsockname()
    to = f"<sip:{room}@{server[0]}:{server[1]}>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:{room}@{server[0]}:{server[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{next(ids)}x;rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:{tag}@{host}:{port}>;tag={tag}\r\nTo: {to}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
        f"Contact: <sip:{tag}@{host}:{port}>\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def sdp(sock):
    host, port = sock.getsockname()
    return (
        f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port + 1} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )


class Peer:
    """UDP sockets that answer NOTIFYs and count what arrives."""

    def __init__(self, server, sockets):
        self.server = server
        self.sel = selectors.DefaultSelector()
        self.socks = []
        for _ in range(sockets):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            # Arrival times from the kernel: what this script is busy with does not count.
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
            self.socks.append(s)
        self.notifies = 0
        # Subscription Call-ID -> arrival time of its latest NOTIFY.
        self.latest = {}
        self.responses = []  # (time, status, call-id, cseq)

    def pump(self, timeout):
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            while True:
                try:
                    data, anc, _flags, src = s.recvmsg(65536, 1024)
                except BlockingIOError:
                    break
                msg = data.decode(errors="replace")
                now = time.time()
                for level, kind, value in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", value[:16])
                        now = sec + nsec / 1e9
                if msg.startswith("SIP/2.0 "):
                    self.responses.append((now, int(msg[8:11]), header(msg, "Call-ID"), header(msg, "CSeq"), msg))
                elif msg.startswith("NOTIFY "):
                    self.notifies += 1
                    self.latest[header(msg, "Call-ID")] = now
                    s.sendto(reply_200(msg), src)
                elif msg.startswith(("BYE ", "OPTIONS ", "INFO ")):
                    s.sendto(reply_200(msg), src)

    def wait(self, cond, secs, what):
        deadline = time.monotonic() + secs
        while not cond():
            if time.monotonic() > deadline:
                sys.exit(f"timed out waiting for {what} (NOTIFYs {self.notifies}, responses {sorted(set(r[1] for r in self.responses))} x{len(self.responses)})")
            self.pump(0.05)

    def final(self, call_id, method):
        for t, st, cid, cseq, msg in self.responses:
            if cid == call_id and cseq and cseq.endswith(method) and st >= 200:
                return t, st, msg
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("server")
    ap.add_argument("n", type=int)
    ap.add_argument("--joins", type=int, default=3)
    a = ap.parse_args()
    host, port = a.server.rsplit(":", 1)
    server = (host, int(port))
    # Many sockets: each takes a share of the NOTIFY burst within its receive buffer.
    p = Peer(server, max(1, a.n // 50))
    callers = Peer(server, 2)

    def call(sock, name):
        cid = f"{name}-{next(ids)}"
        sock.sendto(request("INVITE", "big", server, sock, cid, name, 1, "Content-Type: application/sdp\r\n", sdp(sock)), server)
        return cid

    def ack_and_tag(sock, name, cid, msg):
        to_tag = re.search(r";tag=([^;>\s]+)", header(msg, "To")).group(1)
        sock.sendto(request("ACK", "big", server, sock, cid, name, 1, to_tag=to_tag), server)
        return to_tag

    keeper = callers.socks[0]
    kid = call(keeper, "keeper")
    callers.wait(lambda: callers.final(kid, "INVITE"), 10, "the keeper's 200")
    ack_and_tag(keeper, "keeper", kid, callers.final(kid, "INVITE")[2])

    start = time.monotonic()
    subs = []
    sent = {}
    for i in range(a.n):
        s = p.socks[i % len(p.socks)]
        cid = f"sub{i}-{next(ids)}"
        msg = request("SUBSCRIBE", "big", server, s, cid, f"w{i}", 1, "Event: conference\r\nExpires: 3600\r\nAccept: application/conference-info+xml\r\n")
        s.sendto(msg, server)
        subs.append(cid)
        sent[cid] = (s, msg)
        # Paced (about 5,000/s), so the server's socket buffer rarely overflows.
        if i % 20 == 19:
            p.pump(0.004)
    # RFC 3261 timer E: what was lost (a busy machine drops datagrams) is sent again.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answered = {r[2] for r in p.responses if r[1] >= 200}
        missing = [c for c in subs if c not in answered]
        if not missing and p.notifies >= a.n:
            break
        for c in missing:
            sock, msg = sent[c]
            sock.sendto(msg, server)
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            p.pump(0.05)
    p.wait(lambda: p.notifies >= a.n, 1, f"{a.n} first NOTIFYs")
    ok = sum(1 for r in p.responses if r[1] == 200)
    print(f"{a.n} watchers subscribed ({ok} answered 200) in {time.monotonic() - start:.1f} s")
    time.sleep(1.0)
    p.pump(0.2)

    joiner = callers.socks[1]
    for j in range(a.joins):
        t0 = time.time()
        jid = call(joiner, f"joiner{j}")
        fresh = lambda: [t for t in p.latest.values() if t >= t0]
        while time.time() - t0 < 60:
            p.pump(0.001)
            callers.pump(0)
            if len(fresh()) >= a.n and callers.final(jid, "INVITE"):
                break
        got = callers.final(jid, "INVITE")
        arrivals = sorted(t - t0 for t in fresh())
        if not got or len(arrivals) < a.n:
            missing = [c for c in subs if p.latest.get(c, 0) < t0][:3]
            sys.exit(f"join {j}: 200={bool(got)}, subscribers told {len(arrivals)} of {a.n}; not told: {missing}")
        t200, status, msg = got
        med, p99 = arrivals[len(arrivals) // 2], arrivals[int(len(arrivals) * 0.99)]
        print(
            f"join {j + 1}: INVITE -> {status} in {(t200 - t0) * 1000:.1f} ms; NOTIFY per subscriber "
            f"median {med * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, last {arrivals[-1] * 1000:.1f} ms"
        )
        tag = ack_and_tag(joiner, f"joiner{j}", jid, msg)
        time.sleep(0.3)
        joiner.sendto(request("BYE", "big", server, joiner, jid, f"joiner{j}", 2, to_tag=tag), server)
        # The leave's NOTIFYs, then quiet.
        end = time.monotonic() + 3
        while time.monotonic() < end:
            p.pump(0.05)
            callers.pump(0)


if __name__ == "__main__":
    main()
