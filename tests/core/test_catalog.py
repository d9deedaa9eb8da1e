"""Task routing in a bot's toolbox, with Bytchat's "general" and "complex" task types."""

from tertulia.core.catalog import ModelChoice, chat_task, route
from tertulia.store.tables import Bot, ModelSpec


def bot_with(*specs: tuple[str, str, str]) -> Bot:
    return Bot(
        name="b",
        llm_provider="local",
        llm_model=None,
        models=[
            ModelSpec(task_type=task, provider=provider, model_id=model) for task, provider, model in specs
        ],
    )


def test_a_general_model_answers_chat_when_no_chat_model_is_routed() -> None:
    bot = bot_with(("general", "google", "gemini-1.5-flash-latest"))
    assert route(bot, "chat") == ModelChoice("google", "gemini-1.5-flash-latest", "chat")
    both = bot_with(("general", "google", "g"), ("chat", "openai", "o"))
    assert route(both, "chat") == ModelChoice("openai", "o", "chat")
    assert route(bot_with(), "chat") is None  # the account's or the server's default


def test_complex_questions_go_to_the_complex_model_and_others_to_chat() -> None:
    bot = bot_with(("general", "google", "g"), ("complex", "openai", "gpt-4o"))
    assert chat_task(bot, "What time is it?") == "chat"
    assert chat_task(bot, "What is X? And how does it differ from Y?") == "complex"
    assert chat_task(bot, "Explain " + "this in detail " * 40) == "complex"
    assert route(bot, "complex") == ModelChoice("openai", "gpt-4o", "complex")
    # Without a complex model, every question is a chat question.
    assert chat_task(bot_with(("general", "google", "g")), "A? B? C?") == "chat"
