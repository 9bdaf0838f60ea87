"""`finetune-wb run CONFIG` and `finetune-wb demo`: the whole chain, from a config file or on bundled data.

Exit codes: 0 done (every evaluation row answered), 1 the run failed or rows are unanswered, 2 the config
cannot be read, 130 interrupted. Progress lines go to stderr; the summary (or ``--json``) to stdout.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from finetune_wb.cli._common import add_json_flag, print_json


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    run_parser = subparsers.add_parser(
        "run",
        help="run a whole fine-tuning session (prepare, validate, fine-tune, wait, evaluate) from a config",
        description=(
            "Run a FineTuneSession from a TOML or YAML config (data, template, split, job, evaluation, W&B "
            "project). Running it again resumes from the state file: no second upload, no second job."
        ),
    )
    run_parser.add_argument("config", metavar="CONFIG", help="a .toml, .yaml or .yml run configuration")
    run_parser.add_argument("--state", default=None, metavar="PATH", help="the session state file to use")
    run_parser.add_argument(
        "--yes", action="store_true", help="create the job against a remote server without asking"
    )
    run_parser.add_argument(
        "--emulator",
        action="store_true",
        help="run against a fresh embedded emulator (W&B offline) instead of OPENAI_BASE_URL / OpenAI",
    )
    run_parser.add_argument(
        "--new-session",
        action="store_true",
        help="start a new session (a new upload and job): the existing state file is kept beside it as "
        "<name>.<session id>.json; needed when the state's session ran against another server",
    )
    run_parser.add_argument(
        "--quality",
        choices=("check", "warn", "off"),
        default=None,
        help="the data-quality gate before the upload: check (stop on leakage, secrets; the default),"
        " warn (log only) or off; overrides [quality] mode",
    )
    run_parser.add_argument(
        "--accept-quality",
        action="append",
        default=None,
        metavar="CODE",
        help="accept this finding code knowingly (repeatable; e.g. leakage, secret); added to [quality] accept",
    )
    add_json_flag(run_parser)
    run_parser.set_defaults(handler=run_command)

    demo_parser = subparsers.add_parser(
        "demo",
        help="the whole chain on a bundled dataset: offline against the emulator without OPENAI_API_KEY",
        description=(
            "Fine-tune and evaluate on 120 generated contract clauses that ship with the package. Without "
            "OPENAI_API_KEY it runs offline: embedded emulator, W&B offline under --out. With a key it runs "
            "for real after showing the estimated cost and asking (or --yes)."
        ),
    )
    demo_parser.add_argument(
        "--yes", action="store_true", help="in a real run, create the job without asking"
    )
    demo_parser.add_argument(
        "--out",
        default="finetune-wb-demo",
        metavar="DIR",
        help="output directory (default: ./finetune-wb-demo)",
    )
    demo_parser.add_argument(
        "--emulator", action="store_true", help="use the embedded emulator even when OPENAI_API_KEY is set"
    )
    demo_parser.add_argument("--pace", type=float, default=1.0, help=argparse.SUPPRESS)
    add_json_flag(demo_parser)
    demo_parser.set_defaults(handler=demo_command)


def _echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _confirm(question: str) -> bool:
    """Ask on the terminal; without one, never say yes on the user's behalf."""
    if not sys.stdin.isatty():
        _echo(f"{question} -> no terminal to ask on; pass --yes to proceed")
        return False
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}


def _quiet_wandb() -> None:
    """The CLI owns its process: keep wandb's own banners out of the output unless asked for."""
    import os

    os.environ.setdefault("WANDB_SILENT", "true")


def _os_error(exc: OSError) -> int:
    """A file the command must write (state, data splits, --out) cannot be written: say which, exit 1."""
    where = f"{exc.filename}: " if exc.filename else ""
    print(f"error: {where}{exc.strerror or exc}; choose a writable location", file=sys.stderr)
    return 1


def run_command(args: argparse.Namespace) -> int:
    try:
        return _run_command(args)
    except OSError as exc:
        return _os_error(exc)


