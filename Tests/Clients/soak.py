#!/usr/bin/env python3
"""Soak: mixed valid and hostile traffic at moderate load against the real binary, RSS and open fds sampled.

Usage: Tests/Clients/soak.py PATH/TO/omniembed MINUTES [--rate N] [--hostile-rate N] [--csv FILE]

Valid traffic (keep-alive clients, paced to --rate requests/s): /embed of texts, images, audio and all three (stored,
over a bounded id pool so that the store and its cache fill during warm-up), /v1/embeddings, /tokenize, /match,
/user_embedding, GET and DELETE /items/{id}, the health, metrics and OpenAPI routes. Hostile traffic (raw sockets,
--hostile-rate/s): malformed and oversized requests, smuggling attempts, TLS on the plain port, stalled and reset
connections, clients leaving mid-request, corrupt media, decompression bombs, 1 Hz WAVs, control characters in ids.

Passes when the process is alive at the end, no valid request got a 5xx, a 429 or a transport error, no hostile
request got a 5xx, RSS after warm-up (the first 10%, at least 2 minutes) stays within 5% of its median, and the open
fds return to their idle count once traffic stops. Prints figures and writes the samples as CSV.
"""
import argparse
import base64
import collections
import csv
import glob
import http.client
import importlib.util
import json
import os
import random
import socket
import statistics
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("clients", os.path.join(HERE, "test-clients.py"))
clients = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clients)
spec = importlib.util.spec_from_file_location("hostile", os.path.join(HERE, "test-hostile.py"))
hostile = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hostile)

FIXTURES = os.path.join(clients.ROOT, "Tests", "MediaTests", "Fixtures")
WORDS = ("red blue green summer winter music video cooking travel cat dog city night river mountain street food "
         "dance guitar piano football review unboxing tutorial comedy news sunset beach forest coffee").split()


def b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


IMAGES = [b64(p) for p in sorted(glob.glob(os.path.join(FIXTURES, "images", "decode", "*.jpg")))[:6]]
IMAGES += [b64(p) for p in sorted(glob.glob(os.path.join(FIXTURES, "images", "decode", "*.png")))[:2]]
AUDIO = [b64(os.path.join(FIXTURES, "audio", name)) for name in ("speech.wav", "pcm16.wav", "rate-44100.wav")]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.failures = []
        self.latencies = []

    def record(self, kind, status, elapsed=None, failure=None):
        with self.lock:
            self.counts[(kind, status)] += 1
            if elapsed is not None:
                self.latencies.append(elapsed)
            if failure and len(self.failures) < 500:
                self.failures.append(failure)


def text(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40)))


VALID_KINDS = {"embed-text", "embed-image", "embed-audio", "embed-omni", "openai", "tokenize", "match",
               "user-embedding", "get-item", "delete-item", "get"}


def valid_request(rng):
    """(kind, method, path, body, accepted statuses)."""
    roll = rng.random()
    if roll < 0.30:
        items = [{"id": f"t{rng.randrange(2000)}", "text": text(rng)} for _ in range(rng.randint(1, 16))]
        items = list({item["id"]: item for item in items}.values())
        return "embed-text", "POST", "/embed", {"items": items}, {200}
    if roll < 0.38:
        item = {"id": f"i{rng.randrange(200)}", "images": [{"data": rng.choice(IMAGES)}]}
        return "embed-image", "POST", "/embed", {"items": [item]}, {200}
    if roll < 0.43:
        item = {"id": f"a{rng.randrange(100)}", "audio": {"data": rng.choice(AUDIO)}}
        return "embed-audio", "POST", "/embed", {"items": [item]}, {200}
    if roll < 0.46:
        item = {"id": f"m{rng.randrange(100)}", "fields": {"title": text(rng), "tags": text(rng).split()[:5]},
                "images": [{"data": rng.choice(IMAGES)}], "audio": {"data": rng.choice(AUDIO)}}
        return ("embed-omni", "POST", "/embed",
                {"items": [item], "return": ["embedding", "modalities", "features"], "dimensions": rng.choice([64, 128, 384])},
                {200})
    if roll < 0.54:
        return "openai", "POST", "/v1/embeddings", {"input": [text(rng) for _ in range(rng.randint(1, 8))]}, {200}
    if roll < 0.60:
        return "tokenize", "POST", "/tokenize", {"texts": [text(rng) for _ in range(rng.randint(1, 4))]}, {200}
    if roll < 0.72:
        history = [f"t{rng.randrange(2000)}" for _ in range(rng.randint(1, 40))]
        candidates = [f"t{rng.randrange(2000)}" for _ in range(rng.randint(1, 100))]
        candidates += [{"id": f"new{n}", "fields": {"title": text(rng)}} for n in range(rng.randint(0, 2))]
        body = {"user": {"history": history}, "candidates": candidates, "top_k": 5}
        return "match", "POST", "/match", body, {200}
    if roll < 0.76:
        body = {"user": {"history": [f"t{rng.randrange(2000)}" for _ in range(rng.randint(1, 20))]}}
        return "user-embedding", "POST", "/user_embedding", body, {200, 422}
    if roll < 0.88:
        return "get-item", "GET", f"/items/t{rng.randrange(2000)}", None, {200, 404}
    if roll < 0.91:
        return "delete-item", "DELETE", f"/items/t{rng.randrange(2000)}", None, {200, 204, 404}
    return "get", "GET", rng.choice(["/healthz", "/readyz", "/metrics", "/openapi.json"]), None, {200}


