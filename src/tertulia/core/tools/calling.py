"""How the chat engine uses a bot's tools: ask the model for one call, check its arguments,
run it, and hand the result back for the answer.

Three ways to ask, by what the model can do:
- a provider with native tool calling (`call_tool`: OpenAI-compatible servers, Anthropic,
  Gemini) is offered every tool of the bot and decides itself;
- a model that writes constrained JSON (the local one, `structured`) is offered only the
  tools a question plausibly needs (each tool's `asked_by` words), and a grammar made from
  the tools' schemas makes its call always parseable (measured with Qwen 0.5B: without it
  the call comes in a code fence, with words where numbers belong);
- any other model is shown the same instruction and its JSON is read from its reply.
Either way the arguments are validated against the tool's schema before anything runs, and
the result goes back to the model as a user turn (a `tool` role makes the small model call
again and again).
"""

import json
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from tertulia.core.errors import TertuliaError
from tertulia.core.tools import TOOLS, Tool, ToolContext, ToolFailed
from tertulia.providers.base import ChatModel, ChatTurn, Sampling, Usage

log = logging.getLogger("tertulia.tools")

CALL_TOKENS = 160  # room for one call's JSON
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolOutcome:
    call: ToolCall
    result: dict[str, Any] | None = None
    error: str | None = None

    def stored(self) -> dict[str, Any]:
        """As kept in the reply's metadata (`tool_calls`)."""
        kept: dict[str, Any] = {"id": self.call.id, "name": self.call.name, "arguments": self.call.arguments}
        if self.error is not None:
            kept["error"] = self.error
        else:
            kept["result"] = self.result
        return kept


class StructuredModel(Protocol):
    async def structured(self, turns: list[ChatTurn], schema: dict[str, Any], max_tokens: int) -> str: ...


def read_calls(
    tools: list[tuple[Tool, dict[str, Any]]], question: str
) -> list[tuple[ToolCall, Tool, dict[str, Any]]]:
    """The calls of the tools that read their own arguments from the question."""
    calls = []
    for tool, config in tools:
        arguments = tool.spec.read_arguments(question) if tool.spec.read_arguments is not None else None
        if arguments is not None:
            calls.append((ToolCall(f"call_{secrets.token_hex(8)}", tool.spec.id, arguments), tool, config))
    return calls


def answered(outcomes: list[ToolOutcome]) -> ToolOutcome | None:
    """The outcome the model answers from: the call it asked for (the tools that read their
    own arguments work on the side, and are not shown to it)."""
    return next(
        (outcome for outcome in outcomes if TOOLS[outcome.call.name].spec.read_arguments is None), None
    )


def final_answer(outcomes: list[ToolOutcome]) -> str | None:
    """The answer of a tool that gives one (a handoff), once it has run without failing."""
    for outcome in outcomes:
        answer = TOOLS[outcome.call.name].spec.answer
        if answer is not None and outcome.error is None:
            return answer
    return None


def offered(tools: list[Tool], question: str) -> list[Tool]:
    """The tools worth offering for `question`: those whose words it uses."""
    return [tool for tool in tools if tool.spec.asked_by is not None and tool.spec.asked_by.search(question)]


def _instruction(tools: list[Tool]) -> str:
    lines = ["You can use a tool to answer the user's question. The tools:"]
    for tool in tools:
        lines.append(f"- {tool.spec.id}: {tool.spec.description}")
        lines.append(f"  arguments (JSON Schema): {json.dumps(tool.spec.parameters, ensure_ascii=False)}")
    lines.append('Reply with JSON only: {"tool": "<tool name>", "arguments": {…}}.')
    return "\n".join(lines)


def _call_schema(tools: list[Tool]) -> dict[str, Any]:
    choices = [
        {
            "type": "object",
            "properties": {"tool": {"const": tool.spec.id}, "arguments": tool.spec.parameters},
            "required": ["tool", "arguments"],
        }
        for tool in tools
    ]
    return choices[0] if len(choices) == 1 else {"anyOf": choices}


