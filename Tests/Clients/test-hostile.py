#!/usr/bin/env python3
"""Hostile requests and the API contract, from outside, against the real binary.

Usage: Tests/Clients/test-hostile.py PATH/TO/omniembed

Media that cost far more than they weigh (a 77 KB PNG of 40,000,000 pixels, a WAV declaring 1 Hz), a TLS
handshake on the plain port, the port bound while the towers load, REDbot (an HTTP linter) on the GET routes,
and schemathesis generating positive and negative requests from the served OpenAPI document. Prints
`hostile: N passed, N failed`.
"""
import base64
import importlib.util
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("clients", os.path.join(HERE, "test-clients.py"))
clients = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clients)
Service, raw, free_port, BINARY, CONFIG = clients.Service, clients.raw, clients.free_port, clients.BINARY, clients.CONFIG
VENV_BIN = os.path.dirname(sys.executable)

TESTS = []


def test(function):
    TESTS.append(function)
    return function


def png(width, height, bit_depth=8, row=None):
    """A greyscale PNG whose rows are all `row` (zeros by default): tiny when compressed, huge when decoded."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    row_bytes = (width * bit_depth + 7) // 8
    row = row or bytes(row_bytes)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(b"\x00" + row) for _ in range(height)) if height < 200_000 else None
    if body is None:  # stream the rows in blocks: 40 million rows of two bytes each
        block = (b"\x00" + row) * 100_000
        parts = [compressor.compress(block) for _ in range(height // 100_000)]
        parts.append(compressor.compress((b"\x00" + row) * (height % 100_000)))
        body = b"".join(parts)
    body += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def wav(rate, frames):
    data = bytes(2 * frames)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", len(data)) + data)


def embed(service, items, **options):
    body = json.dumps({"items": items, "store": False, **options})
    # A generous client timeout: decoding 40 million PNG rows takes seconds on a busy CI machine (the point is
    # memory and survival, not speed; the service's own deadline is the request's timeout_ms).
    status, headers, payload = service.request("POST", "/embed", body=body, headers={"Content-Type": "application/json"},
                                               timeout=120)
    return status, json.loads(payload) if payload else None


def peak_rss_mb(process):
    with open(f"/proc/{process.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0


@test
def extreme_aspect_ratio_images_cost_their_crop(service):
    """A 1 × 40,000,000 grey PNG (77 KB) used to make the resize allocate 27 GB and abort the process."""
    for width, height in [(1, 40_000_000), (1, 100_000), (100_000, 1)]:
        data = base64.b64encode(png(width, height)).decode()
        status, body = embed(service, [{"id": "tall", "images": [{"data": data}]}], timeout_ms=60000)
        assert status == 200, (width, height, status, body)
        assert service.process.poll() is None, "the service died"
    assert peak_rss_mb(service.process) < 3000, peak_rss_mb(service.process)


@test
def a_request_pays_for_its_pixels_and_seconds_before_decoding(service):
    """Ten 1-bit PNGs of 6324² (4.9 KB each, 40 M pixels decoded each) are over the per-request budget: 413 from
    the headers, before a pixel is decoded; a WAV declaring 1 Hz is a 422."""
    bomb = base64.b64encode(png(6324, 6324, bit_depth=1)).decode()
    assert len(bomb) < 8000, len(bomb)
    status, body = embed(service, [{"id": f"b{i}", "images": [{"data": bomb}]} for i in range(10)])
    assert status == 413 and body["error"]["code"] == "request_budget_exceeded", (status, body)
    assert "limits.maxRequestPixels" in body["error"]["message"], body
    status, body = embed(service, [{"id": "hz", "audio": {"data": base64.b64encode(wav(1, 600)).decode()}}], timeout_ms=1)
    assert status == 422 and "4000 Hz" in body["error"]["message"], (status, body)


@test
def a_tls_handshake_on_the_plain_port_is_a_400_at_once(service):
    started = time.monotonic()
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as s:
        try:
            context.wrap_socket(s, server_hostname="localhost")
            raise AssertionError("a TLS handshake succeeded on the plain port")
        except ssl.SSLError:
            pass
    assert time.monotonic() - started < 5, "the handshake waited for the head timeout"
    # What the handshake got back: a plain 400 saying why.
    hello = bytes.fromhex("16030100c4010000c00303") + os.urandom(32) + bytes(200)
    received, closed = raw(service.port, hello)
    assert received.startswith(b"HTTP/1.1 400 ") and b"plain HTTP" in received and closed, received[:300]


@test
def the_port_answers_while_the_towers_load():
    """Bound first: while loading, /healthz is 200, /readyz and the API 503 (`starting`), never a refused
    connection; then ready."""
    port = free_port()
    log = open(os.devnull, "w")
    process = subprocess.Popen([BINARY, "serve", "--config", CONFIG, "--port", str(port)], stdout=log, stderr=log,
                               env=dict(os.environ, OMNIEMBED_STORE_PATH=os.path.join(clients.tempfile.mkdtemp(), "s.sqlite")))
    seen = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    ready = s.recv(4096).split(b" ")[1]
            except OSError:
                time.sleep(0.005)
                continue
            if ready == b"503":
                seen.setdefault("health", set()).add(
                    raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0].split(b" ")[1])
                api = raw(port, b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Content-Length: 13\r\nConnection: close\r\n\r\n{\"texts\":[1]}")[0]
                # While loading the API is 503 `starting`; while warming up it already answers (here: a 400).
                seen.setdefault("api", set()).add(api.split(b" ")[1] + (b" starting" if b'"starting"' in api else b""))
            if ready == b"200":
                break
            time.sleep(0.005)
        assert seen.get("health") == {b"200"}, seen
        assert b"503 starting" in seen["api"] and seen["api"] <= {b"503 starting", b"400"}, seen
    finally:
        process.terminate()
        process.wait(timeout=20)


@test
def redbot_finds_nothing_wrong_with_the_get_routes(service):
    service.request("POST", "/embed", body=json.dumps({"items": [{"id": "rb", "text": "lint me"}]}),
                    headers={"Content-Type": "application/json"})
    problems = []
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/items/rb", "/items/absent"):
        result = subprocess.run([os.path.join(VENV_BIN, "redbot"), "-o", "har", service.url(path)],
                                capture_output=True, text=True, timeout=60)
        notes = json.loads(result.stdout)["log"]["entries"][0]["_red_messages"]
        problems += [(path, n["level"], n["summary"]) for n in notes if n["level"] not in ("GOOD", "INFO")]
    assert not problems, problems


@test
def the_openapi_document_is_valid_and_served(service):
    status, headers, body = service.request("GET", "/openapi.json")
    assert status == 200 and headers["Content-Type"] == "application/json", (status, headers)
    with open(os.path.join(clients.ROOT, "Sources/Service/Resources/openapi.json"), "rb") as f:
        assert body == f.read(), "the served document is not the repository's"
    result = subprocess.run([os.path.join(VENV_BIN, "openapi-spec-validator"), "-"], input=body, capture_output=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@test
def schemathesis_finds_no_contract_violation(service):
    """Positive and negative requests generated from the served document: no 5xx (but the documented 503 and
    504, see Tests/contract/schemathesis.toml), and statuses, content types, headers and bodies as documented. Bounded for CI: a fixed seed, 40 examples per operation, 120 s at most."""
    checks = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
              "response_schema_conformance,unsupported_method,allow_header_conformance")
    config = os.path.join(clients.ROOT, "Tests/contract/schemathesis.toml")
    result = subprocess.run([os.path.join(VENV_BIN, "schemathesis"), "--config-file", config, "run", service.url("/openapi.json"),
                             "--checks", checks, "--mode", "all", "--max-examples", "40", "--seed", "18",
                             "--max-time", "120", "--workers", "2", "--no-color", "--generation-database", "none"],
                            capture_output=True, text=True, timeout=400, cwd=clients.tempfile.mkdtemp())
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert service.process.poll() is None, "the service died"


if __name__ == "__main__":
    sys.exit(clients.run(TESTS, "hostile"))
