"""The web channel in a real browser: an operator sets a bot up in the console (a document
uploaded and indexed, the widget's origin and key, a try in the playground); a visitor on
another site talks to it through the embedded widget (streamed answer with its source,
history after a reload, a person asked for); the operator takes the conversation over from
the inbox and the visitor sees the reply arrive live. Screenshots of both are saved."""

import re
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.web.conftest import Site, screenshot

PASSWORD = "correct horse battery"
NOTICE = (
    "Velmora harbour timetable. The ferry to Isla Clara leaves every day at 07:45 from pier 3 "
    "and comes back at 18:30. A single ticket costs 12 euros; bicycles travel free. "
    "The harbour office opens at 07:00 and sells tickets until the ferry leaves."
)
QUESTION = "When does the ferry to Isla Clara leave?"
REPLY = "Hello, this is Olga from the harbour office. The 07:45 ferry has seats left."
WAIT = 120_000  # ms: an answer from the local model on two busy cores


async def register(api: httpx.AsyncClient, username: str) -> dict[str, str]:
    made = await api.post(
        "/api/v1/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
    )
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['access_token']}"}


async def sign_in(page: Page, tertulia: str, username: str) -> None:
    await page.goto(f"{tertulia}/console/")
    await page.get_by_test_id("login-email").fill(f"{username}@example.com")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("nav-bots")).to_be_visible()


def embedding_page(embed: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><title>Velmora harbour</title>"
        "<style>body{font-family:Georgia,serif;margin:3rem;max-width:40rem;color:#1f2937}</style></head>"
        "<body><h1>Velmora harbour</h1><p>Ferries to Isla Clara, every day of the year.</p>"
        f"{embed}</body></html>"
    )


async def set_up_bot_in_console(
    console: Page, api: httpx.AsyncClient, owner: dict[str, str], tmp: Path, origin: str
) -> str:
    """Creates the bot, uploads the timetable, lets the widget be used from `origin`; the
    embed snippet the console shows."""
    await console.get_by_test_id("nav-bots").click()
    await console.get_by_test_id("bot-name").fill("Harbour guide")
    await console.get_by_test_id("bot-prompt").fill(
        "You answer questions about the Velmora harbour, briefly."
    )
    await console.get_by_test_id("bot-create-submit").click()
    item = console.get_by_test_id("bot-item").filter(has_text="Harbour guide")
    await expect(item).to_be_visible()
    bot_id = await item.get_attribute("data-bot-id")
    assert bot_id
    # Short, deterministic answers: the model's settings are the API's, not the console's.
    tuned = await api.put(
        f"/api/v1/bots/{bot_id}", headers=owner, json={"llm_config": {"temperature": 0.0, "max_tokens": 48}}
    )
    assert tuned.status_code == 200, tuned.text
    await item.click()
    await console.get_by_test_id("kb-name").fill("Timetables")
    await console.get_by_test_id("kb-create-submit").click()

    timetable = tmp / "timetable.txt"
    timetable.write_text(NOTICE, encoding="utf-8")
    await console.get_by_test_id("upload-input").set_input_files(str(timetable))
    await console.get_by_test_id("upload-submit").click()
    job = console.get_by_test_id("job").first
    await expect(job).to_have_attribute("data-status", "done", timeout=WAIT)
    await expect(console.get_by_test_id("document-list")).to_contain_text("timetable.txt")

    await console.get_by_test_id("tab-widget").click()
    await console.get_by_test_id("widget-origins").fill(origin)
    await console.get_by_test_id("widget-handoff").check()
    await console.get_by_test_id("widget-lead-form").check()
    await console.get_by_test_id("widget-save").click()
    await console.get_by_test_id("widget-key-create").click()
    embed = console.get_by_test_id("widget-embed")
    await expect(embed).to_have_value(re.compile(r"<script src=.*/widget\.js"))
    snippet = await embed.input_value()
    assert f'data-bot="{bot_id}"' in snippet
    return snippet


async def ask_in_widget(page: Page, question: str) -> Any:
    """Sends `question` and returns the answer once complete, having recorded the lengths the
    answer grew through while it streamed."""
    await page.evaluate(
        """() => {
            const root = document.getElementById('tertulia-widget').shadowRoot;
            window.__lengths = [];
            new MutationObserver(() => {
                const streaming = root.querySelector('[data-streaming="true"]');
                if (streaming) window.__lengths.push(streaming.textContent.length);
            }).observe(root, {subtree: true, childList: true, characterData: true});
        }"""
    )
    await page.get_by_test_id("input").fill(question)
    await page.get_by_test_id("input").press("Enter")
    answer = page.locator('[data-testid="message"][data-role="assistant"][data-streaming="false"]').last
    await expect(answer).to_be_visible(timeout=WAIT)
    return answer


