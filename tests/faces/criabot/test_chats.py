"""CriaBot chats, from the document's examples: start, send, query, history, exists, end;
answers grounded in the bot's documents (and other bots'), stored answers, and the
parameters the engine honours."""

import httpx

from tests.faces.criabot.conftest import Owner, assert_envelope, create_bot, upload_nodes

# Greedy and short, so the small local model answers quickly and the same way every run.
STEADY = {"temperature": 0.0, "max_reply_tokens": 24}


async def start(client: httpx.AsyncClient, who: Owner) -> str:
    started = assert_envelope(await client.post("/bots/chats/start", headers=who.headers))
    assert started["message"] == "Successfully started a new chat."
    return str(started["chat_id"])


async def say(client: httpx.AsyncClient, who: Owner, chat_id: str, how: str, **body: object) -> dict:
    response = await client.post(f"/bots/chats/{chat_id}/{how}", headers=who.headers, json=body)
    return assert_envelope(response)


async def history(client: httpx.AsyncClient, who: Owner, chat_id: str) -> list[dict]:
    return list(
        assert_envelope(await client.get(f"/bots/chats/{chat_id}/history", headers=who.headers))["history"]
    )


async def test_a_chat_from_start_to_end(client: httpx.AsyncClient, cria: Owner) -> None:
    await create_bot(client, cria, "my-new-bot-name", **STEADY)
    chat_id = await start(client, cria)
    exists = assert_envelope(await client.get(f"/bots/chats/{chat_id}/exists", headers=cria.headers))
    assert exists["exists"] is True and exists["message"] == f"Checked if the chat '{chat_id}' is active!"
    assert await history(client, cria, chat_id) == []

    sent = await say(
        client, cria, chat_id, "send", prompt="Hello, bot!", bot_name="my-new-bot-name", extra_bots=[]
    )
    assert sent["message"] == "Successfully sent the chat"
    reply = sent["reply"]
    assert reply["message"].strip()
    usage = reply["completion_usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert reply["related_prompts"] == [] and reply["sources"] == []

    turns = await history(client, cria, chat_id)
    assert [turn["role"] for turn in turns] == ["user", "assistant"]
    assert turns[0]["blocks"] == [{"block_type": "text", "text": "Hello, bot!"}]
    assert turns[1]["blocks"][0]["text"] == reply["message"]
    assert all(turn["additional_kwargs"] == {} and turn["metadata"]["token_count"] > 0 for turn in turns)

    # A query is a one-message exchange: the chat's history neither feeds it nor keeps it.
    queried = await say(client, cria, chat_id, "query", prompt="Hello again!", bot_name="my-new-bot-name")
    assert queried["message"] == "Successfully sent the query" and queried["reply"]["message"].strip()
    assert len(await history(client, cria, chat_id)) == 2

    ended = assert_envelope(await client.delete(f"/bots/chats/{chat_id}/end", headers=cria.headers))
    assert ended["message"] == "Successfully ended the chat."
    gone = assert_envelope(await client.get(f"/bots/chats/{chat_id}/exists", headers=cria.headers))
    assert gone["exists"] is False
    assert_envelope(
        await client.get(f"/bots/chats/{chat_id}/history", headers=cria.headers), 404, "NOT_FOUND"
    )
    assert_envelope(
        await client.post(
            f"/bots/chats/{chat_id}/send",
            headers=cria.headers,
            json={"prompt": "x", "bot_name": "my-new-bot-name"},
        ),
        404,
        "NOT_FOUND",
    )
    # The conversation stays in the account's records, resolved.
    conversations = (await client.get("/api/v1/conversations/", headers=cria.user.headers)).json()
    assert {item["status"] for item in conversations["conversations"]} == {"resolved"}


async def test_answers_come_from_the_bots_documents_and_from_extra_bots(
    client: httpx.AsyncClient, cria: Owner
) -> None:
    await create_bot(client, cria, "ferries", **STEADY)
    await create_bot(client, cria, "trains", **STEADY)
    await upload_nodes(client, cria, "ferries", "ferries.json", "The ferry to Isla Clara leaves at 07:45.")
    await upload_nodes(
        client, cria, "trains", "trains.json", "The night train to Valdora departs from platform 9."
    )
    chat_id = await start(client, cria)

    own = await say(
        client, cria, chat_id, "send", prompt="When does the ferry to Isla Clara leave?", bot_name="ferries"
    )
    assert "07:45" in own["reply"]["message"]
    assert [source["document_name"] for source in own["reply"]["sources"]] == ["ferries.json"]

    alone = await say(
        client,
        cria,
        chat_id,
        "query",
        prompt="Which platform does the night train to Valdora use?",
        bot_name="ferries",
    )
    assert alone["reply"]["sources"] == []  # the ferries bot alone knows nothing of trains
    both = await say(
        client,
        cria,
        chat_id,
        "query",
        prompt="Which platform does the night train to Valdora use?",
        bot_name="ferries",
        extra_bots=["trains"],
    )
    assert "trains.json" in [source["document_name"] for source in both["reply"]["sources"]]
    assert "9" in both["reply"]["message"]

    unknown = await client.post(
        f"/bots/chats/{chat_id}/send",
        headers=cria.headers,
        json={"prompt": "hi", "bot_name": "ferries", "extra_bots": ["nobody"]},
    )
    assert_envelope(unknown, 404, "NOT_FOUND")
    other_bot = await client.post(
        f"/bots/chats/{chat_id}/send", headers=cria.headers, json={"prompt": "hi", "bot_name": "trains"}
    )
    assert_envelope(other_bot, 400, "ERROR")  # this chat is with the ferries bot


async def test_a_matching_question_gives_its_stored_answer_and_nothing_found_gives_the_fixed_message(
    client: httpx.AsyncClient, cria: Owner
) -> None:
    await create_bot(
        client,
        cria,
        "faq",
        no_context_message="Sorry, I'm not sure about that.",
        no_context_use_message=True,
        **STEADY,
    )
    question = {
        "file_name": "capital.json",
        "file_contents": {
            "questions": ["What is the capital of France?", "What is the largest city in France?"],
            "answer": "Paris, on the Seine.",
            "llm_reply": False,
        },
        "file_metadata": {},
    }
    assert_envelope(await client.post("/bots/faq/questions/upload", headers=cria.headers, json=question))
    chat_id = await start(client, cria)
    answered = await say(
        client, cria, chat_id, "send", prompt="what's the capital of France?", bot_name="faq"
    )
    assert answered["reply"]["message"] == "Paris, on the Seine."
    assert answered["reply"]["completion_usage"]["completion_tokens"] == 0  # no model call
    unknown = await say(
        client, cria, chat_id, "send", prompt="How do I repair a bicycle chain?", bot_name="faq"
    )
    assert unknown["reply"]["message"] == "Sorry, I'm not sure about that."
    assert unknown["reply"]["sources"] == []


async def test_related_prompts_when_the_bot_asks_for_them(client: httpx.AsyncClient, cria: Owner) -> None:
    await create_bot(client, cria, "helpful", llm_generate_related_prompts=True, **STEADY)
    chat_id = await start(client, cria)
    sent = await say(client, cria, chat_id, "send", prompt="Suggest a name for a cat.", bot_name="helpful")
    related = sent["reply"]["related_prompts"]
    assert related and all(item["label"] and item["prompt"] for item in related)


async def test_chats_belong_to_their_account_and_to_a_bots_key(
    client: httpx.AsyncClient, cria: Owner, other: Owner
) -> None:
    created = await create_bot(client, cria, "mine", **STEADY)
    chat_id = await start(client, cria)
    for method, path in [
        ("GET", f"/bots/chats/{chat_id}/history"),
        ("DELETE", f"/bots/chats/{chat_id}/end"),
    ]:
        assert_envelope(await client.request(method, path, headers=other.headers), 404, "NOT_FOUND")
    assert (
        assert_envelope(await client.get(f"/bots/chats/{chat_id}/exists", headers=other.headers))["exists"]
        is False
    )
    # A chat started with a bot's key is that bot's; the master key's unbound chat is not the bot key's.
    bot_key = Owner(cria.user, created["bot_api_key"])
    assert (
        assert_envelope(await client.get(f"/bots/chats/{chat_id}/exists", headers=bot_key.headers))["exists"]
        is False
    )
    own_chat = await start(client, bot_key)
    assert (
        assert_envelope(await client.get(f"/bots/chats/{own_chat}/exists", headers=bot_key.headers))["exists"]
        is True
    )
    assert_envelope(await client.get(f"/bots/chats/{own_chat}/exists", headers=cria.headers))