def _run_command(args: argparse.Namespace) -> int:
    from finetune_wb.config.model import RunConfig
    from finetune_wb.errors import ConfigError
    from finetune_wb.session.config_runner import run_config

    _quiet_wandb()
    try:
        config = _with_quality_flags(RunConfig.load(args.config), args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.emulator:
        import tempfile

        from finetune_wb.emulator import run_emulator

        # a dry run: its runs never go to the online project (offline, or none when the config disables W&B)
        mode = "disabled" if config.wandb_mode == "disabled" else "offline"
        config = config.model_copy(update={"wandb_mode": mode})
        flavour = "azure" if config.azure is not None else "openai"
        with (
            tempfile.TemporaryDirectory(prefix="finetune-wb-run-") as tmp,
            run_emulator(pace=0.2, flavour=flavour) as emu,
        ):
            state = args.state or f"{tmp}/state.json"
            client = emu.client()
            if config.azure is not None:  # the emulator's Azure flavour stands in for the account too
                client = emu.v1_client() if config.azure.v1 else emu.azure_client()
                config = config.model_copy(
                    update={"azure": _emulated_account(config.azure, emu.management_url)}
                )
            result = run_config(
                config,
                client=client,
                azure_token="emulator",
                state_path=state,
                yes=True,
                echo=_echo,
                progress=False,
                new_session=args.new_session,
            )
    else:
        result = run_config(
            config,
            state_path=args.state,
            yes=args.yes,
            confirm=_confirm,
            echo=_echo,
            progress=sys.stderr.isatty(),
            new_session=args.new_session,
        )
    if args.json:
        print_json(_run_json(result))
    else:
        print(f"state: {result.state_path}")
        print(f"job: {result.job_id} {result.job_status} -> {result.fine_tuned_model}")
        if result.evaluation_text:
            print(result.evaluation_text)
    unanswered = sum(
        int(m.get("n_unanswered") or 0)
        for m in (result.evaluation or {}).get("models", [])
        if isinstance(m, dict)
    )
    if unanswered:
        print(
            f"error: {unanswered} evaluation rows unanswered; run the same command again to retry them",
            file=sys.stderr,
        )
        return 1
    return 0


def _with_quality_flags(config: Any, args: argparse.Namespace) -> Any:
    """``--quality`` and ``--accept-quality`` over the config's ``[quality]`` table."""
    if args.quality is None and not args.accept_quality:
        return config
    update: dict[str, Any] = {}
    if args.quality is not None:
        update["mode"] = args.quality
    if args.accept_quality:
        update["accept"] = sorted({*config.quality.accept, *args.accept_quality})
    quality = config.quality.model_copy(update=update)
    problems = quality.problems()
    if problems:
        from finetune_wb.errors import ConfigError

        raise ConfigError("; ".join(f"--accept-quality: {message}" for _, message in problems))
    return config.model_copy(update={"quality": quality})


def _emulated_account(azure: Any, management_url: str) -> Any:
    """``[azure]`` pointed at the emulator's management routes (placeholders for a location left out)."""
    return azure.model_copy(
        update={
            "management_url": management_url,
            "subscription": azure.subscription or "emulator-subscription",
            "resource_group": azure.resource_group or "emulator-rg",
            "account": azure.account or "emulator-account",
        }
    )


def _run_json(result: Any) -> dict[str, Any]:
    """``run --json``: the evaluation's metrics in the schema of ``eval --json`` (numbers + metric_details)."""
    from finetune_wb._jsonable import to_jsonable
    from finetune_wb.evaluation.report import with_metric_details

    data: dict[str, Any] = to_jsonable(result)
    if isinstance(data.get("evaluation"), dict):
        data["evaluation"] = with_metric_details(data["evaluation"])
    return data


def _drop_offline_hint(record: logging.LogRecord) -> bool:
    """The demo's summary lists its offline runs and the `wandb sync` command; don't say it twice."""
    return not (
        record.name.startswith("finetune_wb.tracking") and record.getMessage().startswith("W&B is offline")
    )


def demo_command(args: argparse.Namespace) -> int:
    try:
        return _demo_command(args)
    except OSError as exc:
        return _os_error(exc)


def _demo_command(args: argparse.Namespace) -> int:
    from finetune_wb.demo import format_summary, run_demo

    _quiet_wandb()
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(_drop_offline_hint)
    try:
        result = run_demo(
            out_dir=args.out,
            yes=args.yes,
            emulator=True if args.emulator else None,
            confirm=_confirm,
            echo=_echo,
            pace=args.pace,
            progress=sys.stderr.isatty(),
        )
    finally:  # main() may be called again in the same process (tests, an embedding tool)
        for handler in handlers:
            handler.removeFilter(_drop_offline_hint)
    if args.json:
        print_json(result)
    else:
        print(format_summary(result))
    return 0
