"""What the lead-capture and request-human tools read in a visitor's message."""

import pytest

from tertulia.core.errors import Invalid
from tertulia.core.handoff import asks_for_human, check_contact, contact_in


@pytest.mark.parametrize(
    "text",
    [
        "I want to talk to a human",
        "Can I speak with a real person please?",
        "Quiero hablar con una persona",
        "necesito un operador",
        "Quero falar com um atendente",
        "我要转人工",
    ],
)
def test_a_request_for_a_person_is_recognised(text: str) -> None:
    assert asks_for_human(text)


@pytest.mark.parametrize(
    "text",
    [
        "What are your opening hours?",
        "Is this made by humans?",
        "La persona que compra recibe factura",
        "你好",
    ],
)
def test_other_messages_are_not_handoffs(text: str) -> None:
    assert not asks_for_human(text)


def test_contacts_written_in_a_message_are_found() -> None:
    assert contact_in("Escribime a ana.p@example.org o llamame al +54 9 11 2345-6789") == {
        "email": "ana.p@example.org",
        "phoneNumber": "+5491123456789",
    }
    assert contact_in("Order 12 arrived on 2024-01-21") == {}


def test_contacts_sent_by_the_client_are_checked() -> None:
    assert check_contact({"email": "a@b.co", "firstName": " Juan ", "phoneNumber": None}) == {
        "email": "a@b.co",
        "firstName": "Juan",
    }
    with pytest.raises(Invalid):
        check_contact({"email": "not-an-address"})
    with pytest.raises(Invalid):
        check_contact({"shoeSize": "42"})
