#!/usr/bin/env python3
"""Real clients against the real binary: curl, Python's http.client and raw sockets.

Usage: Tests/Clients/test-clients.py PATH/TO/omniembed

Starts the service on free loopback ports (waiting for /readyz by polling, never by a fixed sleep),
checks what the Swift suites cannot see from inside the process (command line, configuration file and
environment overrides, log output, SIGTERM handling and exit code), and prints `clients: N passed, N failed`.
"""
import base64
import gzip
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "config", "default.json")
BINARY = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, ".build/debug/omniembed")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """One `omniembed serve` process with its stderr captured."""

    def __init__(self, env=None, args=(), unset=(), store=None, tls=None):
        self.tls = tls  # an ssl.SSLContext when the service speaks TLS
        self.port = free_port()
        self.log = tempfile.TemporaryFile(mode="w+")
        # Each service gets its own item store unless told which: tests never share (or touch the repository's) data.
        self.store = store or os.path.join(tempfile.mkdtemp(prefix="omniembed-clients-"), "items.sqlite")
        environment = {k: v for k, v in os.environ.items() if k not in unset}
        environment["OMNIEMBED_STORE_PATH"] = self.store
        environment.update(env or {})
        self.process = subprocess.Popen(
            [BINARY, "serve", "--config", CONFIG, "--port", str(self.port), *args],
            stdout=self.log, stderr=self.log, env=environment)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("service exited early: " + self.logs())
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.02)  # polling interval, not a wait for a known duration
        raise RuntimeError("service did not become ready")

    def request(self, method, path, body=None, headers=None, timeout=5):
        connection = (http.client.HTTPSConnection("localhost", self.port, timeout=timeout, context=self.tls)
                      if self.tls else http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout))
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def logs(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def make_certificate(directory, name, cn="localhost"):
    """A self-signed certificate for `cn` (also its own CA) made by the openssl CLI: (certificate, key) paths."""
    certificate, key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + "-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return certificate, key


def new_key(name, scopes):
    """`omniembed keys new`: (key, keys-file line)."""
    out = subprocess.run([BINARY, "keys", "new", name, "--scopes", scopes], check=True, capture_output=True,
                         text=True).stdout
    fields = dict(line.split(":  ", 1) if line.startswith("key:") else line.split(": ", 1) for line in out.splitlines())
    return fields["key"].strip(), fields["line"].strip()


def curl(*args):
    result = subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=20)
    return result.returncode, result.stdout, result.stderr.decode()


def raw(port, data, read_timeout=5):
    """Sends bytes, returns everything received until the server closes, and whether it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(data)
        received = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return received, True
                received += chunk
        except socket.timeout:
            return received, False


TESTS = []


def test(function):
    TESTS.append(function)
    return function


@test
def help_documents_every_option():
    out = subprocess.run([BINARY, "serve", "--help"], capture_output=True, text=True, timeout=10).stdout
    for option in ("--config", "--host", "--port", "--log-level", "OMNIEMBED_PORT"):
        assert option in out, f"{option} missing from --help"


@test
def curl_basic_routes(service):
    code, out, _ = curl("-i", service.url("/healthz"))
    assert code == 0 and out.startswith(b"HTTP/1.1 200 OK\r\n"), out
    assert b"\r\nServer: omniembed\r\n" in out and b"\r\nDate: " in out and b"X-Request-Id: " in out
    assert out.endswith(b'{"status":"ok"}')
    code, out, _ = curl("-i", "-X", "POST", service.url("/healthz"))
    assert b" 405 " in out.split(b"\r\n")[0] and b"\r\nAllow: GET, HEAD\r\n" in out, out
    body = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "method_not_allowed", body
    code, out, _ = curl("-i", service.url("/no/such/route"))
    assert b" 404 " in out.split(b"\r\n")[0]
    assert json.loads(out.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "not_found"


@test
def curl_head_keepalive_and_http10(service):
    code, out, _ = curl("-I", service.url("/healthz"))
    assert b"Content-Length: 15" in out and out.endswith(b"\r\n\r\n"), out
    # Two URLs in one curl run reuse the connection.
    code, out, err = curl("-v", service.url("/healthz"), service.url("/readyz"))
    assert "Re-using existing connection" in err or "Reusing existing" in err, err
    code, out, _ = curl("-i", "--http1.0", service.url("/healthz"))
    assert b"\r\nConnection: close\r\n" in out, out


@test
def curl_chunked_upload_and_expect_continue(service):
    payload = b"x" * 200_000
    with tempfile.NamedTemporaryFile() as f:
        f.write(payload)
        f.flush()
        # curl sends Expect: 100-continue for large bodies and waits for the interim response.
        code, out, err = curl("-v", "-i", "-X", "POST", "--data-binary", "@" + f.name,
                              "-H", "Expect: 100-continue", service.url("/healthz"))
        assert "HTTP/1.1 100 Continue" in err, err
        assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 405 "), out
        code, out, _ = curl("-i", "-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary",
                            "@" + f.name, service.url("/healthz"))
        assert b" 405 " in out.split(b"\r\n")[0], out


@test
def curl_compressed_metrics(service):
    service.request("GET", "/healthz")
    code, out, _ = curl("-i", "--compressed", service.url("/metrics"))
    head, body = out.split(b"\r\n\r\n", 1)
    assert b"Content-Encoding: gzip" in head, head
    text = body.decode()
    assert 'http_request_duration_seconds_bucket{route="/healthz",method="GET",status="200"' in text, text[:500]
    for family in ("http_open_connections", "http_requests_in_flight", "http_received_bytes_total",
                   "http_sent_bytes_total", "http_connections_total"):
        assert f"# TYPE {family} " in text, family


@test
def curl_tokenize(service):
    code, out, _ = curl("-X", "POST", "-H", "Content-Type: application/json",
                        "--data-binary", '{"texts": ["Café au lait", "東京 naïve"]}', service.url("/tokenize"))
    data = json.loads(out)["data"]
    # Expected values from Hugging Face tokenizers on the same tokenizer.json.
    assert data[0]["tokens"] == ["[CLS]", "cafe", "au", "lai", "##t", "[SEP]"], data
    assert data[1]["ids"] == [101, 1879, 1755, 15743, 102], data
    code, out, _ = curl("-i", "-X", "POST", "-H", "Content-Type: application/json",
                        "--data-binary", '{"texts": "not a list"}', service.url("/tokenize"))
    assert b" 400 " in out.split(b"\r\n")[0] and b'"invalid_json"' in out, out
    code, out, _ = curl("-i", "-X", "POST", "--data-binary", '{"texts": ["a"]}', service.url("/tokenize"))
    assert b" 415 " in out.split(b"\r\n")[0], out  # curl's default form content type


@test
def curl_embed(service):
    code, out, _ = curl("-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                        '{"items": [{"id": "v1", "text": "a cat on a sofa"}, {"id": "v2", "text": "a kitten on a couch"},'
                        ' {"id": "v3", "text": "quarterly tax filing deadline"}]}', service.url("/embed"))
    body = json.loads(out)
    assert body["dimensions"] == 384 and [d["id"] for d in body["data"]] == ["v1", "v2", "v3"], body
    v1, v2, v3 = (d["embedding"] for d in body["data"])
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))
    assert abs(dot(v1, v1) - 1) < 1e-4, dot(v1, v1)  # normalised
    assert dot(v1, v2) > dot(v1, v3) + 0.2, (dot(v1, v2), dot(v1, v3))  # related texts are closer


@test
def http_client_embeds_photos_and_audio(service):
    """Base64 JPEGs and a WAV through Python's http.client: each photo lands nearest its own words."""
    import base64

    def encoded(path):
        return base64.b64encode(open(os.path.join(ROOT, path), "rb").read()).decode()
    photos = ["cat", "coffee", "rocket"]
    items = [{"id": name, "images": [{"data": encoded(f"Tests/MediaTests/Fixtures/images/preprocess/{name}.jpg")}]}
             for name in photos]
    items.append({"id": "melody", "audio": {"data": encoded("Tests/ModelsTests/Fixtures/musicnn/melody.wav")}})
    items += [{"id": f"q-{name}", "text": text} for name, text in
              zip(photos, ["a cat", "a cup of coffee", "a rocket"])]
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
    connection.request("POST", "/embed", json.dumps({"items": items, "return": ["embedding", "modalities"]}),
                       {"Content-Type": "application/json"})
    response = connection.getresponse()
    body = json.loads(response.read())
    assert response.status == 200, body
    vectors = {d["id"]: d["embedding"] for d in body["data"]}
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))
    for name in photos:
        best = max(photos, key=lambda photo: dot(vectors[f"q-{name}"], vectors[photo]))
        assert best == name, (name, best)
    melody = next(d for d in body["data"] if d["id"] == "melody")
    assert len(melody["modalities"]["audio"]) == 384 and melody["modalities_used"] == ["audio"], melody.keys()
    assert body["usage"]["images"] == 3 and 6 < body["usage"]["audio_seconds"] < 8, body["usage"]


