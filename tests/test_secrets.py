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
        ("http://[::1]:8000/v1/", "http://[::1]:8000/v1"),  # an IPv6 host keeps its brackets
        ("http://u:sk-secret@[::1]/v1", "http://[::1]/v1"),
    ],
)
def test_safe_url_drops_user_info_query_and_fragment(url: str | None, shown: str) -> None:
    assert safe_url(url) == shown
    assert "secret" not in safe_url(url) and "sk-" not in safe_url(url)


@pytest.mark.parametrize("var", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
def test_a_proxys_password_is_redacted_like_the_api_key(var: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forward proxy's credentials belong in HTTPS_PROXY (the library's advice for user-info in a base URL):
    they are redacted from what is logged, as OPENAI_BASE_URL's are."""
    from finetune_wb._secrets import known_secrets, redact_text

    monkeypatch.setenv(var, "http://proxy-user:proxy-pass-0123456789@proxy.test:3128")
    assert "proxy-pass-0123456789" in known_secrets()
    assert "proxy-pass" not in redact_text(
        "CONNECT via http://proxy-user:proxy-pass-0123456789@proxy.test:3128"
    )
