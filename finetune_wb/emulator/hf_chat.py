"""Answering chat requests with a Hugging Face causal LM (a LoRA adapter applied when there is one).

The prompt is the model's chat template with the generation prompt (and the request's ``tools`` when the
template takes them); decoding is greedy, so the same request gets the same answer. When a request offers
tools and the model writes a tool call (``<tool_call>{...}</tool_call>``, or a bare JSON object with
``name`` and ``arguments``), the answer is that tool call, the way OpenAI answers ``finish_reason:
"tool_calls"``.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from finetune_wb.emulator.answerers import Answer

DEFAULT_MAX_NEW_TOKENS = 64
_TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)


def parse_tool_calls(text: str) -> list[dict[str, Any]]:
    """The tool calls written in ``text`` (empty when it holds none)."""
    found = _TOOL_CALL.findall(text)
    if not found and text.strip().startswith("{"):
        found = [text.strip()]
    calls = []
    for raw in found:
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("name"), str):
            args = obj.get("arguments", obj.get("parameters", {}))
            calls.append(
                {
                    "type": "function",
                    "function": {
                        "name": obj["name"],
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
            )
    return calls


def serving_device() -> str:
    """Where chat generation runs: the first CUDA GPU, else Apple's MPS, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


class HfChatModel:
    """A loaded model and tokenizer that answer chat messages (one generation at a time)."""

    takes_options = True  # chat.py passes tools and max_tokens to answer()

    def __init__(
        self, base: str, adapter: str | None = None, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    ):
        from finetune_wb.emulator.trl_worker import load_model

        self.base, self.adapter = base, adapter
        self.model, self.tokenizer = load_model(base, adapter=adapter)
        device = serving_device()
        if device != "cpu":  # answers on the GPU the model was trained on (its weights load on the CPU)
            self.model.to(device)
        self.model.eval()
        self.max_new_tokens = max_new_tokens
        self._lock = threading.Lock()

    def generate(
        self, messages: list[dict[str, Any]], *, tools: Any = None, max_tokens: int | None = None
    ) -> str:
        import torch

        from finetune_wb.emulator.trl_data import _clean_message

        clean = [_clean_message(m) for m in messages if isinstance(m, dict)]
        ids = self.tokenizer.apply_chat_template(
            clean,
            tools=tools or None,
            add_generation_prompt=True,
            tokenize=True,
            return_tensors="pt",
            return_dict=True,
        )
        device = next(self.model.parameters()).device
        ids = {k: v.to(device) for k, v in ids.items()}
        pad = self.tokenizer.pad_token_id
        with self._lock, torch.no_grad():
            out = self.model.generate(
                **ids,
                max_new_tokens=min(max_tokens or self.max_new_tokens, 4096),
                do_sample=False,
                pad_token_id=pad if pad is not None else self.tokenizer.eos_token_id,
            )
        new = out[0][ids["input_ids"].shape[1] :]
        return str(self.tokenizer.decode(new, skip_special_tokens=True)).strip()

    def answer(self, messages: list[Any], *, tools: Any = None, max_tokens: int | None = None) -> Answer:
        text = self.generate(messages, tools=tools, max_tokens=max_tokens)
        if tools:
            calls = parse_tool_calls(text)
            if calls:
                return {"tool_calls": calls}
        return text
