"""Request body caps (the limits OpenAI documents) and JSON bodies parsed as the real API parses them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from finetune_wb.emulator.state import ApiError

MB = 1024 * 1024
GB = 1024 * MB
#: room for the multipart envelope (boundaries, the ``purpose`` field) around an uploaded file or part
FORM_SLACK = MB


@dataclass(frozen=True)
class BodyLimits:
    """The largest request bodies the emulator reads, in bytes; beyond them it answers 413.

    The defaults are the limits OpenAI documents: a file of the Files API is at most 512 MB; a part of the
    Uploads API at most 64 MB and an upload at most 8 GB. OpenAI documents no byte limit for a chat
    request; its "Images and vision" guide allows up to 50 MB of image bytes per request, the largest body
    a valid chat request can need, so that is the cap for chat requests and every other JSON body.
    """

    file: int = 512 * MB
    upload_part: int = 64 * MB
    upload: int = 8 * GB
    chat: int = 50 * MB
    json: int = 50 * MB

    def __post_init__(self) -> None:
        for name in ("file", "upload_part", "upload", "chat", "json"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"body limit {name!r} must be a whole number of bytes >= 1, got {value!r}")

    def for_request(self, method: str, path: str) -> tuple[int, str]:
        """The cap on the body of one request and what it is called in the 413 message."""
        if method == "POST" and path == "/v1/files":
            return self.file + FORM_SLACK, f"a file upload (files are at most {self.file} bytes)"
        if method == "POST" and path.startswith("/v1/uploads/") and path.endswith("/parts"):
            return (
                self.upload_part + FORM_SLACK,
                f"an upload part (parts are at most {self.upload_part} bytes)",
            )
        if path == "/v1/chat/completions":
            return self.chat, f"a chat request (at most {self.chat} bytes)"
        return self.json, f"a request body (at most {self.json} bytes)"


def too_large(what: str, size: int | str, *, param: str | None = None) -> ApiError:
    return ApiError(
        413,
        f"The request is too large: {size} bytes for {what}. Send less data per request (split a file "
        "with the Uploads API, shorten the messages).",
        param=param,
        code="request_too_large",
        headers={"connection": "close"},  # the rest of the body is not read: do not reuse the connection
    )


def parse_json(raw: bytes) -> dict[str, Any]:
    """A JSON object from a request body; 400 (never 500) for anything else, however deeply nested."""
    try:
        body = json.loads(raw or b"{}")
    except RecursionError:
        raise ApiError(
            400,
            "We could not parse the JSON body of your request: it is nested too deeply. "
            "Send a flatter JSON object.",
            code="invalid_json",
        ) from None
    except ValueError:
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. The API expects a JSON payload "
            "(Content-Type: application/json), but what was sent was not valid JSON.",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    return body