def _read_call(text: str, tools: list[Tool]) -> ToolCall | None:
    try:
        # The grammar lets raw control characters into strings: read them leniently.
        data = json.loads(_FENCE.sub("", text.strip()), strict=False)
    except ValueError:
        log.info("the model's tool call is not JSON: %.200r", text)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("arguments"), dict):
        return None
    chosen = next((tool for tool in tools if tool.spec.id == data.get("tool")), None)
    if chosen is None:
        return None
    # Keys the tool does not take are dropped (a small model adds made-up ones, like the
    # weather it expects, which the grammar's converter does not keep out).
    known = chosen.spec.parameters.get("properties", {})
    arguments = {key: value for key, value in data["arguments"].items() if key in known}
    return ToolCall(f"call_{secrets.token_hex(8)}", chosen.spec.id, arguments)


async def plan(model: ChatModel, tools: list[Tool], question: str) -> tuple[ToolCall | None, Usage]:
    """The one tool call the model makes for `question`, if any, and what asking cost."""
    native = getattr(model, "call_tool", None)
    if native is not None:
        return await _plan_natively(model, native, tools, question)
    candidates = offered(tools, question)
    if not candidates:
        return None, Usage(0, 0)
    turns = [ChatTurn("system", _instruction(candidates)), ChatTurn("user", question)]
    prompt_tokens = await model.count_prompt_tokens(turns)
    structured = getattr(model, "structured", None)
    if structured is not None:
        text = await structured(turns, _call_schema(candidates), CALL_TOKENS)
    else:
        pieces = []
        async for piece in model.stream(turns, Sampling(temperature=0.0, max_tokens=CALL_TOKENS)):
            if isinstance(piece, str):
                pieces.append(piece)
        text = "".join(pieces)
    usage = Usage(prompt_tokens, await model.count_tokens(text))
    return _read_call(text, candidates), usage


async def _plan_natively(
    model: ChatModel, native: Any, tools: list[Tool], question: str
) -> tuple[ToolCall | None, Usage]:
    """A provider with tool calling of its own is offered every tool and decides itself."""
    functions = [
        {"name": tool.spec.id, "description": tool.spec.description, "parameters": tool.spec.parameters}
        for tool in tools
    ]
    made, reported = await native([ChatTurn("user", question)], functions)
    usage = reported or Usage(await model.count_prompt_tokens([ChatTurn("user", question)]), 0)
    if made is None:
        return None, usage
    name, arguments = made
    text = json.dumps({"tool": name, "arguments": _json_or_none(arguments)})
    return _read_call(text, tools), usage


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text, strict=False)
    except ValueError:
        return None


async def run(call: ToolCall, tool: Tool, context: ToolContext) -> ToolOutcome:
    """Runs the call once its arguments fit the tool's schema; a failure is an outcome too."""
    problem = next(iter(Draft202012Validator(tool.spec.parameters).iter_errors(call.arguments)), None)
    if problem is not None:
        return ToolOutcome(call, error=f"the arguments do not fit the tool: {_said(problem)}")
    try:
        return ToolOutcome(call, result=await tool.run(context, call.arguments))
    except ToolFailed as failure:
        return ToolOutcome(call, error=failure.message)
    except TertuliaError as error:
        return ToolOutcome(call, error=error.message)


def _said(problem: ValidationError) -> str:
    where = "/".join(str(part) for part in problem.absolute_path)
    return f"{where}: {problem.message}" if where else problem.message


def answer_turn(question: str, outcome: ToolOutcome) -> ChatTurn:
    """The user turn that gives the model the tool's result and asks for the answer."""
    arguments = json.dumps(outcome.call.arguments, ensure_ascii=False)
    if outcome.error is not None:
        told = f"The tool {outcome.call.name}({arguments}) failed: {outcome.error}"
        return ChatTurn("user", f"{question}\n\n{told}\nTell the user you could not find this out, and why.")
    result = json.dumps(outcome.result, ensure_ascii=False)
    return ChatTurn(
        "user",
        f"{question}\n\nTool result for {outcome.call.name}({arguments}): {result}\n"
        # A small model otherwise starts over ("To find 12.5% of …, we use the formula") and
        # can run out of room before it says the result.
        "Answer the question in one or two sentences, giving this result first.",
    )


__all__ = [
    "TOOLS",
    "ToolCall",
    "ToolOutcome",
    "answer_turn",
    "answered",
    "final_answer",
    "offered",
    "plan",
    "read_calls",
    "run",
]
