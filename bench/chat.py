"""Time to first token and tokens/s: the local model called directly vs through Tertulia.

    .venv/bin/python bench/chat.py [--rounds 5] [--max-tokens 64] [--model qwen2.5-coder-0.5b-instruct]

Three ways, interleaved round by round so that drift in the machine hits them alike:
  direct     llama-cpp-python's create_chat_completion(stream=True) on the same GGUF file,
             same threads, same context size, same prompt turns;
  websocket  a real `tertulia serve` process, ChatAgent's WebSocket (user_message → chunks);
  openai     the same server, POST /v1/chat/completions with stream=true (SSE).
Greedy sampling (temperature 0), so every way generates the same tokens. No two calls in a
row ask the same question (English, Spanish, Chinese), so llama.cpp's prompt cache never
turns time to first token into a cache hit; over five rounds every way asks all five. Tokens/s is the
completion's token count over the time from first to last token. The table gives medians
and the ratio to direct; the server's overhead is what is left. Nothing here is asserted.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import websockets
from tertulia_server import Server

QUESTIONS = (
    "Explain in three sentences why the sky is blue.",
    "Explica en tres frases por qué el cielo es azul.",
    "用三句话解释为什么天空是蓝色的。",
    "Describe in three sentences how a bicycle stays upright.",
    "Explica en tres frases cómo funciona un arcoíris.",
)
SYSTEM = (
    "You are a helpful assistant. Answer briefly.\nAlways answer in the same language as the user's question."
)


@dataclass
class Run:
    first_token: float  # seconds from sending to the first piece of text
    tokens: int
    generating: float  # seconds from the first to the last piece

    @property
    def tokens_per_second(self) -> float:
        return (self.tokens - 1) / self.generating if self.generating > 0 else 0.0


def direct_runner(
    model_id: str, max_tokens: int, threads: int, context: int
) -> Callable[[str], Awaitable[Run]]:
    from llama_cpp import Llama

    from tertulia.providers.local_llm import has_amx, without_weight_repacking
    from tertulia.providers.local_models import LOCAL_MODELS, model_file
    from tertulia.settings import Settings

    path = model_file(LOCAL_MODELS[model_id], Settings().model_cache_dir)
    with without_weight_repacking(has_amx()):  # as the server loads it
        llama = Llama(
            model_path=str(path), n_ctx=context, n_threads=threads, n_threads_batch=threads, verbose=False
        )

    def once(question: str) -> Run:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
        started = time.perf_counter()
        first = last = 0.0
        text = ""
        for chunk in llama.create_chat_completion(
            messages=messages, stream=True, temperature=0.0, max_tokens=max_tokens
        ):
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                last = time.perf_counter()
                first = first or last
                text += piece
        tokens = len(llama.tokenize(text.encode(), add_bos=False, special=False))
        return Run(first - started, tokens, last - first)

    async def run(question: str) -> Run:
        return await asyncio.to_thread(once, question)

    return run


async def prepare(server: Server, max_tokens: int) -> tuple[str, str, str]:
    """An account, a bot with greedy sampling, a conversation; returns token, bot and conversation."""
    headers = server.account()
    token = headers["Authorization"].removeprefix("Bearer ")
    async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
        bot = await client.post(
            "/api/v1/bots/",
            headers=headers,
            json={"name": "Bench", "llm_config": {"temperature": 0.0, "max_tokens": max_tokens}},
        )
        bot_id = bot.json()["id"]
        conversation = await client.post("/api/v1/conversations/", headers=headers, json={"bot_id": bot_id})
        return token, bot_id, conversation.json()["id"]


def websocket_runner(server: Server, token: str, bot_id: str) -> Callable[[str], Awaitable[Run]]:
    async def run(question: str) -> Run:
        # A fresh conversation each round, so every prompt is the same length as direct's.
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
            made = await client.post(
                "/api/v1/conversations/",
                headers={"Authorization": f"Bearer {token}"},
                json={"bot_id": bot_id},
            )
        url = f"ws://127.0.0.1:{server.port}/api/v1/ws/conversations/{made.json()['id']}?token={token}"
        async with websockets.connect(url) as socket_:
            started = time.perf_counter()
            await socket_.send(json.dumps({"type": "user_message", "content": question}))
            first = last = 0.0
            while True:
                frame = json.loads(await socket_.recv())
                if frame["type"] == "stream_chunk":
                    last = time.perf_counter()
                    first = first or last
                elif frame["type"] == "stream_complete":
                    return Run(first - started, frame["usage"]["completion_tokens"], last - first)
                elif frame["type"] == "error":
                    raise RuntimeError(frame)

    return run


def openai_runner(server: Server, token: str, bot_id: str) -> Callable[[str], Awaitable[Run]]:
    async def run(question: str) -> Run:
        body = {
            "model": bot_id,
            "messages": [{"role": "user", "content": question}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        async with httpx.AsyncClient(timeout=120) as client:
            started = time.perf_counter()
            first = last = 0.0
            tokens = 0
            async with client.stream(
                "POST",
                f"{server.base}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if chunk.get("usage"):
                        tokens = chunk["usage"]["completion_tokens"]
                    elif chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                        last = time.perf_counter()
                        first = first or last
            return Run(first - started, tokens, last - first)

    return run


def report(results: dict[str, list[Run]]) -> None:
    base = results["direct"]
    base_ttft = statistics.median(run.first_token for run in base)
    base_rate = statistics.median(run.tokens_per_second for run in base)
    print(
        f"\n{'way':<10} {'runs':>4} {'ttft s':>8} {'x direct':>9} {'tokens/s':>9} {'x direct':>9} {'tokens':>7}"  # noqa: E501
    )
    for way, runs in results.items():
        ttft = statistics.median(run.first_token for run in runs)
        rate = statistics.median(run.tokens_per_second for run in runs)
        tokens = statistics.median(run.tokens for run in runs)
        print(
            f"{way:<10} {len(runs):>4} {ttft:>8.3f} {ttft / base_ttft:>9.2f} "
            f"{rate:>9.1f} {rate / base_rate:>9.2f} {tokens:>7.0f}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--context", type=int, default=4096)
    args = parser.parse_args()

    server = Server(
        default_chat_model=args.model, llm_threads=str(args.threads), llm_context_tokens=str(args.context)
    )
    try:
        direct = direct_runner(args.model, args.max_tokens, args.threads, args.context)
        token, bot_id, _conversation = await prepare(server, args.max_tokens)
        ways = {
            "direct": direct,
            "websocket": websocket_runner(server, token, bot_id),
            "openai": openai_runner(server, token, bot_id),
        }
        for way in ways.values():  # warm-up: loads the model in both processes
            await way("Hello!")
        results: dict[str, list[Run]] = {name: [] for name in ways}
        for round_ in range(args.rounds):
            for index, (name, way) in enumerate(ways.items()):
                # Two calls in a row never share a question; over five rounds each way asks all five.
                question = QUESTIONS[(round_ * len(ways) + index) % len(QUESTIONS)]
                results[name].append(await way(question))
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
        report(results)
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