async def test_a_visitor_and_an_operator_on_the_web(
    browser, tertulia: str, site: Site, tmp_path: Path
) -> None:
    api = httpx.AsyncClient(base_url=tertulia, timeout=120)
    owner = await register(api, "olga")
    operator = await browser.new_context(viewport={"width": 1280, "height": 860})
    console = await operator.new_page()
    await sign_in(console, tertulia, "olga")
    embed = await set_up_bot_in_console(console, api, owner, tmp_path, site.origin)

    await console.get_by_test_id("tab-playground").click()
    await console.get_by_test_id("playground-input").fill(QUESTION)
    await console.get_by_test_id("playground-send").click()
    await expect(console.get_by_test_id("playground-answer")).not_to_be_empty(timeout=WAIT)
    source = console.get_by_test_id("playground-source").first
    await expect(source).to_contain_text("timetable.txt", timeout=WAIT)
    await expect(source).to_contain_text(re.compile(r"0\.\d{3}"))  # its score
    await screenshot(console, "console-playground")

    site.pages["/harbour.html"] = embedding_page(embed)
    visitor = await browser.new_context(viewport={"width": 1100, "height": 800})
    shop = await visitor.new_page()
    await shop.goto(f"{site.origin}/harbour.html")
    await shop.get_by_test_id("launcher").click()
    await expect(shop.get_by_test_id("panel")).to_be_visible()
    answer = await ask_in_widget(shop, QUESTION)
    assert (await answer.locator(".bubble").inner_text()).strip()
    lengths = await shop.evaluate("window.__lengths")
    assert len(set(lengths)) > 1, lengths  # it grew piece by piece
    await expect(answer.get_by_test_id("source").first).to_contain_text("timetable.txt")
    await screenshot(shop, "widget")

    await shop.reload()
    await shop.get_by_test_id("launcher").click()
    await expect(shop.get_by_test_id("message").filter(has_text=QUESTION)).to_have_count(1)
    await expect(shop.locator('[data-testid="message"][data-role="assistant"]')).to_have_count(1)

    lead_form = shop.get_by_test_id("lead-form")
    if not await lead_form.is_visible():
        await shop.get_by_test_id("lead-toggle").click()
    await shop.get_by_test_id("lead-name").fill("Ana Pérez")
    await shop.get_by_test_id("lead-email").fill("ana@example.com")
    await shop.get_by_test_id("lead-submit").click()
    await expect(shop.get_by_test_id("lead-note")).not_to_be_empty()
    await shop.get_by_test_id("handoff").click()
    await expect(shop.get_by_test_id("status")).to_contain_text(re.compile("person", re.IGNORECASE))

    await console.get_by_test_id("nav-inbox").click()
    await console.locator('[data-testid="inbox-filter"] [data-filter="human_requested"]').click()
    waiting = console.get_by_test_id("conversation-item").first
    await expect(waiting).to_be_visible(timeout=15_000)
    await expect(waiting).to_contain_text("ana@example.com")  # the contact the visitor left
    await waiting.click()
    await expect(console.get_by_test_id("conversation-message").filter(has_text=QUESTION)).to_have_count(1)
    await console.get_by_test_id("takeover").click()
    await expect(console.get_by_test_id("conversation-status")).to_contain_text("olga", ignore_case=True)
    await console.get_by_test_id("operator-input").fill(REPLY)
    await console.get_by_test_id("operator-send").click()

    from_person = shop.locator('[data-testid="message"][data-role="operator"]')
    await expect(from_person).to_contain_text(REPLY, timeout=30_000)
    await screenshot(shop, "widget-operator-reply")
    await expect(console.get_by_test_id("conversation-message").filter(has_text=REPLY)).to_have_count(1)
    await console.locator('[data-testid="inbox-filter"] [data-filter="all"]').click()
    await expect(console.get_by_test_id("conversation-item").filter(has_text="olga")).to_be_visible()
    await expect(console.get_by_test_id("conversation-message").filter(has_text=REPLY)).to_have_count(1)
    await screenshot(console, "console-inbox")

    # While the person holds it, the bot stays quiet: the visitor's next words wait for them.
    await shop.get_by_test_id("input").fill("Thank you! Two tickets please.")
    await shop.get_by_test_id("input").press("Enter")
    await expect(console.get_by_test_id("conversation-message").filter(has_text="Two tickets")).to_have_count(
        1, timeout=30_000
    )
    await expect(shop.locator('[data-testid="message"][data-role="assistant"]')).to_have_count(1)

    await console.get_by_test_id("resolve").click()
    resolved = re.compile("resolved", re.IGNORECASE)
    await expect(shop.get_by_test_id("status")).to_contain_text(resolved, timeout=30_000)
    await api.aclose()


