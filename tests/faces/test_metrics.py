"""GET /metrics, for operators: Prometheus' text format, read with prometheus-client's own
parser. The instruments are the process's, shared by every app a test builds, so each test
compares a value before and after what it does."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import AppFactory
from tests.faces.chatagent.conftest import sign_up
from tests.faces.chatagent.test_documents import finished, new_base, upload
from tests.faces.chatagent.test_models import ask, connect, remote_conversation
from tests.providers.standins import StandIn


async def scrape(
    client: httpx.AsyncClient, **headers: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample, by name and labels."""
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_face_route_template_and_status(client: httpx.AsyncClient) -> None:
    alice = await sign_up(client, "alice")
    before = await scrape(client)
    for bot_id in ("bot_one", "bot_two"):
        response = await client.get(f"/api/v1/bots/{bot_id}", headers=alice.headers)
        assert response.status_code == 404
    assert (await client.get("/api/v1/bots/", headers=alice.headers)).status_code == 200
    assert (await client.get("/no/such/path")).status_code == 404

    after = await scrape(client)

    # One series for every bot id asked: the route's template, not the path.
    missing = {"face": "chatagent", "method": "GET", "route": "/api/v1/bots/{bot_id}", "status": "404"}
    assert (
        value(after, "tertulia_http_requests_total", **missing)
        - value(before, "tertulia_http_requests_total", **missing)
        == 2
    )
    listed = {"face": "chatagent", "method": "GET", "route": "/api/v1/bots/", "status": "200"}
    assert (
        value(after, "tertulia_http_request_duration_seconds_count", **listed)
        - value(before, "tertulia_http_request_duration_seconds_count", **listed)
        == 1
    )
    assert value(after, "tertulia_http_request_duration_seconds_sum", **listed) > value(
        before, "tertulia_http_request_duration_seconds_sum", **listed
    )
    unmatched = {"face": "server", "method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, "tertulia_http_requests_total", **unmatched) > value(
        before, "tertulia_http_requests_total", **unmatched
    )
    # The scrape that is answering is in progress.
    assert value(after, "tertulia_http_requests_in_progress", face="server") >= 1


async def test_model_tokens_are_counted_by_provider_and_model(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    alice = await sign_up(client, "alice")
    await connect(client, alice, "openai-compatible", standin.url + "/v1")
    conversation_id = await remote_conversation(client, alice)
    labels = {"provider": "openai-compatible", "model": "gpt-standin", "task_type": "chat"}
    before = await scrape(client)

    assert (await ask(client, alice, conversation_id)).status_code == 200

    after = await scrape(client)
    for kind, tokens in (("prompt", 21), ("completion", 4)):  # the stand-in's count
        name = "tertulia_model_tokens_total"
        assert value(after, name, **labels, kind=kind) - value(before, name, **labels, kind=kind) == tokens


async def test_ingestion_jobs_are_counted_by_status_from_the_database(client: httpx.AsyncClient) -> None:
    alice = await sign_up(client, "alice")
    base_id = await new_base(client, alice)
    before = await scrape(client)
    accepted = await upload(client, alice, base_id, "note.txt", "The office opens at nine.")
    assert (await finished(client, alice, accepted["job"]["id"]))["status"] == "done"

    after = await scrape(client)

    assert value(after, "tertulia_ingestion_jobs", status="done") == 1  # this test's database
    assert value(after, "tertulia_ingestion_jobs", status="queued") == 0
    finished_jobs = "tertulia_ingestion_jobs_finished_total"
    assert value(after, finished_jobs, outcome="done") - value(before, finished_jobs, outcome="done") == 1


async def test_a_metrics_token_keeps_the_figures_to_whoever_has_it(make_client: AppFactory) -> None:
    client = await make_client(metrics_token="scrape-me-0123456789")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-me-0123456789"}):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 401 and "tertulia_" not in response.text
    assert await scrape(client, Authorization="Bearer scrape-me-0123456789")


async def test_metrics_can_be_switched_off(make_client: AppFactory) -> None:
    client = await make_client(metrics_enabled=False)
    assert (await client.get("/metrics")).status_code == 404
    assert (await client.get("/health")).status_code == 200


async def test_a_router_under_two_prefixes_is_counted_under_each(client: httpx.AsyncClient) -> None:
    """ChatBotKit's routes answer under /v1 and /api/v1; OpenAI's model id may hold slashes."""
    paths = {
        "/v1/bot/list": ("chatbotkit", "/v1/bot/list"),
        "/api/v1/bot/list": ("chatbotkit", "/api/v1/bot/list"),
        "/v1/models/org/some-model": ("openai", "/v1/models/{model:path}"),
    }
    before = await scrape(client)
    for path in paths:
        assert (await client.get(path)).status_code == 401
    after = await scrape(client)
    for face, route in paths.values():
        labels = {"face": face, "method": "GET", "route": route, "status": "401"}
        name = "tertulia_http_requests_total"
        assert value(after, name, **labels) - value(before, name, **labels) == 1, route
