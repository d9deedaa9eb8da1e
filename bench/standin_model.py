"""The OpenAI stand-in of tests/providers/standins.py in a process of its own, for bench/scale.py:
every chat completion streams --tokens pieces, --pause seconds apart.

    PYTHONPATH=src:. .venv/bin/python bench/standin_model.py --port 8123 [--tokens 24] [--pause 0.02]
"""

import argparse

import uvicorn
from tests.providers.standins import StandIn


def reply(tokens: int) -> tuple[str, ...]:
    """What the stand-in answers, piece by piece; the bench checks every stream against it."""
    return tuple(f"word{index} " for index in range(tokens))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--pause", type=float, default=0.02, help="seconds before each piece")
    args = parser.parse_args()
    app = StandIn()
    app.reset(reply=reply(args.tokens), pause=args.pause)
    # The stand-in's log of requests grows by one per reply: a few thousand are nothing.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off", ws="none")


if __name__ == "__main__":
    main()
