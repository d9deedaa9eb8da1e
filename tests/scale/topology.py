"""The scale-out deployment on this machine: `tertulia serve` processes on ports of their own,
behind a real nginx started from deploy/nginx.conf with the test's ports and folders."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

import tertulia
from tests.live_server import free_port

REPOSITORY = Path(__file__).parents[2]
NGINX_CONF = REPOSITORY / "deploy" / "nginx.conf"
SOURCE = str(Path(tertulia.__file__).parents[1])  # this checkout's code, in every process


def process_env(settings: dict[str, object]) -> dict[str, str]:
    """The environment of a Tertulia process: this checkout's code and the given TERTULIA_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERTULIA_")}
    env["PYTHONPATH"] = os.pathsep.join([SOURCE, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env | {f"TERTULIA_{name.upper()}": str(value) for name, value in settings.items()}


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, within: float = 90) -> None:
    deadline = time.monotonic() + within
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not become healthy:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)


@dataclass
class ApiProcess:
    """One `tertulia serve --port P` process."""

    port: int
    env: dict[str, str]
    log: Path
    cwd: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tertulia",
                    "serve",
                    "--port",
                    str(self.port),
                    # nginx, on this machine, is the one proxy whose X-Forwarded-For is believed.
                    "--forwarded-allow-ips",
                    "127.0.0.1",
                ],
                env=self.env,
                cwd=self.cwd,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self) -> None:
        assert self.process is not None
        wait_healthy(self.url, self.process, self.log)

    def kill(self) -> None:
        """kill -9: the process is gone mid-request, as when its machine is lost."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def render_nginx_conf(conf: str, listen: int, upstreams: list[int], folder: Path) -> str:
    """deploy/nginx.conf with this machine's ports, and its pid, logs and temporary files in
    `folder`; everything else (the proxying itself) stays as deployed."""
    servers = "".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n" for port in upstreams)
    rendered, upstream_lines = re.subn(r"(?m)^ *server api\d+:8000[^\n]*;\n", "", conf)
    assert upstream_lines == 2, "deploy/nginx.conf names api1 and api2 as its upstream servers"
    rendered = rendered.replace("upstream tertulia {\n", "upstream tertulia {\n" + servers, 1)
    rendered, listens = re.subn(r"(?m)^( *)listen 80;", rf"\1listen 127.0.0.1:{listen};", rendered)
    assert listens == 1
    rendered = rendered.replace("/run/nginx.pid", str(folder / "nginx.pid"))
    rendered = rendered.replace("/var/log/nginx/", f"{folder}/")
    temporary = "".join(
        f"    {kind}_temp_path {folder}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return rendered.replace("http {\n", "http {\n" + temporary, 1)


@dataclass
class Nginx:
    """Debian's nginx, from deploy/nginx.conf, in front of the given ports."""

    upstreams: list[int]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        # Its own folder, readable by nginx's unprivileged worker processes.
        self.folder = Path(tempfile.mkdtemp(prefix="tertulia-nginx-"))
        self.folder.chmod(0o755)
        self.conf = self.folder / "nginx.conf"
        self.conf.write_text(
            render_nginx_conf(NGINX_CONF.read_text(), self.port, self.upstreams, self.folder)
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *extra: str) -> list[str]:
        error_log = str(self.folder / "error.log")
        return ["nginx", "-p", str(self.folder), "-c", str(self.conf), "-e", error_log, *extra]

    def check(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t`: the configuration parses and every path in it works."""
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command("-g", "daemon off;"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{self.url}/", timeout=1)
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"nginx did not start:\n{self.error_log()}") from None
                time.sleep(0.05)

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def upstreams_used(self) -> list[str]:
        """The upstream= of every request in the access log, in order."""
        log = (self.folder / "access.log").read_text(errors="replace")
        return re.findall(r"upstream=(\S+)", log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Topology:
    """What the tests talk to: nginx in front of the API processes."""

    apis: list[ApiProcess]
    nginx: Nginx

    @property
    def url(self) -> str:
        return self.nginx.url