def paced(stop, rate, rng):
    """Poisson arrivals at `rate` per second until `stop`; a worker that falls behind catches up without sleeping."""
    next_at = time.monotonic()
    while not stop.is_set():
        next_at += rng.expovariate(rate)
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield


def valid_worker(port, stop, stats, rate, seed):
    rng = random.Random(seed)
    connection = None
    for _ in paced(stop, rate, rng):
        kind, method, path, body, accepted = valid_request(rng)
        payload = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if rng.random() < 0.3:
            headers["Accept-Encoding"] = "gzip"
        started = time.monotonic()
        try:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
            status = response.status
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException) as error:
            if connection is not None:
                connection.close()
            connection = None
            stats.record(kind, "transport-error", failure=f"{kind} {method} {path}: {error!r}")
            continue
        elapsed = time.monotonic() - started
        failure = None if status in accepted else f"{kind} {method} {path}: {status} {data[:300]!r}"
        stats.record(kind, status, elapsed, failure)
    if connection is not None:
        connection.close()


def http_bytes(method, path, body=b"", extra=""):
    return (f"{method} {path} HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n").encode() + body


BOMB = base64.b64encode(hostile.png(6324, 6324, bit_depth=1)).decode()
TALL = base64.b64encode(hostile.png(1, 100_000)).decode()
ONE_HZ = base64.b64encode(hostile.wav(1, 600)).decode()


