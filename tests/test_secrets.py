"""_secrets: what may be shown or stored of a URL."""

from __future__ import annotations

import pytest

from finetune_wb._secrets import safe_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:sk-secret@api.example.com:8443/v1/?api-key=sk-2#frag",
            "https://api.example.com:8443/v1",
        ),
        ("http://127.0.0.1:9/v1/", "http://127.0.0.1:9/v1"),
        ("https://my.openai.azure.com", "https://my.openai.azure.com"),
        ("", ""),
        (None, ""),
        ("not a url", ""),
        ("http://[::1", ""),  # unparseable
    ],
)
def test_safe_url_drops_user_info_query_and_fragment(url: str | None, shown: str) -> None:
    assert safe_url(url) == shown
    assert "secret" not in safe_url(url) and "sk-" not in safe_url(url)