@test
def http_client_keepalive_request_ids_and_errors(service):
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
    seen = set()
    for i in range(5):
        connection.request("GET", "/healthz", headers={"X-Request-Id": f"client-{i}"})
        response = connection.getresponse()
        assert response.status == 200 and response.read() == b'{"status":"ok"}'
        assert response.getheader("X-Request-Id") == f"client-{i}"
        seen.add(connection.sock.getsockname())
    assert len(seen) == 1, "keep-alive connection was not reused"
    connection.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
    response = connection.getresponse()
    assert response.getheader("Content-Encoding") == "gzip"
    assert b"http_request_duration_seconds" in gzip.decompress(response.read())
    connection.request("DELETE", "/readyz")
    response = connection.getresponse()
    assert response.status == 405 and response.getheader("Allow") == "GET, HEAD"
    assert json.loads(response.read())["error"]["code"] == "method_not_allowed"
    connection.close()


@test
def raw_socket_smuggling_and_limits(service):
    cases = [
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 20000 + b"\r\n\r\n", 431),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\n", 413),
    ]
    for request, status in cases:
        received, closed = raw(service.port, request)
        assert received.startswith(b"HTTP/1.1 %d " % status), (request[:60], received[:80])
        assert b"\r\nConnection: close\r\n" in received and closed, request[:60]


@test
def environment_overrides_the_config_file():
    service = Service(env={"OMNIEMBED_HTTP_MAX_BODY_BYTES": "100", "OMNIEMBED_LOG_FORMAT": "json"})
    try:
        status, _, body = service.request("POST", "/healthz", body=b"x" * 101)
        assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large", (status, body)
        status, _, _ = service.request("POST", "/healthz", body=b"x" * 100)
        assert status == 405
        service.request("GET", "/healthz", headers={"X-Request-Id": "log-check"})
    finally:
        assert service.stop() == 0
    lines = [json.loads(line) for line in service.logs().splitlines() if line.startswith("{")]
    request_lines = [line for line in lines if line.get("request_id") == "log-check"]
    assert request_lines, service.logs()
    line = request_lines[0]
    assert line["level"] == "info" and line["msg"] == "request"
    assert line["method"] == "GET" and line["path"] == "/healthz" and line["status"] == "200"
    assert float(line["duration_ms"]) >= 0
    listening = [line for line in lines if line["msg"] == "listening"][0]
    assert listening["host"] == "127.0.0.1", listening


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


@test
def blas_kernel_is_chosen_before_openblas_loads_and_logged():
    def blas_line(env):
        service = Service(env=dict(env, OMNIEMBED_LOG_FORMAT="json"),
                          unset=("OPENBLAS_CORETYPE", "OMNIEMBED_BLAS_CORETYPE", "OMNIEMBED_BLAS_CORETYPE_REPLACED"))
        assert service.stop() == 0
        lines = [json.loads(line) for line in service.logs().splitlines() if line.startswith("{")]
        return [line for line in lines if line["msg"] == "blas"][0]
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= cpu_flags():
        assert blas_line({})["kernel"] == "SkylakeX"
        # A machine-wide OPENBLAS_CORETYPE naming a slower kernel is replaced, and the log says so.
        line = blas_line({"OPENBLAS_CORETYPE": "Haswell"})
        assert (line["kernel"], line.get("replaced")) == ("SkylakeX", "Haswell"), line
    else:
        assert blas_line({})["kernel"] not in ("", "unknown")
    assert blas_line({"OMNIEMBED_BLAS_CORETYPE": "Haswell"})["kernel"] == "Haswell"  # the service's own setting wins
    assert blas_line({})["packed_linear_rows"]


