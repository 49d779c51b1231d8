#!/usr/bin/env python3
"""Floods a running confab and prints its RSS before, during and after.

Three calls are set up first and kept up (answering in-dialog requests,
sending 20 ms RTP). Then: INVITEs to one room, OPTIONS at a fixed rate,
INVITEs to distinct rooms -- none of the flood's INVITEs is ACKed or
answered, as from an attacker. RSS is read from /proc/PID/status after each
phase and every 10 s for 60 s after the last. Std-only; bounded by its
arguments.

usage: flood_memory.py HOST:PORT PID [--invites 20000] [--options-rate 10000]
                       [--options-secs 5] [--after 60]
"""
import argparse
import os
import socket
import threading
import time

SDP = (
    "v=0\r\no=flood 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def request(method, room, server, local, call_id, tag, cseq=1, body="", to_tag=""):
    ctype = "Content-Type: application/sdp\r\n" if body else ""
    to = f"<sip:{room}@{server[0]}:{server[1]}>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:{room}@{server[0]}:{server[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK{call_id}{cseq}{method};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:flood@{local[0]}>;tag={tag}\r\nTo: {to}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:flood@{local[0]}:{local[1]}>\r\n"
        f"{ctype}Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def header(msg, name):
    for line in msg.split("\r\n"):
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return ""


class Call:
    """A call kept up: answers the server's requests, sends silence every 20 ms."""

    def __init__(self, server, room, n):
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.server, self.room, self.n = server, room, n
        self.stop = False
        self.ended = ""  # why the server ended the call, if it did
        self.heard = 0  # RTP packets received from the room
        local = self.sip.getsockname()
        body = SDP.format(port=self.rtp.getsockname()[1])
        self.sip.settimeout(5)
        self.sip.sendto(request("INVITE", room, server, local, f"keep{n}-{os.getpid()}", f"k{n}", body=body), server)
        while True:
            msg = self.sip.recv(65535).decode(errors="replace")
            code = msg.split(" ")[1] if msg.startswith("SIP/2.0") else ""
            if code.startswith("2"):
                break
            if code and code[0] in "3456":
                raise SystemExit(f"call {n} refused: {msg.splitlines()[0]}")
        to_tag = header(msg, "To").split("tag=")[-1]
        m = [l for l in msg.split("\r\n") if l.startswith("m=audio ")][0]
        self.remote_rtp = ("127.0.0.1", int(m.split()[1]))
        self.sip.sendto(request("ACK", room, server, local, f"keep{n}-{os.getpid()}", f"k{n}", to_tag=to_tag), server)
        threading.Thread(target=self.answer, daemon=True).start()
        threading.Thread(target=self.media, daemon=True).start()

    def answer(self):
        self.sip.settimeout(0.5)
        while not self.stop:
            try:
                msg, src = self.sip.recvfrom(65535)
            except socket.timeout:
                continue
            text = msg.decode(errors="replace")
            if text.startswith("SIP/2.0") or not text[:1].isalpha():
                continue
            if text.startswith("BYE "):
                self.ended = header(text, "Reason") or "BYE"
            resp = "SIP/2.0 200 OK\r\n" + "".join(
                f"{h}: {header(text, h)}\r\n" for h in ("Via", "From", "To", "Call-ID", "CSeq")
            ) + "Content-Length: 0\r\n\r\n"
            self.sip.sendto(resp.encode(), src)

    def media(self):
        seq, t = 0, time.monotonic()
        self.rtp.setblocking(False)
        while not self.stop:
            while True:
                try:
                    self.rtp.recv(2048)
                    self.heard += 1
                except BlockingIOError:
                    break
            pkt = bytes([0x80, 0]) + (seq & 0xFFFF).to_bytes(2, "big") + (seq * 160 & 0xFFFFFFFF).to_bytes(4, "big")
            pkt += (0xF100D000 + self.n).to_bytes(4, "big") + b"\xff" * 160
            self.rtp.sendto(pkt, self.remote_rtp)
            seq += 1
            t += 0.02
            time.sleep(max(0.0, t - time.monotonic()))


def blast(sock, server, messages, rate):
    """Sends messages at `rate` per second (in 10 ms batches); drains replies."""
    counts = {}
    sock.setblocking(False)
    per_batch = max(1, rate // 100)
    start = time.monotonic()
    for i, m in enumerate(messages):
        try:
            sock.sendto(m, server)
        except BlockingIOError:
            pass
        if i % per_batch == per_batch - 1:
            drain(sock, counts)
            due = start + (i + 1) / rate
            time.sleep(max(0.0, due - time.monotonic()))
    time.sleep(0.5)
    drain(sock, counts)
    return counts


def drain(sock, counts):
    while True:
        try:
            msg = sock.recv(65535)
        except (BlockingIOError, socket.timeout):
            return
        code = msg[8:11].decode(errors="replace") if msg.startswith(b"SIP/2.0") else "req"
        counts[code] = counts.get(code, 0) + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("server")
    ap.add_argument("pid", type=int)
    ap.add_argument("--invites", type=int, default=20000)
    ap.add_argument("--invite-rate", type=int, default=5000)
    ap.add_argument("--options-rate", type=int, default=10000)
    ap.add_argument("--options-secs", type=int, default=5)
    ap.add_argument("--after", type=int, default=60)
    a = ap.parse_args()
    host, port = a.server.rsplit(":", 1)
    server = (host, int(port))
    pid = a.pid
    print(f"rss_MB before: {rss_mb(pid):.1f}", flush=True)
    calls = [Call(server, "kept", n) for n in range(3)]
    time.sleep(1)
    print(f"rss_MB with 3 calls: {rss_mb(pid):.1f}", flush=True)
    flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flood.bind(("127.0.0.1", 0))
    flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    local = flood.getsockname()
    body = SDP.format(port=9)
    phases = [
        ("INVITEs to one room", [request("INVITE", "flood", server, local, f"f1-{i}", f"t{i}", body=body)
                                 for i in range(a.invites)], a.invite_rate),
        ("OPTIONS", [request("OPTIONS", "flood", server, local, f"o-{i}", f"o{i}")
                     for i in range(a.options_rate * a.options_secs)], a.options_rate),
        ("INVITEs to distinct rooms", [request("INVITE", f"room{i}", server, local, f"f2-{i}", f"u{i}", body=body)
                                       for i in range(a.invites)], a.invite_rate),
    ]
    peak = 0.0
    for name, msgs, rate in phases:
        counts = blast(flood, server, msgs, rate)
        now = rss_mb(pid)
        peak = max(peak, now)
        print(f"rss_MB after {len(msgs)} {name} at {rate}/s: {now:.1f}  replies {dict(sorted(counts.items()))}", flush=True)
    for s in range(10, a.after + 1, 10):
        time.sleep(10)
        counts = {}
        drain(flood, counts)
        now = rss_mb(pid)
        print(f"rss_MB {s} s after: {now:.1f}", flush=True)
    before = [c.heard for c in calls]
    time.sleep(1)
    up = [c for c, b in zip(calls, before) if not c.ended and c.heard > b]
    for c in calls:
        if c.ended:
            print(f"kept call {c.n} was ended by the server: {c.ended}", flush=True)
    print(f"summary: peak {peak:.1f} MB, {now:.1f} MB {a.after} s after; "
          f"{len(up)} of {len(calls)} kept calls still up and hearing the room", flush=True)
    for c in calls:
        c.stop = True
    return 0 if len(up) == len(calls) else 1


if __name__ == "__main__":
    raise SystemExit(main())
