"""Fetching URLs from a real local HTTP server, and refusing every way into the private network.

The server listens on 127.0.0.1. "Public" hosts are simulated at the two seams fetching has:
the resolver (`resolve_host`, given a fake public name) and the client's transport (which
carries traffic for that public address to the local server), so the address checks run on
real answers and the requests on real sockets.
"""

import datetime
import gzip
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tertulia.core.errors import Invalid, PayloadTooLarge, UpstreamFailed
from tertulia.core.knowledge import fetching
from tertulia.core.knowledge.fetching import FetchLimits, fetch_url, is_public_address
from tertulia.core.knowledge.parsing import parse_file

PUBLIC_IP = "93.184.216.34"
PAGE = b"<html><head><title>Hello</title></head><body><h1>Hello</h1><p>A fetched page.</p></body></html>"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def reply(self, status: int, body: bytes, content_type: str | None, **headers: str) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        path = url.path
        if path in ("/page.html", "/docs/"):
            self.reply(200, PAGE, "text/html; charset=utf-8")
        elif path == "/host":
            self.reply(200, self.headers["Host"].encode(), "text/plain")
        elif path == "/redirect":
            self.reply(302, b"", None, Location=query["to"][0])
        elif path.startswith("/chain/"):
            left = int(path.rsplit("/", 1)[1])
            if left == 0:
                self.reply(200, b"end of the chain", "text/plain")
            else:
                self.reply(301, b"", None, Location=f"/chain/{left - 1}")
        elif path == "/big":
            self.reply(200, b"x" * (2 * 1024 * 1024), "text/plain")
        elif path == "/big-unannounced":
            # no Content-Length: the body runs until the connection closes
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for _ in range(64):
                    self.wfile.write(b"y" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif path == "/gzip":
            self.reply(200, gzip.compress(PAGE), "text/html", Content_Encoding="gzip")
        elif path == "/gzip-bomb":
            self.reply(200, gzip.compress(bytes(50 * 1024 * 1024), 9), "text/plain", Content_Encoding="gzip")
        elif path == "/image.png":
            self.reply(200, b"\x89PNG\r\n\x1a\n", "image/png")
        elif path == "/untyped/notes.md":
            self.reply(200, b"# Notes\n\nSome notes.", None)
        elif path == "/report":
            self.reply(200, b"%PDF-1.4 not really", "application/pdf")
        elif path == "/slow":
            time.sleep(1.0)
            try:
                self.reply(200, b"late", "text/plain")
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif path == "/missing":
            self.reply(404, b"not found", "text/plain")
        else:
            self.reply(500, b"boom", "text/plain")


@contextmanager
def serving(tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """`127.0.0.1:port` of a real HTTP(S) server in a thread."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving() as address:
        yield address


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ssl.SSLContext]]:
    """The server over TLS, with a self-signed certificate for public.example and a context trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "public.example")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("public.example")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    trust = ssl.create_default_context(cafile=str(folder / "cert.pem"))
    with serving(context) as address:
        yield address, trust


class PublicInternet(httpx.AsyncBaseTransport):
    """Carries requests for the fake public address to the local server; records what it was asked."""

    def __init__(self, server: str, verify: ssl.SSLContext | bool = True) -> None:
        self._inner = httpx.AsyncHTTPTransport(verify=verify)
        self._port = int(server.rsplit(":", 1)[1])
        self.requests: list[tuple[str, str]] = []  # the address asked for, and the Host header

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.url.host, request.headers["host"]))
        if request.url.host == PUBLIC_IP:
            request.url = request.url.copy_with(host="127.0.0.1", port=self._port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Names the real resolver does not know: each maps to the answers it gives, one per lookup."""
    answers: dict[str, list[list[str]]] = {
        "public.example": [[PUBLIC_IP]],
        "internal.example": [["10.1.2.3"]],
        "metadata.example": [[PUBLIC_IP, "169.254.169.254"]],
    }
    real = fetching.resolve_host

    async def resolve(host: str, port: int) -> list[str]:
        if host in answers:
            queue = answers[host]
            return queue.pop(0) if len(queue) > 1 else queue[0]
        return await real(host, port)

    monkeypatch.setattr(fetching, "resolve_host", resolve)
    return answers


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as plain:
        yield plain


@pytest.fixture
async def internet(server: str) -> AsyncIterator[tuple[httpx.AsyncClient, PublicInternet]]:
    transport = PublicInternet(server)
    async with httpx.AsyncClient(transport=transport, trust_env=False) as public:
        yield public, transport


LIMITS = FetchLimits(max_bytes=1024 * 1024, max_redirects=3, timeout_seconds=5)


# --- fetching what may be fetched ------------------------------------------------------------


async def test_fetches_a_page_with_allow_private(server: str, client: httpx.AsyncClient) -> None:
    fetched = await fetch_url(f"http://{server}/page.html", client, LIMITS, allow_private=True)
    assert fetched.url == f"http://{server}/page.html"
    assert (fetched.data, fetched.media_type, fetched.filename) == (PAGE, "text/html", "page.html")
    parsed = parse_file(
        fetched.data, fetched.filename, fetched.media_type, max_bytes=10**6, max_unpacked_bytes=10**7
    )
    assert parsed.title == "Hello"


async def test_localhost_tries_each_address_until_one_connects(
    server: str, client: httpx.AsyncClient
) -> None:
    port = server.rsplit(":", 1)[1]
    fetched = await fetch_url(f"http://localhost:{port}/page.html", client, LIMITS, allow_private=True)
    assert fetched.data == PAGE


async def test_follows_redirects_and_reports_the_final_url(server: str, client: httpx.AsyncClient) -> None:
    fetched = await fetch_url(f"http://{server}/chain/3", client, LIMITS, allow_private=True)
    assert (fetched.url, fetched.data) == (f"http://{server}/chain/0", b"end of the chain")
    assert fetched.filename == "0.txt"


async def test_a_public_name_is_fetched_from_the_checked_address_with_its_host_header(
    fake_dns: dict[str, list[list[str]]], internet: tuple[httpx.AsyncClient, PublicInternet]
) -> None:
    client, transport = internet
    fetched = await fetch_url("http://public.example/host", client, LIMITS)
    assert fetched.data == b"public.example"
    assert fetched.url == "http://public.example/host"
    assert transport.requests == [(PUBLIC_IP, "public.example")]


async def test_the_address_checked_is_the_address_used(
    fake_dns: dict[str, list[list[str]]], internet: tuple[httpx.AsyncClient, PublicInternet]
) -> None:
    """DNS rebinding: a second lookup would say loopback, but there is no second lookup."""
    fake_dns["rebind.example"] = [[PUBLIC_IP], ["127.0.0.1"]]
    client, transport = internet
    fetched = await fetch_url("http://rebind.example/host", client, LIMITS)
    assert fetched.data == b"rebind.example"
    assert fake_dns["rebind.example"] == [["127.0.0.1"]]  # looked up once
    assert transport.requests == [(PUBLIC_IP, "rebind.example")]


async def test_https_is_pinned_and_the_certificate_checked_against_the_name(
    tls_server: tuple[str, ssl.SSLContext], fake_dns: dict[str, list[list[str]]]
) -> None:
    server, trust = tls_server
    fake_dns["other.example"] = [[PUBLIC_IP]]
    transport = PublicInternet(server, verify=trust)
    async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
        fetched = await fetch_url("https://public.example/host", client, LIMITS)
        assert (fetched.url, fetched.data) == ("https://public.example/host", b"public.example")
        # The same address under a name the certificate does not cover is refused by TLS.
        with pytest.raises(UpstreamFailed, match=r"could not connect to other\.example: .*certificate"):
            await fetch_url("https://other.example/host", client, LIMITS)
    assert transport.requests == [(PUBLIC_IP, "public.example"), (PUBLIC_IP, "other.example")]


async def test_gzip_bodies_are_decoded(server: str, client: httpx.AsyncClient) -> None:
    fetched = await fetch_url(f"http://{server}/gzip", client, LIMITS, allow_private=True)
    assert fetched.data == PAGE


async def test_a_missing_type_is_taken_from_the_extension(server: str, client: httpx.AsyncClient) -> None:
    fetched = await fetch_url(f"http://{server}/untyped/notes.md", client, LIMITS, allow_private=True)
    assert (fetched.media_type, fetched.filename) == ("text/markdown", "notes.md")


async def test_filenames_get_the_extension_of_their_type(server: str, client: httpx.AsyncClient) -> None:
    assert (
        await fetch_url(f"http://{server}/report", client, LIMITS, allow_private=True)
    ).filename == "report.pdf"
    assert (
        await fetch_url(f"http://{server}/docs/", client, LIMITS, allow_private=True)
    ).filename == "docs.html"


# --- refusing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://[::1]/",
        "http://10.0.0.8/admin",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://0x7f000001/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
    ],
)
async def test_private_and_local_addresses_are_refused(url: str, client: httpx.AsyncClient) -> None:
    with pytest.raises(Invalid, match=r"is a private or local address .*only public internet addresses"):
        await fetch_url(url, client, LIMITS)


async def test_a_redirect_from_a_public_name_to_loopback_is_refused(
    server: str, fake_dns: dict[str, list[list[str]]], internet: tuple[httpx.AsyncClient, PublicInternet]
) -> None:
    client, transport = internet
    with pytest.raises(Invalid, match=r"'127\.0\.0\.1' is a private or local address"):
        await fetch_url(f"http://public.example/redirect?to=http://{server}/page.html", client, LIMITS)
    with pytest.raises(Invalid, match=r"'internal\.example' is a private or local address"):
        await fetch_url("http://public.example/redirect?to=http://internal.example/", client, LIMITS)
    assert len(transport.requests) == 2  # only the public hops were ever sent


async def test_a_name_with_any_private_address_is_refused(
    fake_dns: dict[str, list[list[str]]], internet: tuple[httpx.AsyncClient, PublicInternet]
) -> None:
    client, transport = internet
    with pytest.raises(
        Invalid, match=r"'metadata\.example' is a private or local address \(169\.254\.169\.254\)"
    ):
        await fetch_url("http://metadata.example/", client, LIMITS)
    assert transport.requests == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/file.txt", "only http and https URLs can be fetched, not 'ftp'"),
        ("file:///etc/passwd", "only http and https URLs can be fetched, not 'file'"),
        ("http://user:secret@example.com/", "URLs with a user name or password in them are not accepted"),
        ("http://nonexistent.invalid/", "cannot resolve host 'nonexistent.invalid'"),
    ],
)
async def test_bad_urls_are_invalid(url: str, message: str, client: httpx.AsyncClient) -> None:
    with pytest.raises(Invalid, match=message):
        await fetch_url(url, client, LIMITS, allow_private=True)


async def test_too_many_redirects_fail(server: str, client: httpx.AsyncClient) -> None:
    with pytest.raises(UpstreamFailed, match="more than 3 redirects"):
        await fetch_url(f"http://{server}/chain/10", client, LIMITS, allow_private=True)


@pytest.mark.parametrize("path", ["/big", "/big-unannounced", "/gzip-bomb"])
async def test_bodies_over_the_limit_are_too_large(server: str, client: httpx.AsyncClient, path: str) -> None:
    with pytest.raises(PayloadTooLarge, match="is larger than the limit of 1048576 bytes"):
        await fetch_url(f"http://{server}{path}", client, LIMITS, allow_private=True)


async def test_a_type_that_cannot_be_read_is_refused(server: str, client: httpx.AsyncClient) -> None:
    with pytest.raises(
        Invalid, match=r"image\.png is image/png, which cannot be read; accepted types: text/html"
    ):
        await fetch_url(f"http://{server}/image.png", client, LIMITS, allow_private=True)


async def test_a_slow_server_times_out(server: str, client: httpx.AsyncClient) -> None:
    limits = FetchLimits(timeout_seconds=0.2)
    with pytest.raises(UpstreamFailed, match=f"timed out fetching http://{server}/slow"):
        await fetch_url(f"http://{server}/slow", client, limits, allow_private=True)


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/fail", 500)])
async def test_error_statuses_fail_upstream(
    server: str, client: httpx.AsyncClient, path: str, status: int
) -> None:
    with pytest.raises(UpstreamFailed, match=f"the server answered {status}") as caught:
        await fetch_url(f"http://{server}{path}", client, LIMITS, allow_private=True)
    assert caught.value.details == {"status": status}


async def test_a_closed_port_fails_upstream(client: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UpstreamFailed, match=r"could not connect to 127\.0\.0\.1"):
        await fetch_url(f"http://127.0.0.1:{port}/", client, LIMITS, allow_private=True)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("192.0.2.1", False),  # documentation
        ("255.255.255.255", False),
        ("ff02::1", False),
        ("fc00::1", False),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("::", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public
