"""deploy/compose.yaml, deploy/nginx.conf and the Dockerfile agree with Tertulia and with each
other: Docker cannot run here, so what it would run is checked against the CLI and Settings,
and nginx.conf is checked by Debian's nginx itself."""

import re
import shutil
from typing import Any

import pytest
import typer
import yaml

from tertulia import cli
from tertulia.settings import Settings
from tests.scale.topology import NGINX_CONF, REPOSITORY, Nginx

pytestmark = pytest.mark.scale

COMPOSE = REPOSITORY / "deploy" / "compose.yaml"


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def services(kind: str) -> dict[str, dict[str, Any]]:
    """The compose services whose command starts with `kind` (serve, worker)."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("command", [None])[0] == kind
    }


def command_line(arguments: list[str]) -> tuple[Any, dict[str, Any]]:
    """What `tertulia <arguments>` would run, parsed by Tertulia's own CLI."""
    commands = typer.main.get_command(cli.app).commands  # type: ignore[attr-defined]
    command = commands.get(arguments[0])
    assert command is not None, f"`tertulia {arguments[0]}` is not a command"
    context = command.make_context(arguments[0], list(arguments[1:]))
    return command, dict(context.params)


def test_compose_runs_api_processes_and_workers_with_commands_tertulia_has() -> None:
    apis, workers = services("serve"), services("worker")
    assert len(apis) >= 2 and len(workers) >= 2
    for service in [*apis.values(), *workers.values()]:
        command_line(service["command"])  # parses, or fails naming what is wrong
    for service in apis.values():
        _, options = command_line(service["command"])
        assert options["host"] == "0.0.0.0", "reachable from nginx's container"
        assert options["forwarded_allow_ips"], "nginx's X-Forwarded-For is believed"


def test_compose_sets_only_real_settings_and_shares_them() -> None:
    fields = set(Settings.model_fields)
    environments = [
        service["environment"] for service in [*services("serve").values(), *services("worker").values()]
    ]
    for environment in environments:
        names = {
            name.removeprefix("TERTULIA_").lower() for name in environment if name.startswith("TERTULIA_")
        }
        assert names - fields == set(), f"not settings: {names - fields}"
        assert {"database_url", "redis_url", "jobs", "celery_broker_url", "secret_key"} <= names
        assert environment["TERTULIA_JOBS"] == "celery"
    assert all(environment == environments[0] for environment in environments), "one configuration"
    database = compose()["services"]["postgres"]
    assert database["image"] == "pgvector/pgvector:pg16"


def test_nginx_sends_to_the_ports_the_api_processes_listen_on() -> None:
    upstreams = re.findall(r"(?m)^\s*server (\w+):(\d+)", NGINX_CONF.read_text())
    listening = {
        name: command_line(service["command"])[1]["port"] for name, service in services("serve").items()
    }
    assert sorted((name, int(port)) for name, port in upstreams) == sorted(listening.items())
    nginx = compose()["services"]["nginx"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert "80" in {port.split(":")[-1] for port in nginx["ports"]}
    assert re.search(r"(?m)^\s*listen 80;", NGINX_CONF.read_text())


def test_nginx_lets_bodies_through_up_to_tertulias_upload_limit() -> None:
    size = re.search(r"client_max_body_size (\d+)m;", NGINX_CONF.read_text())
    assert size is not None
    assert int(size.group(1)) * 1024 * 1024 >= Settings.model_fields["max_upload_bytes"].default


def test_nginx_accepts_the_configuration() -> None:
    if shutil.which("nginx") is None:
        pytest.fail("the scale tests need Debian's nginx on the PATH (apt-get install -y nginx)")
    nginx = Nginx([8001, 8002])
    try:
        checked = nginx.check()
    finally:
        nginx.stop()
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


def test_the_image_installs_the_local_scale_and_media_extras_and_runs_tertulia() -> None:
    dockerfile = (REPOSITORY / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "pip install --no-cache-dir '.[local,scale,media]'" in dockerfile
    for package in ("tesseract-ocr-spa", "tesseract-ocr-chi-sim", "ffmpeg"):  # what /multimodal runs
        assert package in dockerfile
    assert 'ENTRYPOINT ["tertulia"]' in dockerfile
    assert compose()["x-api"]["build"] == {"context": "..", "dockerfile": "Dockerfile"}
