"""The weather tool: the current weather of a place, from Open-Meteo (no key needed; a
commercial customer's key and base URLs are settings). The place is found with Open-Meteo's
geocoding API, then its forecast API gives the current figures."""

import re
from typing import Any

import httpx

from tertulia.core.tools.base import ToolContext, ToolFailed, ToolSpec

SPEC = ToolSpec(
    id="weather",
    name="Weather",
    description="The current weather (temperature, wind, humidity, sky) of a city or place.",
    category="utility",
    parameters={
        "type": "object",
        "properties": {
            "location": {
                "type": "string",
                "description": "The city or place, like Madrid or Buenos Aires",
                "pattern": r"^[^\n\r\t{}\[\]<>]{1,80}$",
            }
        },
        "required": ["location"],
        "additionalProperties": False,
    },
    config_schema={
        "api_key": {
            "type": "string",
            "required": False,
            "description": "An Open-Meteo customer key (only for the commercial API)",
        },
        "default_location": {
            "type": "string",
            "required": False,
            "description": "The place asked about when the question names none",
        },
        "units": {
            "type": "string",
            "required": False,
            "description": "celsius (default) or fahrenheit",
        },
    },
    asked_by=re.compile(
        r"\b(?:weather|temperature|forecast|raining|rain|snowing|sunny|windy|humid|"
        r"tiempo hace|el tiempo|clima|temperatura|llueve|lloviendo|nieva|pronóstico|previsão)\b|"
        r"天气|气温|下雨|温度",
        re.IGNORECASE,
    ),
)

CURRENT = "temperature_2m,relative_humidity_2m,apparent_temperature,precipitation,weather_code,wind_speed_10m"
# WMO weather interpretation codes, as Open-Meteo documents them.
SKY = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "depositing rime fog",
    51: "light drizzle",
    53: "drizzle",
    55: "dense drizzle",
    56: "freezing drizzle",
    57: "dense freezing drizzle",
    61: "slight rain",
    63: "rain",
    65: "heavy rain",
    66: "freezing rain",
    67: "heavy freezing rain",
    71: "slight snow",
    73: "snow",
    75: "heavy snow",
    77: "snow grains",
    80: "slight rain showers",
    81: "rain showers",
    82: "violent rain showers",
    85: "snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with hail",
    99: "thunderstorm with heavy hail",
}


async def _get(http: httpx.AsyncClient, url: str, params: dict[str, Any], wait: float) -> dict[str, Any]:
    try:
        response = await http.get(url, params=params, timeout=wait)
    except httpx.TimeoutException as error:
        raise ToolFailed("the weather service did not answer in time") from error
    except httpx.HTTPError as error:
        raise ToolFailed(f"the weather service cannot be reached ({type(error).__name__})") from error
    try:
        body = response.json()
    except ValueError as error:
        raise ToolFailed(f"the weather service answered {response.status_code} without JSON") from error
    if response.status_code != 200 or not isinstance(body, dict):
        reason = body.get("reason") if isinstance(body, dict) else None
        raise ToolFailed(f"the weather service refused: {reason or response.status_code}")
    return body


async def run(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    location = str(arguments.get("location") or context.config.get("default_location") or "").strip()
    if not location:
        raise ToolFailed("no place was named")
    units = str(context.config.get("units") or "celsius").lower()
    if units not in ("celsius", "fahrenheit"):
        raise ToolFailed("units must be celsius or fahrenheit")
    options = context.options
    timeout = float(options.get("timeout_seconds", 10.0))
    key = {"apikey": context.config["api_key"]} if context.config.get("api_key") else {}
    found = await _get(
        context.http,
        options["geocoding_url"].rstrip("/") + "/v1/search",
        {"name": location, "count": 1, "format": "json", **key},
        timeout,
    )
    places = found.get("results") or []
    if not places:
        raise ToolFailed(f"no place called {location!r} was found")
    place = places[0]
    forecast = await _get(
        context.http,
        options["forecast_url"].rstrip("/") + "/v1/forecast",
        {
            "latitude": place["latitude"],
            "longitude": place["longitude"],
            "current": CURRENT,
            "timezone": "auto",
            "temperature_unit": units,
            **key,
        },
        timeout,
    )
    current, shown_units = forecast.get("current") or {}, forecast.get("current_units") or {}
    if "temperature_2m" not in current:
        raise ToolFailed("the weather service gave no current weather")
    return {
        "location": ", ".join(str(part) for part in (place.get("name"), place.get("country")) if part),
        "time": current.get("time"),
        "temperature": current["temperature_2m"],
        "temperature_unit": shown_units.get("temperature_2m", "°C"),
        "feels_like": current.get("apparent_temperature"),
        "humidity_percent": current.get("relative_humidity_2m"),
        "precipitation_mm": current.get("precipitation"),
        "wind_speed": current.get("wind_speed_10m"),
        "wind_speed_unit": shown_units.get("wind_speed_10m", "km/h"),
        "sky": SKY.get(current.get("weather_code"), "unknown"),
    }
