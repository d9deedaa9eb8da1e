"""Fetching a web page or file for a knowledge base, without letting a URL reach inside the network.

Every hop (the first URL and each redirect) is resolved here and refused when any address
of its host is private, loopback, link-local, multicast, reserved or unspecified; the
request then goes to the checked address itself, with the name in the Host header and in
TLS's SNI (whose certificate is verified against the name), so a DNS answer that changes
between the check and the connection (DNS rebinding) is never used. A proxy configured on
the client still receives the checked address, not the name.
"""

import asyncio
import ipaddress
import socket
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote

import anyio
import httpx

from tertulia.core.errors import Invalid, PayloadTooLarge, UpstreamFailed
from tertulia.core.knowledge.parsing import DOCX, SUPPORTED, XLSX

REDIRECTS = {301, 302, 303, 307, 308}

# The extension a fetched body is saved under, so that parse_file reads it as what it is.
EXTENSIONS: dict[str, str] = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/csv": ".csv",
    "application/json": ".json",
    "application/pdf": ".pdf",
    DOCX: ".docx",
    XLSX: ".xlsx",
}

# Where an IPv6 address carries an IPv4 one that a gateway will reach: NAT64 well-known prefix.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    timeout_seconds: float = 20.0  # for the whole fetch, every redirect and the body included
    allowed_types: tuple[str, ...] = tuple(EXTENSIONS)


@dataclass(frozen=True)
class Fetched:
    url: str
    data: bytes
    media_type: str
    filename: str


async def resolve_host(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, in the resolver's order (the seam tests replace)."""
    loop = asyncio.get_running_loop()
    answers = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(answer[4][0]) for answer in answers))


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )


async def fetch_url(
    url: str, client: httpx.AsyncClient, limits: FetchLimits, *, allow_private: bool = False
) -> Fetched:
    """GETs `url`, following up to `limits.max_redirects` redirects, each hop checked again."""
    try:
        with anyio.fail_after(limits.timeout_seconds):
            return await _fetch(url, client, limits, allow_private)
    except (TimeoutError, httpx.TimeoutException) as error:
        raise UpstreamFailed(f"timed out fetching {url}", subsystem="fetch") from error


async def _fetch(url: str, client: httpx.AsyncClient, limits: FetchLimits, allow_private: bool) -> Fetched:
    current = _parse_url(url)
    for _hop in range(limits.max_redirects + 1):
        response = await _send(current, client, limits, allow_private)
        try:
            if response.status_code in REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise UpstreamFailed(f"{current} redirected without saying where to", subsystem="fetch")
                try:
                    current = _parse_url(str(current.join(location)))
                except httpx.InvalidURL as error:
                    raise Invalid(f"{current} redirected to an invalid URL") from error
                continue
            if response.status_code >= 400:
                raise UpstreamFailed(
                    f"fetching {current} failed: the server answered {response.status_code}",
                    {"status": response.status_code},
                    subsystem="fetch",
                )
            if response.status_code != 200:
                raise UpstreamFailed(
                    f"fetching {current} failed: unexpected status {response.status_code}",
                    {"status": response.status_code},
                    subsystem="fetch",
                )
            media_type = _media_type(response, current, limits)
            data = await _read_body(response, current, limits.max_bytes)
        except httpx.TimeoutException:
            raise
        except httpx.HTTPError as error:
            raise UpstreamFailed(f"fetching {current} failed: {error}", subsystem="fetch") from error
        finally:
            await response.aclose()
        return Fetched(str(current), data, media_type, _filename(current, media_type))
    raise UpstreamFailed(
        f"fetching {url} failed: more than {limits.max_redirects} redirects", subsystem="fetch"
    )


async def check_url(url: str, *, allow_private: bool = False) -> None:
    """Refuses at once a URL that cannot be fetched: not http(s), no host, a host that does
    not resolve or resolves to a private or local address. The fetch checks again, on the
    addresses it connects to (a name may resolve differently by then)."""
    parsed = _parse_url(url)
    await _addresses(parsed, allow_private)


def _parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise Invalid(f"{url!r} is not a valid URL") from error
    if parsed.scheme not in ("http", "https"):
        raise Invalid(f"only http and https URLs can be fetched, not {parsed.scheme or 'this'!r}")
    if parsed.userinfo:
        raise Invalid("URLs with a user name or password in them are not accepted")
    if not parsed.raw_host:
        raise Invalid(f"{url!r} has no host")
    return parsed


