"""A stand-in for Open-Meteo's geocoding (/v1/search) and forecast (/v1/forecast) APIs on one
local port, answering as the real ones do (their JSON shapes, their 400 with
{"error": true, "reason": …} for a bad request); a test can make it fail."""

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

PLACES = {
    "madrid": {
        "id": 3117735,
        "name": "Madrid",
        "latitude": 40.4165,
        "longitude": -3.70256,
        "elevation": 650.0,
        "feature_code": "PPLC",
        "country_code": "ES",
        "timezone": "Europe/Madrid",
        "population": 3255944,
        "country": "Spain",
        "admin1": "Madrid",
    },
    "buenos aires": {
        "id": 3435910,
        "name": "Buenos Aires",
        "latitude": -34.61315,
        "longitude": -58.37723,
        "elevation": 25.0,
        "feature_code": "PPLC",
        "country_code": "AR",
        "timezone": "America/Argentina/Buenos_Aires",
        "population": 13076300,
        "country": "Argentina",
        "admin1": "Buenos Aires F.D.",
    },
}
CURRENT = {"temperature_2m": 17.4, "relative_humidity_2m": 61, "apparent_temperature": 16.2,
           "precipitation": 0.0, "weather_code": 2, "wind_speed_10m": 11.5}  # fmt: skip


@dataclass
class OpenMeteo:
    url: str = ""
    failing: bool = False
    received: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        query = {key: values[0] for key, values in parse_qs(scope["query_string"].decode()).items()}
        self.received.append((scope["path"], query))
        if self.failing:
            await _reply(send, 500, {"error": True, "reason": "Internal Server Error"})
        elif scope["path"] == "/v1/search":
            place = PLACES.get(query.get("name", "").strip().lower())
            await _reply(send, 200, {"results": [place], "generationtime_ms": 0.5} if place else
                         {"generationtime_ms": 0.4})  # fmt: skip
        elif scope["path"] == "/v1/forecast":
            await _reply(send, *self._forecast(query))
        else:
            await _reply(send, 404, {"error": True, "reason": "Not Found"})

    def _forecast(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        try:
            latitude, longitude = float(query["latitude"]), float(query["longitude"])
        except (KeyError, ValueError):
            return 400, {
                "error": True,
                "reason": "Parameter 'latitude' and 'longitude' must have the same number of elements",
            }
        wanted = [name for name in query.get("current", "").split(",") if name]
        fahrenheit = query.get("temperature_unit") == "fahrenheit"
        units = {"time": "iso8601", "interval": "seconds", "temperature_2m": "°F" if fahrenheit else "°C",
                 "relative_humidity_2m": "%", "apparent_temperature": "°F" if fahrenheit else "°C",
                 "precipitation": "mm", "weather_code": "wmo code", "wind_speed_10m": "km/h"}  # fmt: skip
        current: dict[str, Any] = {"time": "2026-12-01T16:00", "interval": 900}
        for name in wanted:
            value = CURRENT[name]
            if fahrenheit and name in ("temperature_2m", "apparent_temperature"):
                value = round(value * 9 / 5 + 32, 1)
            current[name] = value
        return 200, {
            "latitude": latitude,
            "longitude": longitude,
            "generationtime_ms": 0.1,
            "utc_offset_seconds": 3600,
            "timezone": "Europe/Madrid",
            "timezone_abbreviation": "GMT+1",
            "elevation": 650.0,
            "current_units": {name: units[name] for name in ("time", "interval", *wanted)},
            "current": current,
        }


async def _reply(send: Any, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json; charset=utf-8")]})  # fmt: skip
    await send({"type": "http.response.body", "body": payload})
