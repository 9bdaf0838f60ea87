"""Progress in notebooks: detected without importing IPython, shown by default there, plain lines without
ipywidgets (no ``ESC[A`` cursor moves), widgets with it, and nothing by default anywhere else."""

from __future__ import annotations

import builtins
import importlib.util
import io
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

from finetune_wb._progress import bar_kind, default_progress, in_notebook, progress_bar
from finetune_wb.session.facade import FineTuneSession


class ZMQInteractiveShell:
    """What ``get_ipython()`` returns in a Jupyter kernel (by class name)."""

    config: ClassVar[dict[str, Any]] = {"IPKernelApp": {}}


class TerminalInteractiveShell:
    """What ``get_ipython()`` returns in the ``ipython`` terminal."""

    config: ClassVar[dict[str, Any]] = {"TerminalIPythonApp": {}}


class Shell:
    """Colab's shell: another class name, but started by an IPKernelApp."""

    config: ClassVar[dict[str, Any]] = {"IPKernelApp": {"connection_file": "kernel.json"}}


def _fake_ipython(monkeypatch: pytest.MonkeyPatch, shell: Any) -> None:
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", module)
    monkeypatch.delattr(builtins, "get_ipython", raising=False)


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Jupyter kernel as the code sees it: ``get_ipython`` in builtins, no ipywidgets."""
    monkeypatch.setattr(builtins, "get_ipython", lambda: ZMQInteractiveShell(), raising=False)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets -> ImportError


def test_no_ipython_is_not_a_notebook_and_nothing_imports_it() -> None:
    code = (
        "import sys\n"
        "from finetune_wb._progress import in_notebook, bar_kind, default_progress\n"
        "print(in_notebook(), bar_kind(), default_progress(), 'IPython' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "terminal", "False", "False"]


@pytest.mark.parametrize(
    ("shell", "expected"),
    [(ZMQInteractiveShell(), True), (Shell(), True), (TerminalInteractiveShell(), False), (None, False)],
)
def test_a_kernel_is_told_from_a_terminal_through_the_loaded_ipython(
    monkeypatch: pytest.MonkeyPatch, shell: Any, expected: bool
) -> None:
    _fake_ipython(monkeypatch, shell)
    assert in_notebook() is expected
    assert default_progress() is expected


def test_a_broken_get_ipython_is_not_a_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Any:
        raise RuntimeError("half-initialised")

    monkeypatch.setattr(builtins, "get_ipython", broken, raising=False)
    assert in_notebook() is False and bar_kind() == "terminal"


def test_stacked_bars_in_a_notebook_without_ipywidgets_are_plain_lines(kernel: None) -> None:
    assert bar_kind() == "lines"
    out = io.StringIO()
    bars = [progress_bar(5, desc=f"model-{i}", unit="row", position=i, file=out) for i in range(2)]
    for _ in range(5):
        for bar in bars:
            bar.update(1)
    for bar in bars:
        bar.close()
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text  # no cursor moves, no carriage returns
    lines = text.splitlines()
    assert text.endswith("\n") and all(line.strip() for line in lines)  # whole lines, none empty
    assert [line.split(":")[0] for line in lines] == ["model-0", "model-1", "model-0", "model-1"]
    assert "5/5" in lines[2] and "5/5" in lines[3]


def test_text_bars_write_a_line_now_and_then_and_always_the_last(kernel: None) -> None:
    out = io.StringIO()
    bar = progress_bar(None, desc="ftjob-1", unit="step", file=out)
    bar.total = 100
    for step in range(100):  # a job polled 100 times within LINE_INTERVAL seconds
        bar.update(1)
        bar.set_postfix({"status": "running", "step": step}, refresh=True)
    bar.set_postfix({"status": "succeeded"}, refresh=False)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("ftjob-1: 0")
    assert "100/100" in lines[1] and "status=succeeded" in lines[1]


def test_a_closed_text_bar_that_does_not_stay_leaves_its_lines(kernel: None) -> None:
    out = io.StringIO()
    bar = progress_bar(3, desc="upload train.jsonl", leave=False, file=out)
    bar.update(3)
    bar.close()
    text = out.getvalue()  # the first line only: a bar that does not stay says nothing at its end
    assert text.startswith("upload train.jsonl:") and "0/3" in text and text.count("\n") == 1
    assert text.endswith("\n") and "\r" not in text and "\x1b" not in text


def test_a_disabled_bar_writes_nothing_in_a_notebook(kernel: None) -> None:
    out = io.StringIO()
    bar = progress_bar(3, desc="quiet", disable=True, file=out)
    bar.update(3)
    bar.set_postfix({"a": 1}, refresh=True)
    bar.close()
    assert out.getvalue() == ""


def test_with_ipywidgets_a_notebook_gets_the_widget_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    import tqdm

    widgets = types.ModuleType("ipywidgets")
    for name in ("HTML", "FloatProgress", "HBox"):
        setattr(widgets, name, type(name, (), {}))
    monkeypatch.setattr(builtins, "get_ipython", lambda: ZMQInteractiveShell(), raising=False)
    monkeypatch.setitem(sys.modules, "ipywidgets", widgets)
    monkeypatch.delitem(sys.modules, "tqdm.notebook", raising=False)  # imported again, finding the widgets
    monkeypatch.delattr(tqdm, "notebook", raising=False)
    assert bar_kind() == "widget"
    monkeypatch.setenv("QT_API", "pyqt5")  # a Qt console runs a kernel but shows no widgets
    assert bar_kind() == "lines"


def test_the_session_shows_progress_by_default_only_in_a_notebook(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"
    assert FineTuneSession("p", state_path=path, wandb_mode="disabled").progress is False  # services
    monkeypatch.setattr(builtins, "get_ipython", lambda: ZMQInteractiveShell(), raising=False)
    assert FineTuneSession("p", state_path=path, wandb_mode="disabled").progress is True
    assert FineTuneSession.resume(path, wandb_mode="disabled").progress is True
    assert FineTuneSession("p", state_path=path, wandb_mode="disabled", progress=False).progress is False
    assert FineTuneSession.resume(path, wandb_mode="disabled", progress=False).progress is False


NOTEBOOK_CELLS = [
    "from finetune_wb import FineTuneSession, JobSpec\n"
    "from finetune_wb._progress import bar_kind\n"
    "from finetune_wb.data.demo_dataset import demo_template, load_demo_records\n"
    "from finetune_wb.emulator import Emulator\n"
    "emu = Emulator(pace=0.02).start()\n"
    "session = FineTuneSession('nb', client=emu.client(), state_path='state.json', wandb_mode='disabled',\n"
    "                          poll_interval=0.05)\n"
    "session.prepare(load_demo_records()[:40], template=demo_template(), n_train=20, seed=1)\n"
    "print(bar_kind(), session.progress)",
    "job = session.fine_tune(JobSpec(model='gpt-4o-mini-2024-07-18', n_epochs=1))\njob = session.wait()",
    "report = session.evaluate(baselines=['gpt-4o-mini-2024-07-18'], evaluators=['exact_match'])",
    "emu.stop()\nprint(job.id)",
]


def test_in_a_real_kernel_wait_and_evaluate_show_progress_without_escapes(tmp_path: Path) -> None:
    """A Jupyter kernel runs the chain: progress by default, as widgets or as plain lines on stderr."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS])
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    def streams(cell: Any, name: str) -> str:
        return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == name)

    setup, wait, evaluate, done = nb.cells
    widgets = importlib.util.find_spec("ipywidgets") is not None
    assert streams(setup, "stdout").split() == ["widget" if widgets else "lines", "True"]
    job_id = streams(done, "stdout").strip()
    if widgets:
        shown = [o for c in (wait, evaluate) for o in c.outputs if o.get("output_type") == "display_data"]
        assert len(shown) >= 3  # the job's bar and one bar per model
        return
    wait_err, eval_err = streams(wait, "stderr"), streams(evaluate, "stderr")
    for text in (wait_err, eval_err):
        assert "\x1b" not in text and "\r" not in text and "IProgress not found" not in text
    assert job_id in wait_err and "status=succeeded" in wait_err.splitlines()[-1]
    finals = [line for line in eval_err.splitlines() if "20/20" in line]
    assert len(finals) == 2  # one finished line per model, each on its own line
