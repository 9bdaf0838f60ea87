"""Progress bars shared by the modules that wait or transfer, and where progress is shown by default.

Each bar is one of three kinds (:func:`bar_kind`):

* ``"widget"``: in a Jupyter kernel with ipywidgets, the ``tqdm.notebook`` widget;
* ``"lines"``: in a Jupyter kernel without ipywidgets, plain text lines (a ``tqdm.std`` bar that never moves
  the cursor) — a notebook's output area does not understand the cursor-up escapes (``ESC[A``) that stacked
  terminal bars use, and shows them as ``[A`` garbage;
* ``"terminal"``: anywhere else, the ordinary ``tqdm.std`` bar.

:func:`in_notebook` tells whether the code runs in a Jupyter kernel without importing IPython (a service that
never loaded it pays nothing). The session shows progress by default only there (:func:`default_progress`).
tqdm is imported when a bar is made, so ``import finetune_wb`` stays light.
"""

from __future__ import annotations

import builtins
import functools
import os
import sys
import time
from typing import Any, Literal

BarKind = Literal["widget", "lines", "terminal"]

LINE_INTERVAL = 20.0
"""Seconds between two lines of one text bar in a notebook without ipywidgets (the first and last always show)."""


def _ipython_shell() -> Any:
    """The running IPython shell, or None; IPython is never imported here, only asked when already loaded."""
    getter = getattr(builtins, "get_ipython", None)  # a kernel puts get_ipython into builtins
    if getter is None:
        module = sys.modules.get("IPython")
        getter = getattr(module, "get_ipython", None) if module is not None else None
    if not callable(getter):
        return None
    try:
        return getter()
    except Exception:  # a half-initialised or foreign IPython: not a notebook
        return None


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (notebook, JupyterLab, VS Code, Colab), not a terminal."""
    shell = _ipython_shell()
    if shell is None:
        return False
    try:
        if type(shell).__name__ == "ZMQInteractiveShell":
            return True
        config = getattr(shell, "config", None)
        return config is not None and "IPKernelApp" in config
    except Exception:
        return False


def default_progress() -> bool:
    """Progress shown when the caller did not say: yes in a notebook, no elsewhere (services and scripts log)."""
    return in_notebook()


def _widgets_usable() -> bool:
    """ipywidgets imports and tqdm's notebook bar found its widget classes (a Qt console has no widgets)."""
    if any(name == "QT_API" or name.startswith("SPYDER") for name in os.environ):
        return False
    try:
        import ipywidgets  # noqa: F401
        from tqdm import notebook
    except Exception:  # not installed, or a broken install: text lines instead
        return False
    return getattr(notebook, "IProgress", None) is not None


def bar_kind() -> BarKind:
    """Which bar :func:`progress_bar` makes here: ``"widget"``, ``"lines"`` or ``"terminal"``."""
    if not in_notebook():
        return "terminal"
    return "widget" if _widgets_usable() else "lines"


@functools.cache
def _line_bar_class() -> type[Any]:
    from tqdm.std import tqdm as std_tqdm

    class LineBar(std_tqdm):  # type: ignore[misc,valid-type]
        """A text bar that writes whole lines, at most one per ``LINE_INTERVAL``, and never moves the cursor."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._last_line_at: float | None = None
            self._last_text: str | None = None
            self._closing = False
            super().__init__(*args, **kwargs)

        def moveto(self, n: int) -> None:  # stacked terminal bars move up and down with ESC[A: not here
            return

        def clear(self, nolock: bool = False) -> None:  # a printed line stays printed
            return

        def close(self) -> None:
            self._closing = True
            super().close()

        def display(self, msg: str | None = None, pos: int | None = None) -> bool:
            if msg == "":  # close(leave=False) wipes its line (then writes "\r"): there is nothing to wipe
                return False
            text = self.__str__() if msg is None else msg
            now = time.monotonic()
            if not self._closing:
                recent = self._last_line_at is not None and now - self._last_line_at < LINE_INTERVAL
                if recent or text == self._last_text:
                    return True
            self._last_line_at, self._last_text = now, text
            # close() ends the last line itself
            self.fp.write(text if self._closing else text + "\n")
            self.fp.flush()
            return True

    return LineBar


def progress_bar(
    total: float | None = None,
    *,
    desc: str | None = None,
    disable: bool = False,
    unit: str = "it",
    unit_scale: bool = False,
    leave: bool = True,
    **kwargs: Any,
) -> Any:
    """Return a tqdm bar writing to stderr (stdout stays clean for ``--json`` output), of :func:`bar_kind`.

    ``disable=True`` gives a bar whose ``update``/``set_postfix``/``close`` are no-ops, so callers never need
    to branch on whether progress is shown.
    """
    kwargs.setdefault("file", sys.stderr)
    common = {"total": total, "desc": desc, "unit": unit, "unit_scale": unit_scale, "leave": leave}
    kind = "terminal" if disable else bar_kind()
    if kind == "widget":
        from tqdm.notebook import tqdm as notebook_tqdm

        kwargs.setdefault("dynamic_ncols", True)
        return notebook_tqdm(**common, **kwargs)
    if kind == "lines":
        for key in ("position", "dynamic_ncols", "ncols", "nrows"):  # no terminal: no rows, no width
            kwargs.pop(key, None)
        kwargs.setdefault("mininterval", 1.0)
        return _line_bar_class()(**common, **kwargs)
    from tqdm.std import tqdm as std_tqdm

    kwargs.setdefault("dynamic_ncols", True)
    return std_tqdm(disable=disable, **common, **kwargs)
