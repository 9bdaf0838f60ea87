"""benchmarks/bench_local_gpu.py says why it measured nothing where no CUDA GPU is visible (CI, laptops)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_local_gpu.py"


def test_without_a_gpu_it_says_why_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    bench = runpy.run_path(str(BENCH), run_name="bench_local_gpu")
    assert bench["main"](["--steps", "2"]) == 0
    assert capsys.readouterr().out == (
        "bench_local_gpu: nothing to measure: no CUDA GPU is visible (torch.cuda.is_available() is False)\n"
    )