def hostile_payloads(rng):
    """(kind, bytes to send, how to end: "read" the answer, "close" at once, "reset", or "stall" seconds)."""
    embed = lambda items, **o: http_bytes("POST", "/embed", json.dumps({"items": items, "store": False, **o}).encode())
    choices = [
        ("malformed-json", http_bytes("POST", "/embed", b'{"items": [{"id": "x", "text": '), "read"),
        ("nul-id", embed([{"id": "victim\u0000x", "text": "t"}]), "read"),
        ("control-id-path", b"DELETE /items/t1%00junk HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n", "read"),
        ("long-id", embed([{"id": "x" * 5000, "text": "t"}]), "read"),
        ("huge-content-length", b"POST /embed HTTP/1.1\r\nHost: s\r\nContent-Length: 999999999999\r\n\r\n", "read"),
        ("smuggling", b"POST /embed HTTP/1.1\r\nHost: s\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "read"),
        ("bad-chunk", b"POST /embed HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "read"),
        ("huge-header", b"GET /healthz HTTP/1.1\r\nHost: s\r\nX: " + b"a" * 40000 + b"\r\n\r\n", "read"),
        ("tls-hello", bytes.fromhex("16030100c4010000c00303") + os.urandom(32) + bytes(200), "read"),
        ("garbage", os.urandom(rng.randint(1, 2000)), "read"),
        ("corrupt-image", embed([{"id": "c", "images": [{"data": base64.b64encode(os.urandom(3000)).decode()}]}]), "read"),
        ("truncated-jpeg", embed([{"id": "c", "images": [{"data": IMAGES[0][:len(IMAGES[0]) // 2 // 4 * 4]}]}]), "read"),
        ("bomb", embed([{"id": f"b{i}", "images": [{"data": BOMB}]} for i in range(10)]), "read"),
        ("tall-png", embed([{"id": "tall", "images": [{"data": TALL}]}]), "read"),
        ("one-hertz", embed([{"id": "hz", "audio": {"data": ONE_HZ}}]), "read"),
        ("bad-base64", embed([{"id": "c", "images": [{"data": "%%%notbase64"}]}]), "read"),
        ("huge-numbers", http_bytes("POST", "/match", json.dumps(
            {"user": {"history": [{"embedding": [3e38] * 384}, {"embedding": [1e-30] * 384}], "weights": [3e38, 3e38]},
             "candidates": [{"id": "c", "embedding": [3e38] * 384}]}).encode()), "read"),
        ("overflowing-number", http_bytes("POST", "/match", b'{"user": {"history": [{"embedding": [1e999]}]}, "candidates": []}'), "read"),
        ("too-many-items", embed([{"id": f"n{i}", "text": "t"} for i in range(300)]), "read"),
        ("leave-mid-embed", embed([{"id": "l", "images": [{"data": IMAGES[1]}], "audio": {"data": AUDIO[0]}}]), "close"),
        ("reset-mid-body", b"POST /embed HTTP/1.1\r\nHost: s\r\nContent-Length: 1000\r\n\r\n{\"items\": [", "reset"),
        ("stall-head", b"GET /healthz HTTP/1.1\r\nHost: s\r\n", "stall"),
        ("half-close", embed([{"id": "h", "text": "half closed"}]), "half-close"),
    ]
    return rng.choice(choices)


def hostile_worker(port, stop, stats, rate, seed):
    rng = random.Random(seed)
    for _ in paced(stop, rate, rng):
        kind, data, ending = hostile_payloads(rng)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                if ending == "reset":
                    s.sendall(data)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    stats.record(kind, "reset")
                    continue
                try:
                    s.sendall(data)
                except OSError:
                    pass  # the server may answer and close before reading everything (e.g. 413 on the head)
                if ending == "close":
                    stats.record(kind, "closed")
                    continue
                if ending == "stall":
                    time.sleep(rng.uniform(0.1, 2))
                    stats.record(kind, "stalled")
                    continue
                if ending == "half-close":
                    s.shutdown(socket.SHUT_WR)
                received = b""
                while True:
                    try:
                        chunk = s.recv(65536)
                    except ConnectionResetError:
                        break
                    if not chunk:
                        break
                    received += chunk
        except OSError as error:
            stats.record(kind, "transport-error", failure=f"hostile {kind}: {error!r}")
            continue
        status = received.split(b" ", 2)[1].decode(errors="replace") if received.startswith(b"HTTP/1.1 ") else "no-answer"
        wrong = status.startswith("5") or (ending == "half-close" and status != "200")
        failure = f"hostile {kind}: {received[:300]!r}" if wrong else None
        stats.record(kind, status, failure=failure)


def sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid):
    targets = collections.Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        targets["socket" if target.startswith("socket:") else target] += 1
    return targets


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("minutes", type=float)
    parser.add_argument("--rate", type=float, default=25, help="valid requests per second")
    parser.add_argument("--hostile-rate", type=float, default=5, help="hostile requests per second")
    parser.add_argument("--csv", default=os.path.join(clients.ROOT, ".cache", "soak", time.strftime("%Y%m%dT%H%M%S") + ".csv"))
    options = parser.parse_args()
    clients.BINARY = os.path.abspath(options.binary)
    service = clients.Service()
    pid = service.process.pid
    # One request of each kind first, so that what opens lazily (the store's files) counts as idle.
    rng = random.Random(7)
    seen = set()
    while len(seen) < len(VALID_KINDS):
        kind, method, path, body, _ = valid_request(rng)
        if kind not in seen:
            seen.add(kind)
            connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=120)
            connection.request(method, path, body=json.dumps(body) if body is not None else None,
                               headers={"Content-Type": "application/json"})
            connection.getresponse().read()
            connection.close()
    idle_rss, idle_fds = sample(pid)
    idle_targets = fd_targets(pid)
    stop = threading.Event()
    stats = Stats()
    valid_threads = 3
    threads = [threading.Thread(target=valid_worker, args=(service.port, stop, stats, options.rate / valid_threads, n))
               for n in range(valid_threads)]
    threads.append(threading.Thread(target=hostile_worker, args=(service.port, stop, stats, options.hostile_rate, 99)))
    for thread in threads:
        thread.start()
    duration = options.minutes * 60
    warm_up = max(120.0, duration / 10) if duration > 240 else duration / 4
    started = time.monotonic()
    samples = []
    os.makedirs(os.path.dirname(options.csv), exist_ok=True)
    try:
        while time.monotonic() - started < duration and service.process.poll() is None:
            time.sleep(5)
            if service.process.poll() is not None:
                break
            rss, fds = sample(pid)
            samples.append((time.monotonic() - started, rss, fds))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
    alive = service.process.poll() is None
    time.sleep(3)  # lingering closes and stalled heads are cut by the server's timeouts
    settled = time.monotonic() + 15
    final_rss, final_fds = sample(pid) if alive else (0, 0)
    while alive and final_fds > idle_fds and time.monotonic() < settled:
        time.sleep(1)
        final_rss, final_fds = sample(pid)
    # More reader connections of the store's pool may be open than when idle: those are the store's files, not leaks.
    store = os.path.dirname(service.store)
    new_targets = (fd_targets(pid) - idle_targets) if alive else collections.Counter()
    leaked = {target: n for target, n in new_targets.items() if not target.startswith(store + "/")}
    exit_code = service.stop() if alive else service.process.returncode

    with open(options.csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seconds", "rss_mb", "fds"])
        writer.writerows((f"{t:.0f}", f"{r:.1f}", n) for t, r, n in samples)
    after = [r for t, r, _ in samples if t >= warm_up]
    median = statistics.median(after) if after else 0
    spread = (max(after) - min(after)) / median if after else 1
    drift = (statistics.median(after[-max(1, len(after) // 10):]) - statistics.median(after[:max(1, len(after) // 10)])) / median if after else 1
    valid_total = sum(n for (kind, _), n in stats.counts.items() if kind in VALID_KINDS)
    hostile_total = sum(n for (kind, _), n in stats.counts.items() if kind not in VALID_KINDS)
    latencies = sorted(stats.latencies)
    print(f"soak: {options.minutes:g} min, {valid_total} valid requests ({valid_total / duration:.1f}/s), "
          f"{hostile_total} hostile ({hostile_total / duration:.1f}/s)")
    if latencies:
        print(f"soak: valid latency p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
              f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms")
    for kind in sorted({kind for kind, _ in stats.counts}):
        by_status = ", ".join(f"{status}: {n}" for (k, status), n in sorted(stats.counts.items(), key=str) if k == kind)
        print(f"soak:   {kind:20} {by_status}")
    print(f"soak: RSS idle {idle_rss:.0f} MB; after warm-up ({warm_up:.0f} s) median {median:.0f} MB, "
          f"min {min(after, default=0):.0f}, max {max(after, default=0):.0f} (spread {spread * 100:.1f}%, "
          f"first→last tenth {drift * 100:+.1f}%); end {final_rss:.0f} MB")
    print(f"soak: fds idle {idle_fds}, max under load {max((n for _, _, n in samples), default=0)}, after traffic {final_fds}"
          + (f" (new: {dict(new_targets)})" if new_targets else ""))
    print(f"soak: process alive to the end: {alive}, exit code on SIGTERM {exit_code}; samples in {options.csv}")
    problems = [f"{problem} (×{n})" if n > 1 else problem for problem, n in collections.Counter(stats.failures).items()]
    if not alive:
        problems.append("the service died: " + service.logs()[-2000:])
    if exit_code != 0:
        problems.append(f"exit code {exit_code} on SIGTERM")
    if spread > 0.05:
        problems.append(f"RSS after warm-up spread {spread * 100:.1f}% > 5%")
    if leaked:
        problems.append(f"fds still open after traffic stopped: {leaked}")
    for problem in problems:
        print(f"soak: ✘ {problem}")
    print("soak: passed" if not problems else f"soak: failed ({len(problems)} problems)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
