"""Token counting for chat training examples with the model's tiktoken encoding.

The per-example formula is the one OpenAI's fine-tuning data-prep cookbook (and the seed notebook) use:
3 tokens per message, plus the tokens of every string value in the message (role, content, name, ...),
plus 1 when the message has a ``name``, plus 3 per example. On plain chat files the figures therefore agree
exactly with the seed. Structured values the seed could not count (content-part lists, tool calls, tool
definitions) contribute the tokens of their text fields / JSON text, so they are estimates.

``TokenCounter`` counts each distinct string once through a bounded cache: system prompts and short
answers repeat in almost every example, so this roughly halves the encoding work on typical files while the
memory it uses stays capped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from finetune_wb.model_ids import base_model_of

if TYPE_CHECKING:
    import tiktoken

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PER_EXAMPLE = 3

O200K = "o200k_base"
CL100K = "cl100k_base"

# Model-name prefixes -> encoding. Longest matching prefix wins. Fine-tuned names ("ft:BASE:org:suffix:id")
# are looked up by BASE.
ENCODING_BY_PREFIX: dict[str, str] = {
    "gpt-4o": O200K,
    "chatgpt-4o": O200K,
    "gpt-4.1": O200K,
    "gpt-4.5": O200K,
    "gpt-5": O200K,
    "gpt-oss": O200K,
    "o1": O200K,
    "o3": O200K,
    "o4": O200K,
    "gpt-4": CL100K,
    "gpt-3.5-turbo": CL100K,
    "gpt-35-turbo": CL100K,
    "davinci-002": CL100K,
    "babbage-002": CL100K,
    "text-embedding-3": CL100K,
    "text-embedding-ada-002": CL100K,
}
DEFAULT_ENCODING = O200K


def base_model(model: str) -> str:
    """``ft:gpt-4o-mini-2024-07-18:org:suffix:id`` (and Azure's ``gpt-4o-mini-2024-07-18.ft-<hex>``) ->
    ``gpt-4o-mini-2024-07-18``; other names unchanged."""
    return base_model_of(model)


def _lookup(model: str) -> str | None:
    name = base_model(model).strip().lower()
    best: str | None = None
    for prefix in ENCODING_BY_PREFIX:
        if name.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return ENCODING_BY_PREFIX[best] if best is not None else None


def is_known_model(model: str) -> bool:
    """Whether the encoding table knows this model (or a fine-tune of it)."""
    return _lookup(model) is not None


def encoding_name_for_model(model: str) -> str:
    """The tiktoken encoding name for a model; unknown models get o200k_base (today's models use it)."""
    return _lookup(model) or DEFAULT_ENCODING


@functools.lru_cache(maxsize=4)
def get_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken encoding; a ConfigError that says what to do when it cannot be loaded.

    The encoding is built without keeping tiktoken's Python copy of its ~200,000 token ranks (see
    ``_lean_encoding``), which saves about 28 MiB in every process that counts tokens.
    """
    try:
        return _lean_encoding(name)
    except Exception as exc:  # network errors, a corrupt cache, an unknown name
        from finetune_wb.errors import ConfigError

        raise ConfigError(
            f"cannot load the tiktoken encoding {name!r} ({type(exc).__name__}: {str(exc)[:200]}). tiktoken"
            " downloads encodings on first use; without network access set TIKTOKEN_CACHE_DIR to a directory"
            " that holds the cached encoding files"
        ) from exc


def _lean_encoding(name: str) -> tiktoken.Encoding:
    """``tiktoken.get_encoding(name)`` minus the Python dict of mergeable ranks it keeps alive.

    tiktoken's ``Encoding`` holds the ranks twice: in its Rust core, which does all the encoding, and as a
    Python dict (``_mergeable_ranks``) that only pickling and code deriving new encodings read. For
    o200k_base that dict is ~28 MiB. Here the dict is handed to the Rust core and then dropped; reading
    ``_mergeable_ranks`` re-reads it from tiktoken's file cache, and pickling goes by name. An encoding that
    tiktoken has already loaded in this process is shared as it is; an unusual tiktoken falls back to
    ``tiktoken.get_encoding``.
    """
    import tiktoken
    import tiktoken.registry as registry

    loaded = getattr(registry, "ENCODINGS", {}).get(name)
    if loaded is not None:
        return loaded
    try:
        registry.list_encoding_names()  # makes tiktoken find its encoding constructors (plugins)
        constructor = registry.ENCODING_CONSTRUCTORS[name]  # type: ignore[index]
    except (AttributeError, KeyError, TypeError):
        return tiktoken.get_encoding(name)
    encoding = _lean_class()(**constructor())
    encoding._reload = constructor  # type: ignore[attr-defined]
    return encoding


@functools.lru_cache(maxsize=1)
def _lean_class() -> type[tiktoken.Encoding]:
    import tiktoken

    class LeanEncoding(tiktoken.Encoding):
        """A tiktoken Encoding whose Python copy of the ranks is re-read on demand instead of kept."""

        _reload: Any = None

        @property  # type: ignore[override]
        def _mergeable_ranks(self) -> dict[bytes, int]:
            reload = self._reload
            return dict(reload()["mergeable_ranks"]) if reload is not None else {}

        @_mergeable_ranks.setter
        def _mergeable_ranks(self, value: dict[bytes, int]) -> None:
            pass  # Encoding.__init__ stores the dict here; it is not kept (the Rust core has its own copy)

        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return get_encoding, (self.name,)

    return LeanEncoding


class TokenCounter:
    """Counts tokens of strings, remembering each distinct string's count (bounded memory).

    ``max_cached_chars`` bounds the total length of the strings kept as cache keys; when it is reached the
    cache is emptied and refilled, so strings that keep repeating (system prompts, labels) come back quickly.
    Very long strings are never cached: they are rarely repeated and would crowd out the useful entries.
    """

    def __init__(
        self,
        encoding: str | tiktoken.Encoding = DEFAULT_ENCODING,
        *,
        max_cached_chars: int = 1_000_000,
        max_string_chars: int = 20_000,
    ) -> None:
        self.encoding = get_encoding(encoding) if isinstance(encoding, str) else encoding
        self._encode = self.encoding.encode_ordinary
        # The Rust core's method directly: Encoding.encode_ordinary is a Python wrapper around it whose only
        # extra is a retry for strings with lone surrogates (done in count below); ~20% faster per call.
        core = getattr(self.encoding, "_core_bpe", None)
        self._core_encode = getattr(core, "encode_ordinary", None) or self._encode
        self._cache: dict[str, int] = {}
        self._cached_chars = 0
        self._max_cached_chars = max_cached_chars
        self._max_string_chars = max_string_chars

    def clear(self) -> None:
        """Forget the cached counts (frees their memory)."""
        self._cache.clear()
        self._cached_chars = 0

    @property
    def cache(self) -> dict[str, int]:
        """The counts kept so far, by text (read it, don't write it): the validator's fast path looks strings
        up here before calling :meth:`count`."""
        return self._cache

    @classmethod
    def for_model(cls, model: str, **kwargs: Any) -> TokenCounter:
        return cls(encoding_name_for_model(model), **kwargs)

    def count(self, text: str) -> int:
        n = self._cache.get(text)
        if n is not None:
            return n
        # encode_ordinary treats "<|endoftext|>" in user data as plain text instead of raising; the seed's
        # encode() raises on it, but for every ordinary string the two agree.
        try:
            n = len(self._core_encode(text))
        except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800"): tiktoken's wrapper repairs it
            n = len(self._encode(text))
        size = len(text)
        if size <= self._max_string_chars:
            if self._cached_chars + size > self._max_cached_chars:
                self._cache.clear()
                self._cached_chars = 0
            self._cache[text] = n
            self._cached_chars += size
        return n

    def count_value(self, value: Any) -> int:
        """Tokens of a message value: strings directly; part lists by their text; other JSON by its text."""
        if isinstance(value, str):
            return self.count(value)
        if value is None or isinstance(value, bool):
            return 0
        if isinstance(value, list):
            total = 0
            for part in value:
                if (
                    isinstance(part, dict)
                    and part.get("type") == "text"
                    and isinstance(part.get("text"), str)
                ):
                    total += self.count(part["text"])
                elif isinstance(part, dict) and part.get("type") == "image_url":
                    continue  # images are billed by OpenAI separately; no text tokens
                else:
                    total += self._count_json(part)
            return total
        if isinstance(value, (dict, int, float)):
            return self._count_json(value)
        return 0

    def _count_json(self, value: Any) -> int:
        try:
            return self.count(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        except (TypeError, ValueError, RecursionError):
            return 0

    def message_tokens(self, message: Mapping[str, Any]) -> int:
        """The seed's per-message count (without the per-example 3)."""
        n = TOKENS_PER_MESSAGE
        count = self.count
        for key, value in message.items():
            if type(value) is str:
                n += count(value)
            elif key != "weight":
                n += self.count_value(value)
            if key == "name":
                n += TOKENS_PER_NAME
        return n

    def _conversation(self, messages: Any) -> tuple[int, int, int]:
        """(tokens without the per-example 3, assistant content tokens, messages) of a message list.

        This is the hot loop of the validator, so the seed's formula is written out here with the cache
        lookup inlined (same result as summing ``message_tokens``).
        """
        if not isinstance(messages, list):
            return 0, 0, 0
        total = assistant = n_messages = 0
        cache_get = self._cache.get
        count = self.count
        for message in messages:
            if type(message) is not dict:
                continue
            n_messages += 1
            n = TOKENS_PER_MESSAGE
            content_tokens = 0
            for key, value in message.items():
                if type(value) is str:
                    k = cache_get(value)
                    if k is None:
                        k = count(value)
                elif key == "weight":
                    continue
                else:
                    k = self.count_value(value)
                n += k
                if key == "content":
                    content_tokens = k
                elif key == "name":
                    n += TOKENS_PER_NAME
            total += n
            if message.get("role") == "assistant":
                assistant += content_tokens
        return total, assistant, n_messages

    def messages_tokens(self, messages: Any) -> int:
        """Tokens of a message list plus the per-example 3; non-dict entries are ignored."""
        return TOKENS_PER_EXAMPLE + self._conversation(messages)[0]

    def assistant_tokens(self, messages: Any) -> int:
        """Tokens of the assistant messages' content (the seed's ``num_assistant_tokens``)."""
        return self._conversation(messages)[1]

    def example_tokens(self, example: Mapping[str, Any]) -> tuple[int, int, int]:
        """(total tokens, assistant tokens, number of messages) for a chat or a DPO example dict.

        DPO examples count the input messages plus both outputs as one conversation (assistant tokens:
        the preferred output); tool and function definitions add the tokens of their JSON text.
        """
        if "messages" in example:
            total, assistant, n_messages = self._conversation(example.get("messages"))
            tool_holder: Mapping[str, Any] = example
        else:
            inp = example.get("input")
            tool_holder = inp if isinstance(inp, dict) else {}
            total, assistant, n_messages = self._conversation(tool_holder.get("messages"))
            t, a, m = self._conversation(example.get("preferred_output"))
            total, assistant, n_messages = total + t, assistant + a, n_messages + m
            t, _, m = self._conversation(example.get("non_preferred_output"))
            total, n_messages = total + t, n_messages + m
        for key in ("tools", "functions"):
            value = tool_holder.get(key)
            if value:
                total += self._count_json(value)
        return total + TOKENS_PER_EXAMPLE, assistant, n_messages


def count_example_tokens(example: Any, *, model: str = "gpt-4o-mini-2024-07-18") -> int:
    """Total tokens of one example (dict, ChatExample or PreferenceExample) by the seed's formula."""
    data = example.to_openai() if hasattr(example, "to_openai") else example
    if not isinstance(data, dict):
        raise TypeError(f"expected an example dict or model, got {type(example).__name__}")
    return TokenCounter.for_model(model).example_tokens(data)[0]
