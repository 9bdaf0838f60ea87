"""pytest fixtures for the emulator, registered through the ``pytest11`` entry point of finetune-wb.

- ``finetune_emulator``: an :class:`~finetune_wb.emulator.Emulator`. One server runs for the whole test
  session (started the first time a test asks for it); before each test it is reset (no files, jobs, faults,
  rate limits or journal) and set back to the fast session pace.
- ``finetune_emulator_azure``: the same for an emulator of Azure OpenAI (``flavour="azure"``).
- ``finetune_emulator_client`` / ``finetune_emulator_async_client``: ``openai.OpenAI`` /
  ``openai.AsyncOpenAI`` pointed at it.

The pace defaults to 0.01 (a 100-example, 3-epoch job finishes in ~0.1 s); set the ini option
``finetune_emulator_pace`` to change it. This module imports nothing heavy until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import openai

    from finetune_wb.emulator.runner import Emulator

DEFAULT_TEST_PACE = 0.01


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "finetune_emulator_pace",
        help="pace of the finetune_emulator fixture's server (1.0 = default speed, smaller = faster)",
        default=str(DEFAULT_TEST_PACE),
    )


def _pace(config: pytest.Config) -> float:
    try:
        return float(config.getini("finetune_emulator_pace"))
    except (TypeError, ValueError):
        return DEFAULT_TEST_PACE


def _running(request: pytest.FixtureRequest, **options: Any) -> Iterator[Emulator]:
    """One emulator for the test session (started on first use, stopped at the end)."""
    from finetune_wb.emulator.runner import Emulator

    emu = Emulator(pace=_pace(request.config), **options)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


def _reset(emu: Emulator, request: pytest.FixtureRequest) -> Emulator:
    emu.reset()
    emu.pace = _pace(request.config)
    return emu


@pytest.fixture(scope="session")
def _finetune_emulator_session(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    yield from _running(request)


@pytest.fixture
def finetune_emulator(_finetune_emulator_session: Emulator, request: pytest.FixtureRequest) -> Emulator:
    """The session's emulator, reset for this test."""
    return _reset(_finetune_emulator_session, request)


@pytest.fixture(scope="session")
def _finetune_emulator_azure_session(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    yield from _running(request, flavour="azure")


@pytest.fixture
def finetune_emulator_azure(
    _finetune_emulator_azure_session: Emulator, request: pytest.FixtureRequest
) -> Emulator:
    """An emulator of Azure OpenAI (``flavour="azure"``), reset for this test: ``azure_client()``,
    ``v1_client()`` and the deployments routes at ``management_url``."""
    return _reset(_finetune_emulator_azure_session, request)


@pytest.fixture
def finetune_emulator_client(finetune_emulator: Emulator) -> Iterator[openai.OpenAI]:
    """An ``openai.OpenAI`` client pointed at the reset emulator."""
    client = finetune_emulator.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def finetune_emulator_async_client(finetune_emulator: Emulator) -> Any:
    """An ``openai.AsyncOpenAI`` client pointed at the reset emulator.

    It keeps no idle connections: a test may drive it from several ``asyncio.run`` calls (a pooled
    connection belongs to the loop that opened it), and nothing is left open for the test to close, so
    suites run with ``-W error`` see no ResourceWarning about an unclosed socket.
    """
    return finetune_emulator.async_client(default_headers={"Connection": "close"})