@test
def offline_embed_matches_the_reference():
    fixtures = [json.loads(line) for line in open(os.path.join(ROOT, "Tests/ModelsTests/Fixtures/embeddings-minilm.jsonl"))][:40]
    with tempfile.TemporaryDirectory() as work:
        source, target = os.path.join(work, "items.jsonl"), os.path.join(work, "out.jsonl")
        with open(source, "w") as f:
            for index, fixture in enumerate(fixtures):
                f.write(json.dumps({"id": f"item-{index}", "text": fixture["text"]}) + "\n")
                if index == 10:
                    f.write("\n")  # blank lines are skipped
        environment = dict(os.environ, OMNIEMBED_STORE_PATH=os.path.join(work, "items.sqlite"))
        command = [BINARY, "embed", "--config", CONFIG, "--input", source, "--output", target, "--batch-size", "16"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
        assert result.returncode == 0, result.stderr
        assert "embedded 40 items" in result.stderr and "unchanged" not in result.stderr, result.stderr
        lines = [json.loads(line) for line in open(target)]
        assert [line["id"] for line in lines] == [f"item-{i}" for i in range(40)]
        for line, fixture in zip(lines, fixtures):  # reference: sentence-transformers
            cosine = sum(a * b for a, b in zip(line["embedding"], fixture["embedding"]))
            assert cosine >= 0.99999, (line["id"], cosine)
        # The same pipeline and store as the service: a second run answers every item from the store.
        again = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
        assert again.returncode == 0 and "(40 unchanged, from the store)" in again.stderr, again.stderr
        assert all(json.loads(line)["cached"] for line in open(target))
        with open(source, "a") as f:
            f.write('{"id": "broken", "txt": 1}\n')
        result = subprocess.run([BINARY, "embed", "--config", CONFIG, "--input", source, "--output", target],
                                capture_output=True, text=True, timeout=300, env=environment)
        assert result.returncode != 0 and "items.jsonl:42" in result.stderr, result.stderr


@test
def offline_embed_takes_videos():
    """`omniembed embed` reads the same items as /embed: a video line is its cover, frames and soundtrack."""
    video = base64.b64encode(open(os.path.join(ROOT, "Tests/MediaTests/Fixtures/video/h264-aac.mp4"), "rb").read()).decode()
    with tempfile.TemporaryDirectory() as work:
        source, target = os.path.join(work, "items.jsonl"), os.path.join(work, "out.jsonl")
        with open(source, "w") as f:
            f.write(json.dumps({"id": "clip", "video": {"data": video, "frames": 3}}) + "\n")
            f.write(json.dumps({"id": "sound", "video": {"data": video, "frames": 0}}) + "\n")
        environment = dict(os.environ, OMNIEMBED_STORE_PATH=os.path.join(work, "items.sqlite"))
        result = subprocess.run([BINARY, "embed", "--config", CONFIG, "--input", source, "--output", target],
                                capture_output=True, text=True, timeout=300, env=environment)
        assert result.returncode == 0 and "embedded 2 items" in result.stderr, result.stderr
        lines = [json.loads(line) for line in open(target)]
        assert [line["id"] for line in lines] == ["clip", "sound"], lines
        assert all(len(line["embedding"]) == 384 for line in lines)
        # Cover, 3 frames and soundtrack against the cover and soundtrack alone (0 frames): two different vectors.
        assert lines[0]["embedding"] != lines[1]["embedding"]
        # A damaged video: our error naming the line, and none of FFmpeg's own log lines on stderr.
        damaged = base64.b64encode(base64.b64decode(video)[:20000] + os.urandom(9000)).decode()
        with open(source, "a") as f:
            f.write(json.dumps({"id": "damaged", "video": {"data": damaged}}) + "\n")
        result = subprocess.run([BINARY, "embed", "--config", CONFIG, "--input", source, "--output", target],
                                capture_output=True, text=True, timeout=300, env=environment)
        assert result.returncode != 0 and "items.jsonl:3" in result.stderr, result.stderr
        assert not re.search(r"\[(mov|h264|aac|matroska)[^\]]* @ 0x", result.stderr), result.stderr


@test
def kill_9_under_load_loses_no_acknowledged_item():
    """Writers embed and store items concurrently; SIGKILL mid-load; every acknowledged item is in a database
    that passes SQLite's integrity check, and the restarted service serves them from the store."""
    import sqlite3
    import threading
    service = Service()
    acknowledged, lock, stop = [], threading.Lock(), threading.Event()

    def text_of(item):
        return f"item {item} about topic {int(item.split('-')[1]) % 17}"

    def writer(worker):
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
        n = 0
        while not stop.is_set():
            ids = [f"w{worker}-{n}-{k}" for k in range(4)]
            n += 1
            body = json.dumps({"items": [{"id": i, "text": text_of(i)} for i in ids]})
            try:
                connection.request("POST", "/embed", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
            except OSError:
                return
            if response.status == 200:
                with lock:
                    acknowledged.extend(ids)
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            if len(acknowledged) >= 400:
                break
        time.sleep(0.01)  # polling interval
    service.process.kill()  # SIGKILL: no shutdown, no flush
    service.process.wait()
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) >= 400, len(acknowledged)
    database = sqlite3.connect(service.store)
    assert database.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {row[0] for row in database.execute("SELECT id FROM items")}
    database.close()
    lost = [i for i in acknowledged if i not in stored]
    assert not lost, f"{len(lost)} acknowledged items lost, e.g. {lost[:3]}"
    restarted = Service(store=service.store)
    try:
        sample = acknowledged[:: max(1, len(acknowledged) // 20)]
        body = json.dumps({"items": [{"id": i, "text": text_of(i)} for i in sample]})
        status, _, raw_body = restarted.request("POST", "/embed", body, {"Content-Type": "application/json"})
        assert status == 200, raw_body
        assert all(d["cached"] for d in json.loads(raw_body)["data"]), "restarted service re-encoded stored items"
        status, _, raw_body = restarted.request("GET", "/items/" + acknowledged[0])
        assert status == 200 and len(json.loads(raw_body)["embedding"]) == 384
    finally:
        restarted.stop()


@test
def openai_python_client_works_unchanged():
    """The official `openai` package (pinned, in a test venv) against `/v1/embeddings`."""
    python = os.environ.get("OMNIEMBED_TEST_PYTHON")
    assert python, "OMNIEMBED_TEST_PYTHON (the test venv's python, set by scripts/test) is not set"
    service = Service()
    try:
        script = f"""
import base64, json, struct, openai
client = openai.OpenAI(base_url="http://127.0.0.1:{service.port}/v1", api_key="unused")
one = client.embeddings.create(model="all-MiniLM-L6-v2", input="a cat on a sofa")
many = client.embeddings.create(model="all-MiniLM-L6-v2", input=["a cat on a sofa", "tax forms"], dimensions=128)
packed = client.embeddings.create(model="all-MiniLM-L6-v2", input=["a cat on a sofa"], encoding_format="base64")
try:
    client.embeddings.create(model="no-such-model", input="x")
    missing = None
except openai.NotFoundError as error:
    missing = error.status_code
print(json.dumps({{"one": one.data[0].embedding, "many": [d.embedding for d in many.data],
                   "tokens": one.usage.prompt_tokens, "packed": packed.data[0].embedding, "missing": missing}}))
"""
        result = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        out = json.loads(result.stdout)
        assert len(out["one"]) == 384 and [len(v) for v in out["many"]] == [128, 128] and out["tokens"] > 2, out.keys()
        assert out["missing"] == 404
        dot = lambda a, b: sum(x * y for x, y in zip(a, b))
        assert abs(dot(out["one"], out["one"]) - 1) < 1e-4
        packed = out["packed"]
        if isinstance(packed, str):  # the client returns the base64 string as sent
            import base64
            import struct
            raw = base64.b64decode(packed)
            packed = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        assert max(abs(a - b) for a, b in zip(packed, out["one"])) < 1e-6
    finally:
        service.stop()


def catalogue(count):
    """`count` distinct short item titles."""
    subjects = ["a cat", "an old fisherman", "two kids", "a chef", "the band", "a cyclist", "my grandmother",
                "a robot", "the goalkeeper", "a street dancer", "a barista", "the astronaut"]
    actions = ["cooks noodles", "repairs a bike", "sings in the rain", "climbs a mountain", "reads a mystery novel",
               "paints a mural", "plays chess", "films a tutorial", "feeds pigeons", "trains for a marathon",
               "reviews a phone", "builds a treehouse"]
    places = ["in Tokyo", "at the beach", "in a tiny kitchen", "on a rooftop", "in the snow", "at night"]
    texts = [f"{s} {a} {p}" for p in places for a in actions for s in subjects]
    return texts[:count]


@test
def fit_match_and_reload_agree_with_numpy():
    """`omniembed fit` on a running service's store, its report recounted by NumPy, SIGHUP picks the codebook up,
    and /match features equal NumPy over the vectors and codes /items serves."""
    import numpy as np
    directory = tempfile.mkdtemp(prefix="omniembed-fit-")
    codebook = os.path.join(directory, "codebook.safetensors")
    service = Service(env={"OMNIEMBED_CODEBOOK_PATH": codebook})
    try:
        texts = catalogue(240)
        ids = [f"t{i}" for i in range(len(texts))]
        for start in range(0, len(texts), 60):
            items = [{"id": i, "text": t} for i, t in zip(ids[start:start + 60], texts[start:start + 60])]
            status, _, body = service.request("POST", "/embed", json.dumps({"items": items}),
                                              {"Content-Type": "application/json"})
            assert status == 200 and "semantic_id" not in json.loads(body)["data"][0], body[:300]
        status, _, body = service.request("POST", "/match", json.dumps(
            {"user": {"history": ids[:3]}, "candidates": ids[3:5], "features": ["sid_match"]}),
            {"Content-Type": "application/json"})
        assert status == 409 and json.loads(body)["error"]["code"] == "no_codebook", body

        # The fit reads the store the service is writing to (SQLite WAL: a consistent snapshot).
        codes_path, report_path = os.path.join(directory, "codes.npy"), os.path.join(directory, "report.json")
        result = subprocess.run([BINARY, "fit", "--config", CONFIG, "--clusters", "16", "--seed", "3",
                                 "--codes", codes_path, "--report", report_path], capture_output=True, text=True,
                                timeout=300, env=dict(os.environ, OMNIEMBED_STORE_PATH=service.store,
                                                      OMNIEMBED_CODEBOOK_PATH=codebook))
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"read {len(texts)} items" in result.stderr and "collision rate" in result.stdout, result
        report = json.load(open(report_path))
        codes = np.load(codes_path)
        assert codes.shape == (len(texts), 3) and codes.dtype == np.int32, codes.shape
        for level, entry in enumerate(report["levels"]):
            assert abs(entry["utilisation"] - len(np.unique(codes[:, level])) / 16) < 1e-12, (level, entry)
        _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
        assert abs(report["collision_rate"] - np.mean(counts[inverse.ravel()] > 1)) < 1e-12, report
        assert report["codebook_version"] in result.stdout

        # SIGHUP: the service loads the new codebook without a restart.
        service.process.send_signal(signal.SIGHUP)
        deadline, version = time.monotonic() + 20, None
        while time.monotonic() < deadline and version != report["codebook_version"]:
            version = json.loads(service.request("GET", "/items/t0")[2]).get("codebook_version")
            time.sleep(0.02)  # polling interval
        assert version == report["codebook_version"], (version, service.logs()[-2000:])

        served = {i: json.loads(service.request("GET", f"/items/{i}")[2]) for i in ids}
        # The codes the service assigns are the codes the fit assigned (same vectors, same codebook).
        assert sorted(tuple(s["semantic_id"]) for s in served.values()) == sorted(map(tuple, codes.tolist()))
        history, candidates = ids[::7], ids[1::11] + ["unknown-id"]
        weights = [1.0 + (i % 3) for i in range(len(history))]
        request = {"user": {"history": history, "weights": weights},
                   "candidates": candidates, "features": ["user_cos", "max_cos", "topk_mean_cos", "sim_top", "sid_match"],
                   "top_k": 4, "sim_top": 6, "recent": 12}
        status, headers, body = service.request("POST", "/match", json.dumps(request),
                                                {"Content-Type": "application/json"})
        assert status == 200, body
        answer = json.loads(body)
        assert answer["missing"] == ["unknown-id"] and answer["codebook_version"] == version, answer["missing"]
        h = np.array([served[i]["embedding"] for i in history], dtype=np.float64)
        h /= np.linalg.norm(h, axis=1, keepdims=True)
        hc = np.array([served[i]["semantic_id"] for i in history])
        w = np.array(weights[-12:])[:, None]
        user = (h[-12:] * w).sum(0)
        user /= np.linalg.norm(user)
        # Candidates answer in request order; an unknown one is flagged, not dropped.
        assert [d["id"] for d in answer["data"]] == candidates and answer["data"][-1] == {
            "id": "unknown-id", "missing": True}, answer["data"][-1]
        for row in answer["data"][:-1]:
            c = np.array(served[row["id"]]["embedding"], dtype=np.float64)
            c /= np.linalg.norm(c)
            cos = h @ c
            assert abs(row["user_cos"] - user @ c) <= 1e-5, row
            assert abs(row["max_cos"] - cos.max()) <= 1e-5
            assert abs(row["topk_mean_cos"] - np.sort(cos)[::-1][:4].mean()) <= 1e-5
            order = np.argsort(-cos, kind="stable")[:6]
            got = [entry["index"] for entry in row["sim_top"]]
            assert np.allclose(cos[got], cos[order], atol=1e-5), (got, order)  # ties may swap near-equal scores
            assert all(history[e["index"]] == e["id"] and abs(e["score"] - cos[e["index"]]) <= 1e-5
                       for e in row["sim_top"])
            code = np.array(served[row["id"]]["semantic_id"])
            expected = [int(np.all(hc[:, :l + 1] == code[:l + 1], axis=1).sum()) for l in range(3)]
            assert row["sid_match"] == expected, (row["sid_match"], expected)
    finally:
        service.stop()


@test
def fit_on_a_npy_file_with_fsq_reports_what_numpy_recounts():
    import numpy as np
    directory = tempfile.mkdtemp(prefix="omniembed-fit-")
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(40, 32))
    vectors = (centres[rng.integers(0, 40, 3000)] + 0.3 * rng.normal(size=(3000, 32))).astype(np.float32)
    vectors[1] = vectors[0]  # an exact duplicate always collides
    np.save(os.path.join(directory, "v.npy"), vectors)
    paths = {name: os.path.join(directory, name) for name in ("cb.safetensors", "c.npy", "r.json")}
    result = subprocess.run([BINARY, "fit", "--config", CONFIG, "--vectors", os.path.join(directory, "v.npy"),
                             "--output", paths["cb.safetensors"], "--levels", "2", "--clusters", "32",
                             "--fsq", "4,4", "--codes", paths["c.npy"], "--report", paths["r.json"]],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report, codes = json.load(open(paths["r.json"])), np.load(paths["c.npy"])
    assert codes.shape == (3000, 3) and report["code_counts"] == [32, 32, 16], (codes.shape, report["code_counts"])
    assert abs(report["fsq_utilisation"] - len(np.unique(codes[:, 2])) / 16) < 1e-12, report
    for level in range(2):
        assert abs(report["levels"][level]["utilisation"] - len(np.unique(codes[:, level])) / 32) < 1e-12
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    shared = counts[inverse.ravel()] > 1
    assert shared[0] and shared[1] and abs(report["collision_rate"] - shared.mean()) < 1e-12, report
    # The error falls level by level (each level quantises the previous residual).
    errors = [entry["error"] for entry in report["levels"]]
    assert errors[1] < errors[0], errors
    bad = subprocess.run([BINARY, "fit", "--config", CONFIG, "--vectors", os.path.join(directory, "v.npy"),
                          "--output", paths["cb.safetensors"], "--clusters", "5000"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "at least --clusters" in bad.stderr, bad.stderr


@test
def missing_model_fails_to_start():
    result = subprocess.run([BINARY, "serve", "--config", CONFIG], capture_output=True, text=True, timeout=20,
                            env=dict(os.environ, OMNIEMBED_MODEL_DIRECTORY="/nonexistent/model", OMNIEMBED_PORT="0"))
    assert result.returncode != 0 and "/nonexistent/model/tokenizer.json" in result.stderr, result.stderr


@test
def invalid_configuration_fails_to_start():
    result = subprocess.run([BINARY, "serve", "--config", CONFIG], capture_output=True, text=True, timeout=20,
                            env=dict(os.environ, OMNIEMBED_PORT="not-a-port"))
    assert result.returncode != 0 and "port" in result.stderr, result.stderr


@test
def the_kernel_set_is_chosen_by_the_environment():
    """OMNIEMBED_KERNELS narrows the C kernels' instruction set (logged at start); an unknown one stops the start."""
    result = subprocess.run([BINARY, "serve", "--config", CONFIG], capture_output=True, text=True, timeout=20,
                            env=dict(os.environ, OMNIEMBED_KERNELS="sse9"))
    assert result.returncode != 0 and "OMNIEMBED_KERNELS" in result.stderr, result.stderr
    service = Service(env={"OMNIEMBED_KERNELS": "portable"})
    try:
        assert "c_kernels=portable" in service.logs(), service.logs()
    finally:
        service.stop()


@test
def tls_and_api_keys_with_real_clients():
    """TLS on the listener and Bearer keys with scopes: http.client + ssl, curl, the openai client, a stalled handshake,
    TLS 1.1, plain HTTP on the TLS port, and a certificate reload under an open keep-alive connection."""
    import ssl
    directory = tempfile.mkdtemp(prefix="omniembed-tls-")
    certificate, key = make_certificate(directory, "server")
    embed_key, embed_line = new_key("ranker", "embed")
    read_key, read_line = new_key("auditor", "read")
    keys_file = os.path.join(directory, "keys")
    with open(keys_file, "w") as f:
        f.write(f"# test keys\n{embed_line}\n{read_line}\n")
    context = ssl.create_default_context(cafile=certificate)
    service = Service(env={"OMNIEMBED_TLS_CERTIFICATE_FILE": certificate, "OMNIEMBED_TLS_PRIVATE_KEY_FILE": key,
                           "OMNIEMBED_AUTH_KEYS_FILE": keys_file, "OMNIEMBED_HTTP_REQUEST_HEAD_TIMEOUT_MS": "1500"},
                      tls=context)
    try:
        body = json.dumps({"texts": ["a cat"]})
        status, headers, _ = service.request("POST", "/tokenize", body, {"Content-Type": "application/json"})
        assert status == 401 and headers.get("WWW-Authenticate") == "Bearer", (status, headers)
        status, _, answer = service.request("POST", "/tokenize", body, {"Content-Type": "application/json",
                                                                        "Authorization": f"Bearer {read_key}"})
        assert status == 403 and b"embed" in answer, (status, answer)
        status, _, answer = service.request("POST", "/tokenize", body, {"Content-Type": "application/json",
                                                                        "Authorization": f"Bearer {embed_key}"})
        assert status == 200 and b"cat" in answer, (status, answer)
        assert service.request("GET", "/healthz")[0] == 200
        # Pipelined requests in many TLS records written at once: the server reads records ahead of the one it
        # decrypts, and must answer the ones it holds even while an async handler (tokenize) has the connection.
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
            with context.wrap_socket(s, server_hostname="localhost") as tls:
                tokenize = (f"POST /tokenize HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {embed_key}\r\n"
                            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()
                for index in range(40):
                    tls.write(tokenize if index % 4 == 0 else b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
                received = b""
                while received.count(b"HTTP/1.1 200 OK\r\n") < 40:
                    chunk = tls.recv(65536)
                    assert chunk, f"closed after {received.count(b'HTTP/1.1 200')} of 40 answers"
                    received += chunk
        code, out, err = curl("--cacert", certificate, f"https://localhost:{service.port}/healthz")
        assert code == 0 and b"ok" in out, err
        # The openai client with an api_key and an https base URL.
        python = os.environ["OMNIEMBED_TEST_PYTHON"]
        script = f"""
import openai
client = openai.OpenAI(base_url="https://localhost:{service.port}/v1", api_key="{embed_key}",
                       http_client=openai.DefaultHttpxClient(verify="{certificate}"))
print(len(client.embeddings.create(model="all-MiniLM-L6-v2", input="a cat").data[0].embedding))
"""
        result = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and result.stdout.strip() == "384", result.stderr[-2000:]
        # TLS 1.1 is refused.
        old = ssl.create_default_context(cafile=certificate)
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            old.set_ciphers("ALL:@SECLEVEL=0")
            with socket.create_connection(("127.0.0.1", service.port), timeout=5) as s:
                with old.wrap_socket(s, server_hostname="localhost"):
                    raise AssertionError("a TLS 1.1 handshake succeeded")
        except (ssl.SSLError, ConnectionResetError):
            pass
        # A handshake that stalls is cut at the head deadline.
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
            s.sendall(b"\x16\x03\x01")
            started = time.monotonic()
            assert s.recv(100) == b"" and time.monotonic() - started < 8
        # The HTTP limits hold over TLS as in plain: an over-long request line is a 414, a header block past the
        # limit a 431, each answered and closed.
        for request, expected in ((b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
                                  (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 20000 + b"\r\n\r\n", 431)):
            with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
                with context.wrap_socket(s, server_hostname="localhost") as tls:
                    tls.sendall(request)
                    received = b""
                    while True:
                        chunk = tls.recv(65536)
                        if not chunk:
                            break
                        received += chunk
                    assert received.startswith(b"HTTP/1.1 %d" % expected), received[:200]
        # Plain HTTP on the TLS port: a 400 that says so.
        received, closed = raw(service.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        assert received.startswith(b"HTTP/1.1 400") and b"plain_http_on_tls_port" in received and closed, received
        # A new certificate on SIGHUP; an open keep-alive connection goes on.
        keep = http.client.HTTPSConnection("localhost", service.port, timeout=5, context=context)
        keep.request("GET", "/healthz")
        assert keep.getresponse().read() and True
        new_certificate, new_key_file = make_certificate(directory, "server2")
        os.replace(new_certificate, certificate)
        os.replace(new_key_file, key)
        service.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        fresh = ssl.create_default_context(cafile=certificate)
        while True:
            try:
                with socket.create_connection(("127.0.0.1", service.port), timeout=5) as s:
                    with fresh.wrap_socket(s, server_hostname="localhost"):
                        break
            except ssl.SSLError:
                assert time.monotonic() < deadline, "the new certificate was not served"
                time.sleep(0.1)
        keep.request("GET", "/healthz")
        assert keep.getresponse().status == 200
        keep.close()
        # Metrics by the key's name (never the key), and the listener's TLS counters.
        connection = http.client.HTTPSConnection("localhost", service.port, timeout=5, context=fresh)
        connection.request("GET", "/metrics")
        metrics = connection.getresponse().read().decode()
        connection.close()
        for line in ('api_key_refusals_total{key="",reason="unauthorized"} 1',
                     'api_key_refusals_total{key="auditor",reason="forbidden"} 1',
                     'api_key_items_total{key="ranker"} 1', 'tls_failures_total{reason="plain_http"} 1'):
            assert line in metrics, (line, [l for l in metrics.splitlines() if "api_key" in l or "tls_" in l])
        assert re.search(r'^api_key_requests_total\{key="ranker"\} (\d+)$', metrics, re.M), metrics
        assert re.search(r'^tls_handshakes_total\{version="TLSv1\.3"\} \d+$', metrics, re.M), metrics
        assert embed_key not in metrics and read_key not in metrics
    finally:
        service.stop()


def postgres_database():
    """A new database on the test cluster scripts/test starts: (url, password)."""
    url, password = os.environ["OMNIEMBED_TEST_POSTGRES_URL"], os.environ["OMNIEMBED_TEST_POSTGRES_PASSWORD"]
    name = "clients_" + os.urandom(6).hex()
    subprocess.run(["psql", "-q", url, "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True,
                   env=dict(os.environ, PGPASSWORD=password))
    return url.rsplit("/", 1)[0] + "/" + name, password


def postgres_service(url, password, env=None):
    directory = tempfile.mkdtemp(prefix="omniembed-pg-")
    password_file = os.path.join(directory, "password")
    with open(password_file, "w") as f:
        f.write(password + "\n")
    return Service(env={"OMNIEMBED_STORE_BACKEND": "postgres", "OMNIEMBED_STORE_URL": url,
                        "OMNIEMBED_STORE_PASSWORD_FILE": password_file, **(env or {})})


@test
def postgres_bank_rides_out_a_database_restart():
    """The bank on PostgreSQL: what is embedded is stored there; with the database stopped, requests that need it
    get 503 store_unavailable and /readyz says so while cached vectors still answer /match; once it is back the
    service serves again by itself, without a restart. The password never reaches the log."""
    url, password = postgres_database()
    service = postgres_service(url, password)
    control = os.environ["OMNIEMBED_TEST_POSTGRES_CTL"]
    json_headers = {"Content-Type": "application/json"}

    def embed(item_id, text):
        return service.request("POST", "/embed", json.dumps({"items": [{"id": item_id, "text": text}]}), json_headers)

    def wait_for_readiness(expected, seconds=15):
        deadline = time.monotonic() + seconds
        while True:
            status, _, body = service.request("GET", "/readyz")
            if status == expected:
                return body
            assert time.monotonic() < deadline, (status, body)
            time.sleep(0.2)

    try:
        assert embed("a", "a cat on a mat")[0] == 200 and embed("b", "a dog in the fog")[0] == 200
        rows = subprocess.run(["psql", "-Atq", url, "-c", "SELECT id, length(embedding) FROM items ORDER BY id"],
                              check=True, capture_output=True, text=True, env=dict(os.environ, PGPASSWORD=password))
        assert rows.stdout.split() == ["a|1536", "b|1536"], rows.stdout
        match = json.dumps({"user": {"history": ["a"]}, "candidates": ["b"]})
        assert service.request("POST", "/match", match, json_headers)[0] == 200
        # Load throughout the restart: every answer is a 200 or a 503 store_unavailable, and every acknowledged
        # item is in the bank afterwards.
        acknowledged, statuses, stop_load = [], [], threading.Event()

        def load():
            index = 0
            while not stop_load.is_set():
                status = embed(f"l{index}", f"item under load {index}")[0]
                statuses.append(status)
                if status == 200:
                    acknowledged.append(f"l{index}")
                index += 1
        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(0.5)
        subprocess.run([control, "stop"], check=True)
        try:
            status, _, body = embed("c", "a bird in the word")
            assert status == 503 and json.loads(body)["error"]["code"] == "store_unavailable", (status, body)
            body = wait_for_readiness(503)
            assert json.loads(body)["error"]["code"] == "store_unavailable", body
            status, _, body = service.request("POST", "/match", match, json_headers)
            assert status == 200, (status, body)  # from the cache
            status, _, body = service.request("GET", "/items/zz")
            assert status == 503, (status, body)  # not cached: needs the database
        finally:
            subprocess.run([control, "start"], check=True)
        wait_for_readiness(200)
        time.sleep(0.5)
        stop_load.set()
        loader.join(timeout=30)
        assert set(statuses) <= {200, 503} and 503 in statuses and statuses[-1] == 200, sorted(set(statuses))
        status, _, body = service.request("POST", "/items/batch_get", json.dumps({"ids": acknowledged[-256:]}), json_headers)
        assert status == 200 and json.loads(body)["missing"] == [], body[:300]
        assert embed("c", "a bird in the word")[0] == 200
        assert service.request("GET", "/items/c")[0] == 200
        assert service.process.poll() is None
        assert password not in service.logs()
    finally:
        service.stop()


def start_nginx(upstreams):
    """nginx (one worker) on a free loopback port, round robin over `upstreams` (ports): (port, stop)."""
    directory = tempfile.mkdtemp(prefix="omniembed-nginx-")
    port = free_port()
    servers = "".join(f"server 127.0.0.1:{p} max_fails=0;\n" for p in upstreams)
    with open(os.path.join(directory, "nginx.conf"), "w") as f:
        f.write(f"""worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {directory}; proxy_temp_path {directory}; fastcgi_temp_path {directory};
    uwsgi_temp_path {directory}; scgi_temp_path {directory};
    upstream replicas {{ {servers} }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://replicas; proxy_http_version 1.1; proxy_set_header Connection ""; }}
    }}
}}
""")
    subprocess.run(["nginx", "-c", os.path.join(directory, "nginx.conf")], check=True)

    def stop():
        subprocess.run(["nginx", "-c", os.path.join(directory, "nginx.conf"), "-s", "stop"], capture_output=True)
    return port, stop


@test
def two_replicas_share_one_bank_behind_nginx():
    """Two replicas on one PostgreSQL bank behind nginx (round robin): items embedded through the balancer are found
    by /match and /items/batch_get on each replica directly; a replica killed with SIGKILL during writes loses no
    acknowledged item (the other reads every one back); two sharded backfill jobs cover a file between them."""
    url, password = postgres_database()
    a, b = postgres_service(url, password), postgres_service(url, password)
    balancer, stop_balancer = start_nginx([a.port, b.port])
    json_headers = {"Content-Type": "application/json"}
    try:
        texts = catalogue(40)
        served_by = set()
        for index, text in enumerate(texts):
            connection = http.client.HTTPConnection("127.0.0.1", balancer, timeout=30)
            connection.request("POST", "/embed", json.dumps({"items": [{"id": f"c{index}", "text": text}]}), json_headers)
            response = connection.getresponse()
            assert response.status == 200, response.read()
            served_by.add(response.getheader("X-Request-Id").rsplit("-", 1)[0])
            response.read()
            connection.close()
        assert len(served_by) == 2, served_by  # both replicas took writes
        ids = [f"c{i}" for i in range(len(texts))]
        for replica in (a, b):
            status, _, body = replica.request("POST", "/match", json.dumps(
                {"user": {"history": ids[:10]}, "candidates": ids[10:]}), json_headers)
            answer = json.loads(body)
            assert status == 200 and answer["missing"] == [] and answer["history_used"] == 10, (status, body[:300])
            status, _, body = replica.request("POST", "/items/batch_get", json.dumps({"ids": ids}), json_headers)
            assert status == 200 and json.loads(body)["missing"] == [], body[:300]

        # SIGKILL during writes: every acknowledged item is on the bank.
        acknowledged, stop_writing = [], threading.Event()

        def write():
            index = 0
            while not stop_writing.is_set():
                try:
                    status, _, _ = a.request("POST", "/embed", json.dumps(
                        {"items": [{"id": f"k{index}", "text": f"{texts[index % 40]} {index}"}]}), json_headers, timeout=10)
                    if status == 200:
                        acknowledged.append(f"k{index}")
                except OSError:
                    return
                index += 1
        writer = threading.Thread(target=write)
        writer.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 20:
            assert time.monotonic() < deadline, "too few writes were acknowledged"
            time.sleep(0.05)
        a.process.kill()
        a.process.wait(timeout=10)
        stop_writing.set()
        writer.join(timeout=20)
        status, _, body = b.request("POST", "/items/batch_get", json.dumps({"ids": acknowledged[:256], "return": ["embedding"]}),
                                    json_headers)
        assert status == 200 and json.loads(body)["missing"] == [], (len(acknowledged), body[:300])

        # Two backfill jobs on one file, each taking every other line, against the shared bank.
        directory = tempfile.mkdtemp(prefix="omniembed-shards-")
        source = os.path.join(directory, "items.jsonl")
        with open(source, "w") as f:
            for index in range(30):
                f.write(json.dumps({"id": f"s{index}", "text": f"backfilled item {index} {texts[index]}"}) + "\n")
        environment = dict(os.environ, OMNIEMBED_STORE_BACKEND="postgres", OMNIEMBED_STORE_URL=url,
                           OMNIEMBED_STORE_PASSWORD=password)
        jobs = [subprocess.Popen([BINARY, "embed", "--config", CONFIG, "--input", source, "--output",
                                  os.path.join(directory, f"out{shard}.jsonl"), "--shard", f"{shard}/2"],
                                 env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for shard in range(2)]
        for job in jobs:
            _, err = job.communicate(timeout=300)
            assert job.returncode == 0, err[-2000:]
        outputs = [[json.loads(line)["id"] for line in open(os.path.join(directory, f"out{shard}.jsonl"))]
                   for shard in range(2)]
        assert outputs[0] == [f"s{i}" for i in range(0, 30, 2)] and outputs[1] == [f"s{i}" for i in range(1, 30, 2)], outputs
        status, _, body = b.request("POST", "/items/batch_get", json.dumps({"ids": [f"s{i}" for i in range(30)]}), json_headers)
        assert status == 200 and json.loads(body)["missing"] == [], body[:300]
    finally:
        stop_balancer()
        for replica in (a, b):
            if replica.process.poll() is None:
                replica.stop()


@test
def codebooks_roll_out_through_the_shared_bank():
    """`omniembed fit` on the shared bank stores its codebook there, and every replica loads it by itself; with the
    next fit (`--previous`, which also writes the code mapping) both versions stay loaded (codebook.keep: 2), a
    request pinned to the previous version still gets that version's codes, and a third fit retires the first."""
    url, password = postgres_database()
    directory = tempfile.mkdtemp(prefix="omniembed-rollout-")
    a, b = postgres_service(url, password), postgres_service(url, password)
    json_headers = {"Content-Type": "application/json"}
    environment = dict(os.environ, OMNIEMBED_STORE_BACKEND="postgres", OMNIEMBED_STORE_URL=url,
                       OMNIEMBED_STORE_PASSWORD=password, OMNIEMBED_CODEBOOK_PATH=os.path.join(directory, "codebook.safetensors"))

    def fit(seed, *extra):
        result = subprocess.run([BINARY, "fit", "--config", CONFIG, "--clusters", "8", "--levels", "2", "--seed", str(seed),
                                 *extra], capture_output=True, text=True, timeout=300, env=environment)
        assert result.returncode == 0 and "saved codebook" in result.stderr, result.stderr[-2000:]
        return re.search(r"codebook_version (\w+)", result.stdout).group(1)

    def fetch(replica, **extra):
        status, _, body = replica.request("POST", "/items/batch_get", json.dumps(
            {"ids": ["t1", "t2", "t3"], "return": ["semantic_id"], **extra}), json_headers)
        return status, json.loads(body)

    def wait_for(version):
        deadline = time.monotonic() + 15
        for replica in (a, b):
            while fetch(replica)[1].get("codebook_version") != version:
                assert time.monotonic() < deadline, f"{version} did not reach the replica on port {replica.port}"
                time.sleep(0.1)

    try:
        texts = catalogue(120)
        for start in range(0, 120, 40):
            items = [{"id": f"t{i}", "text": texts[i]} for i in range(start, start + 40)]
            assert a.request("POST", "/embed", json.dumps({"items": items}), json_headers)[0] == 200
        first = fit(1)
        wait_for(first)
        pinned = fetch(b)[1]["data"]
        mapping = os.path.join(directory, "mapping.json")
        second = fit(2, "--previous", first, "--mapping", mapping)
        assert second != first
        wait_for(second)
        for replica in (a, b):
            status, answer = fetch(replica, codebook_version=first)
            assert status == 200 and answer["codebook_version"] == first and answer["data"] == pinned, answer
        levels = json.load(open(mapping))["levels"]
        assert len(levels) == 2 and all(entry["new"] in range(8) for entry in levels[0]["old_to_new"]), levels
        row = subprocess.run(["psql", "-Atq", url, "-c", f"SELECT previous_version, mapping IS NOT NULL FROM codebooks WHERE version = '{second}'"],
                             check=True, capture_output=True, text=True, env=dict(os.environ, PGPASSWORD=password))
        assert row.stdout.strip() == f"{first}|t", row.stdout
        third = fit(3)
        wait_for(third)
        status, answer = fetch(a, codebook_version=first)
        assert status == 409 and answer["error"]["code"] == "codebook_version_mismatch", answer
        assert fetch(a, codebook_version=second)[0] == 200
    finally:
        for replica in (a, b):
            replica.stop()


@test
def a_bank_moves_between_backends_by_export_and_import():
    """`omniembed export` / `import`: SQLite's bank to JSONL, into PostgreSQL, and out again unchanged (every field of
    every record); the vectors as .npy + ids agree with /items, and come back into a new bank by import."""
    import numpy as np
    directory = tempfile.mkdtemp(prefix="omniembed-export-")
    sqlite = os.path.join(directory, "items.sqlite")
    service = Service(store=sqlite)
    try:
        texts = catalogue(30)
        items = [{"id": f"x{i}", "text": t} for i, t in enumerate(texts)] + [{"id": "ünï cødé", "fields": {"title": "a", "tags": ["b"]}}]
        assert service.request("POST", "/embed", json.dumps({"items": items}), {"Content-Type": "application/json"})[0] == 200
        reference = json.loads(service.request("GET", "/items/x7")[2])
    finally:
        service.stop()
    url, password = postgres_database()
    to_postgres = dict(os.environ, OMNIEMBED_STORE_BACKEND="postgres", OMNIEMBED_STORE_URL=url, OMNIEMBED_STORE_PASSWORD=password)
    from_sqlite = dict(os.environ, OMNIEMBED_STORE_PATH=sqlite)

    def run(env, *arguments):
        result = subprocess.run([BINARY, *arguments, "--config", CONFIG], capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stderr

    first, second = os.path.join(directory, "first.jsonl"), os.path.join(directory, "second.jsonl")
    assert "exported 31 items" in run(from_sqlite, "export", "--output", first)
    assert "imported 31 items" in run(to_postgres, "import", "--input", first)
    run(to_postgres, "export", "--output", second)
    assert sorted(open(first)) == sorted(open(second))
    record = next(json.loads(line) for line in open(second) if json.loads(line)["id"] == "x7")
    assert record["embedding"] == reference["embedding"] and record["content_hash"] == reference["content_hash"]
    vectors = os.path.join(directory, "vectors.npy")
    run(to_postgres, "export", "--output", vectors)
    ids = open(vectors + ".ids").read().split("\n")[:-1]
    matrix = np.load(vectors)
    assert matrix.shape == (31, 384) and sorted(ids) == sorted(json.loads(line)["id"] for line in open(first))
    assert np.array_equal(matrix[ids.index("x7")], np.array(reference["embedding"], dtype=np.float32))
    fresh = dict(os.environ, OMNIEMBED_STORE_PATH=os.path.join(directory, "fresh.sqlite"))
    assert "imported 31 items" in run(fresh, "import", "--input", vectors)
    back = Service(store=os.path.join(directory, "fresh.sqlite"))
    try:
        status, _, body = back.request("POST", "/items/batch_get", json.dumps({"ids": ["x7", "ünï cødé"]}), {"Content-Type": "application/json"})
        answer = json.loads(body)
        assert status == 200 and answer["missing"] == [] and answer["data"][0]["embedding"] == reference["embedding"], body[:300]
    finally:
        back.stop()


@test
def keys_and_certificate_reload_and_audit_lines():
    """The keys file is read again on SIGHUP and POST /admin/reload; a bad keys file or certificate keeps the ones in
    force and says why; DELETE and reload leave audit lines with the key's name; no key ever reaches the log; a
    missing or mismatched certificate stops the start."""
    import ssl
    directory = tempfile.mkdtemp(prefix="omniembed-reload-")
    certificate, key = make_certificate(directory, "server")
    other_certificate, other_key = make_certificate(directory, "other")
    for env, expected in (({"OMNIEMBED_TLS_CERTIFICATE_FILE": certificate, "OMNIEMBED_TLS_PRIVATE_KEY_FILE": other_key},
                           "key values mismatch"),
                          ({"OMNIEMBED_TLS_CERTIFICATE_FILE": certificate + ".missing",
                            "OMNIEMBED_TLS_PRIVATE_KEY_FILE": key}, ".missing")):
        result = subprocess.run([BINARY, "serve", "--config", CONFIG], capture_output=True, text=True, timeout=20,
                                env=dict(os.environ, OMNIEMBED_PORT="0", **env))
        assert result.returncode != 0 and expected in result.stderr, result.stderr[-2000:]
    admin_key, admin_line = new_key("operator", "admin,write")
    old_key, old_line = new_key("old-ranker", "embed")
    new_key_, new_line = new_key("new-ranker", "embed")
    keys_file = os.path.join(directory, "keys")
    with open(keys_file, "w") as f:
        f.write(f"{admin_line}\n{old_line}\n")
    context = ssl.create_default_context(cafile=certificate)
    service = Service(env={"OMNIEMBED_TLS_CERTIFICATE_FILE": certificate, "OMNIEMBED_TLS_PRIVATE_KEY_FILE": key,
                           "OMNIEMBED_AUTH_KEYS_FILE": keys_file}, tls=context)
    body = json.dumps({"texts": ["a cat"]})

    def tokenize(key):
        return service.request("POST", "/tokenize", body, {"Content-Type": "application/json",
                                                          "Authorization": f"Bearer {key}"})[0]

    try:
        assert tokenize(old_key) == 200 and tokenize(new_key_) == 401
        with open(keys_file, "w") as f:
            f.write(f"{admin_line}\n{new_line}\n")
        service.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while tokenize(new_key_) != 200:
            assert time.monotonic() < deadline, "the keys file was not read again on SIGHUP"
            time.sleep(0.1)
        assert tokenize(old_key) == 401
        # A bad keys file and a bad certificate: the reload keeps both in force.
        with open(keys_file, "w") as f:
            f.write("garbage\n")
        with open(certificate, "w") as f:
            f.write("not a certificate\n")
        admin = {"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"}
        service.request("POST", "/admin/reload", "{}", admin)
        assert tokenize(new_key_) == 200 and tokenize(old_key) == 401
        assert service.request("GET", "/healthz")[0] == 200  # a fresh handshake with the certificate in force
        assert service.request("DELETE", "/items/gone", None, admin)[0] == 404
        time.sleep(0.5)  # info lines are buffered for a moment
        logs = service.logs()
        assert "api keys reload failed; keeping the loaded ones" in logs and "line 1" in logs, logs[-3000:]
        assert "tls certificate reload failed; keeping the loaded one" in logs, logs[-3000:]
        assert re.search(r"audit: reload .*key=operator", logs) and re.search(r"audit: delete id=gone key=operator .*result=not_found", logs), logs[-3000:]
        assert re.search(r" request .*key=new-ranker", logs), logs[-3000:]
        for secret in (admin_key, old_key, new_key_):
            assert secret not in logs
    finally:
        service.stop()


@test
def mutual_tls_refuses_clients_without_a_certificate():
    import ssl
    directory = tempfile.mkdtemp(prefix="omniembed-mtls-")
    certificate, key = make_certificate(directory, "server")
    client_certificate, client_key = make_certificate(directory, "client", cn="ranker")
    context = ssl.create_default_context(cafile=certificate)
    context.load_cert_chain(client_certificate, client_key)
    service = Service(env={"OMNIEMBED_TLS_CERTIFICATE_FILE": certificate, "OMNIEMBED_TLS_PRIVATE_KEY_FILE": key,
                           "OMNIEMBED_TLS_CLIENT_CA_FILE": client_certificate}, tls=context)
    try:
        assert service.request("GET", "/healthz")[0] == 200
        # Session tickets: a second connection resumes the first one's session (client certificate included).
        session = None
        for attempt in range(2):
            with socket.create_connection(("127.0.0.1", service.port), timeout=5) as s:
                with context.wrap_socket(s, server_hostname="localhost", session=session) as tls:
                    tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
                    assert tls.recv(65536).startswith(b"HTTP/1.1 200")
                    assert tls.session_reused == (attempt == 1), (attempt, tls.version())
                    session = tls.session
        anonymous = ssl.create_default_context(cafile=certificate)
        try:
            connection = http.client.HTTPSConnection("localhost", service.port, timeout=5, context=anonymous)
            connection.request("GET", "/healthz")
            connection.getresponse()
            raise AssertionError("a client without a certificate was served")
        except (ssl.SSLError, ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
            pass
    finally:
        service.stop()


@test
def sigterm_drains_and_exits_zero():
    service = Service()
    # An idle keep-alive connection and a request whose body is still arriving.
    idle = socket.create_connection(("127.0.0.1", service.port), timeout=5)
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200")
    busy = socket.create_connection(("127.0.0.1", service.port), timeout=5)
    # The interim response proves the server has read the head: the request is in progress at the signal.
    busy.sendall(b"POST /healthz HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
    assert busy.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
    busy.sendall(b"hello")
    service.process.send_signal(signal.SIGTERM)
    assert idle.recv(65536) == b"", "idle connection not closed on drain"
    busy.sendall(b"world")
    response = busy.recv(65536)
    assert response.startswith(b"HTTP/1.1 405") and b"\r\nConnection: close\r\n" in response, response
    code = service.process.wait(timeout=15)
    assert code == 0, f"exit code {code}: {service.logs()}"
    try:
        socket.create_connection(("127.0.0.1", service.port), timeout=1).close()
        raise AssertionError("still accepting after shutdown")
    except ConnectionRefusedError:
        pass


@test
def sigint_right_after_start_still_drains():
    # Signals are watched before the port opens: one that arrives as soon as the port answers is a drain, not death.
    port = free_port()
    process = subprocess.Popen([BINARY, "serve", "--config", CONFIG, "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=15)
    log = process.stderr.read()
    assert code == 0 and "shutting down" in log, (code, log)


def run(tests, label):
    """Runs `tests` (those taking an argument get one shared service), prints `label: N passed, N failed`."""
    passed = failed = 0
    shared = Service()
    try:
        for function in tests:
            name = function.__name__
            try:
                if function.__code__.co_argcount:
                    function(shared)
                else:
                    function()
                passed += 1
                print(f"✔ {name}", flush=True)
            except Exception:
                failed += 1
                print(f"✘ {name}", flush=True)
                traceback.print_exc()
        if shared.stop() != 0:
            failed += 1
            print("✘ shared service did not exit 0 on SIGTERM")
    finally:
        if shared.process.poll() is None:
            shared.process.kill()
    print(f"{label}: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(TESTS, "clients"))