async def _addresses(url: httpx.URL, allow_private: bool) -> list[str]:
    """The host's addresses, every one of them public unless private ones are allowed."""
    host = url.raw_host.decode("ascii")
    try:
        addresses = await resolve_host(host, url.port or (443 if url.scheme == "https" else 80))
    except (OSError, UnicodeError) as error:  # socket.gaierror is an OSError
        raise Invalid(f"cannot resolve host {host!r}") from error
    if not addresses:
        raise Invalid(f"cannot resolve host {host!r}")
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise Invalid(
                    f"{host!r} is a private or local address ({address}); "
                    "only public internet addresses can be fetched",
                    {"host": host},
                )
    return addresses


async def _send(
    url: httpx.URL, client: httpx.AsyncClient, limits: FetchLimits, allow_private: bool
) -> httpx.Response:
    """Sends the request to each checked address of the host in turn until one connects."""
    host = url.raw_host.decode("ascii")
    addresses = await _addresses(url, allow_private)
    is_name = not _is_ip(host)
    failure: httpx.HTTPError | None = None
    for address in addresses:
        try:
            pinned = url.copy_with(host=address)
        except httpx.InvalidURL:  # a scoped IPv6 address (fe80::1%eth0) has no URL form
            continue
        request = client.build_request(
            "GET",
            pinned,
            headers={"Host": url.netloc.decode("ascii"), "Accept-Encoding": "gzip, deflate"},
            timeout=limits.timeout_seconds,
            extensions={"sni_hostname": host} if is_name and url.scheme == "https" else None,
        )
        try:
            return await client.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as error:
            failure = error
        except httpx.TimeoutException:
            raise
        except httpx.HTTPError as error:
            raise UpstreamFailed(f"fetching {url} failed: {error}", subsystem="fetch") from error
    raise UpstreamFailed(
        f"could not connect to {host}" + (f": {failure}" if failure else ""), subsystem="fetch"
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _media_type(response: httpx.Response, url: httpx.URL, limits: FetchLimits) -> str:
    declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not declared or declared == "application/octet-stream":
        # No useful type: go by the URL's extension, as a browser saving the file would.
        declared = SUPPORTED.get(PurePosixPath(url.path).suffix.lower(), declared)
    if declared not in limits.allowed_types:
        raise Invalid(
            f"{url} is {declared or 'of no declared type'}, which cannot be read; "
            f"accepted types: {', '.join(limits.allowed_types)}",
            {"media_type": declared},
        )
    return declared


async def _read_body(response: httpx.Response, url: httpx.URL, max_bytes: int) -> bytes:
    """The body, decoded, stopping as soon as it passes `max_bytes` (compressed or not)."""
    too_large = PayloadTooLarge(f"{url} is larger than the limit of {max_bytes} bytes", {"limit": max_bytes})
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes and "content-encoding" not in response.headers:
        raise too_large
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decompressor = zlib.decompressobj()
    elif encoding in ("", "identity"):
        decompressor = None
    else:
        raise UpstreamFailed(
            f"{url} was sent with an unsupported content encoding {encoding!r}", subsystem="fetch"
        )
    body = bytearray()
    try:
        async for raw in response.aiter_raw():
            pending = raw
            while pending:
                if decompressor is None:
                    body += pending
                    pending = b""
                else:
                    body += decompressor.decompress(pending, max_bytes + 1 - len(body))
                    pending = decompressor.unconsumed_tail
                if len(body) > max_bytes:
                    raise too_large
    except zlib.error as error:
        raise UpstreamFailed(
            f"{url} sent a body that could not be decompressed", subsystem="fetch"
        ) from error
    return bytes(body)


def _filename(url: httpx.URL, media_type: str) -> str:
    segments = [unquote(segment) for segment in url.path.split("/") if segment]
    stem = segments[-1] if segments else url.host
    stem = "".join(char if char.isalnum() or char in "-_." else "_" for char in stem).strip("._")[:200]
    extension = EXTENSIONS.get(media_type, "")
    if not extension:
        return stem or "download"
    if SUPPORTED.get(PurePosixPath(stem).suffix.lower()) == SUPPORTED[extension]:
        return stem  # already says what it is (.htm for an HTML page, say)
    return (stem or "page") + extension


__all__ = ["FetchLimits", "Fetched", "fetch_url", "is_public_address", "resolve_host"]
