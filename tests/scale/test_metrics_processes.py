"""GET /metrics under `tertulia serve --workers 2`: every scrape, whichever process answers it,
adds up both processes' figures (prometheus-client's multiprocess mode, in a folder the CLI
makes for the run and removes after)."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tertulia.settings import Settings
from tests.live_server import free_port
from tests.scale.topology import process_env, wait_healthy

pytestmark = pytest.mark.scale

REQUESTS = 40


def refused_bot_lists(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "tertulia_http_requests_total" and labels.get("route") == "/api/v1/bots/":
                if labels.get("status") == "401":
                    return sample.value
    return 0.0


def test_every_scrape_adds_up_every_process(database_url: str, redis_url: str, tmp_path: Path) -> None:
    env = process_env(
        {"database_url": database_url, "redis_url": redis_url, "model_cache_dir": Settings().model_cache_dir}
    )
    env = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | {"TMPDIR": str(tmp_path)}
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tertulia", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, log)
        [folder] = list(tmp_path.glob("tertulia-metrics-*"))
        with ThreadPoolExecutor(8) as pool:  # at once, so that both processes take some
            statuses = list(
                pool.map(lambda _: httpx.get(f"{base}/api/v1/bots/").status_code, range(REQUESTS))
            )
        assert statuses == [401] * REQUESTS

        for _ in range(6):  # a fresh connection each: either process may answer
            assert refused_bot_lists(httpx.get(f"{base}/metrics").text) == REQUESTS
        writers = {name.split("_")[-1] for name in os.listdir(folder) if name.startswith("counter_")}
        assert len(writers) == 2, writers  # counter_<pid>.db: both processes count into the folder
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert not folder.exists()  # made for the run, removed after it
