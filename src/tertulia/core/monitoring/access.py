"""Who sees what of the monitoring: an admin account the whole server, any other account only
its own requests, figures and logs."""

from datetime import datetime

from tertulia.core.errors import Invalid
from tertulia.core.principal import Principal

ADMIN = "admin"


def sees_the_server(actor: Principal) -> bool:
    return actor.account.role == ADMIN


def check_window(actor: Principal, since: datetime, until: datetime) -> None:
    """May `actor` read monitoring at all, and is the window one? The account's activity is
    read with the `usage:read` scope; a key bound to one bot reads none (the records are the
    account's, not a bot's)."""
    actor.require("usage:read")
    actor.require_any_bot()
    if since >= until:
        raise Invalid("start_time must be before end_time", {"field": "start_time"})