async def test_a_page_on_another_origin_is_refused(browser, tertulia: str, site: Site) -> None:
    async with httpx.AsyncClient(base_url=tertulia, timeout=60) as api:
        owner = await register(api, "nina")
        bot = (await api.post("/api/v1/bots/", headers=owner, json={"name": "Only on localhost"})).json()
        await api.put(
            f"/api/v1/bots/{bot['id']}/widget", headers=owner, json={"allowed_origins": [site.origin]}
        )
        key = (
            await api.post(f"/api/v1/bots/{bot['id']}/widget/keys", headers=owner, json={"name": "s"})
        ).json()
        site.pages["/copy.html"] = embedding_page(key["embed"])

        refused: list[str] = []
        visitor = await browser.new_context()
        page = await visitor.new_page()
        page.on("console", lambda message: refused.append(message.text) if "CORS" in message.text else None)
        await page.goto(f"{site.other_origin}/copy.html")  # the same page, under another origin
        await page.get_by_test_id("launcher").click()
        await page.get_by_test_id("input").fill("Hello?")
        await page.get_by_test_id("input").press("Enter")
        await expect(page.get_by_test_id("error")).to_be_visible(timeout=15_000)
        assert refused, "the browser itself refused the cross-origin calls"
        assert (await api.get("/api/v1/conversations", headers=owner)).json()["total"] == 0


async def test_the_widget_works_by_keyboard_on_a_phone_in_the_bots_language(
    browser, tertulia: str, site: Site
) -> None:
    async with httpx.AsyncClient(base_url=tertulia, timeout=60) as api:
        owner = await register(api, "pilar")
        bot = (await api.post("/api/v1/bots/", headers=owner, json={"name": "Guía del puerto"})).json()
        themed = await api.put(
            f"/api/v1/bots/{bot['id']}/widget",
            headers=owner,
            json={
                "allowed_origins": [site.origin],
                "greeting": "¡Hola! Pregúntame por los ferris.",
                "language": "es",
                "colors": {"primary": "#0f766e"},
                "position": "left",
            },
        )
        assert themed.status_code == 200, themed.text
        key = (
            await api.post(f"/api/v1/bots/{bot['id']}/widget/keys", headers=owner, json={"name": "s"})
        ).json()
    site.pages["/movil.html"] = embedding_page(key["embed"])
    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = await phone.new_page()
    await page.goto(f"{site.origin}/movil.html")

    launcher = page.get_by_test_id("launcher")
    await expect(launcher).to_have_attribute("aria-expanded", "false")
    await launcher.focus()
    await page.keyboard.press("Enter")
    await expect(launcher).to_have_attribute("aria-expanded", "true")
    panel = page.get_by_test_id("panel")
    await expect(panel).to_have_attribute("role", "dialog")
    await expect(panel).to_have_attribute("aria-label", "Guía del puerto")
    await expect(page.get_by_test_id("log")).to_have_attribute("role", "log")
    await expect(page.get_by_test_id("input")).to_be_focused()
    await expect(page.get_by_test_id("message").filter(has_text="Pregúntame por los ferris")).to_be_visible()
    box = await panel.bounding_box()
    assert box is not None and box["width"] == 390  # the whole width of the phone
    send_label = await page.get_by_test_id("send").get_attribute("aria-label")
    assert send_label and send_label.lower() != "send"  # in Spanish, like the rest
    primary = await page.get_by_test_id("send").evaluate("button => getComputedStyle(button).backgroundColor")
    assert primary == "rgb(15, 118, 110)"  # the bot's colour
    await screenshot(page, "widget-phone")

    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(launcher).to_be_focused()
