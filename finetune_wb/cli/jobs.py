"""`finetune-wb upload | train | status | wait | cancel | jobs`: files and fine-tuning jobs.

Every command talks to the server named by OPENAI_BASE_URL (default: OpenAI) with OPENAI_API_KEY, or to
Azure OpenAI through the AZURE_OPENAI_* variables. ``--json`` prints one JSON document on stdout; progress
and events go to stderr. Exit codes: 0 success, 1 the job failed / was cancelled / timed out or the API
refused the request, 2 usage errors or an input that cannot be read.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finetune_wb.cli._common import add_json_flag, client_from_env, describe_connection_error, print_json
from finetune_wb.schema import JOB_STATUSES

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add upload, train, status, wait, cancel and jobs."""
    p = subparsers.add_parser("upload", help="validate and upload a JSONL file (re-uses an identical upload)")
    p.add_argument("path", help="JSONL training or validation file")
    p.add_argument("--purpose", default="fine-tune", help="file purpose (default: fine-tune)")
    p.add_argument("--model", default=None, help="base model whose limits the validator checks")
    p.add_argument("--no-validate", action="store_true", help="upload even if the validator finds errors")
    p.add_argument("--force", action="store_true", help="upload again even if an identical file exists")
    _add_progress_flag(p)
    add_json_flag(p)
    p.set_defaults(handler=_guard(cmd_upload))

    p = subparsers.add_parser("train", help="create a fine-tuning job (uploading local files first)")
    p.add_argument("--model", required=True, help="base model, e.g. gpt-4o-mini-2024-07-18")
    p.add_argument("--training-file", required=True, metavar="PATH_OR_ID", help="JSONL path or file id")
    p.add_argument("--validation-file", default=None, metavar="PATH_OR_ID", help="JSONL path or file id")
    p.add_argument("--method", default="supervised", choices=["supervised", "dpo"], help="training method")
    p.add_argument("--epochs", type=int, default=None, help="number of epochs (default: auto)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: auto)")
    p.add_argument("--learning-rate-multiplier", type=float, default=None, help="(default: auto)")
    p.add_argument("--suffix", default=None, help="suffix of the fine-tuned model name")
    p.add_argument("--seed", type=int, default=None, help="training seed")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE", help="job metadata")
    p.add_argument(
        "--provider",
        default=None,
        metavar="NAME",
        help="check the job against this provider's profile before any upload (openai, azure, bedrock, "
        "nebius, generic; default: the one of the server's URL); see finetune-wb providers",
    )
    p.add_argument(
        "--training-type",
        default=None,
        choices=["standard", "globalstandard", "developerTier"],
        help="Azure OpenAI only: where the job trains (sent as trainingType)",
    )
    p.add_argument("--wait", action="store_true", help="wait for the job to end, printing its events")
    p.add_argument("--timeout", type=float, default=None, help="with --wait: stop waiting after S seconds")
    p.add_argument(
        "--new",
        action="store_true",
        help="create a new job even if one for the same files, settings and server exists (re-run default: "
        "re-attach to it)",
    )
    _add_progress_flag(p)
    add_json_flag(p)
    p.set_defaults(handler=_guard(cmd_train))

    _job_command(subparsers, "status", "show a fine-tuning job", cmd_status)
    p = _job_command(subparsers, "wait", "wait for a job to end (re-attaches to a running job)", cmd_wait)
    p.add_argument("--timeout", type=float, default=None, help="stop waiting after S seconds (exit 1)")
    p.add_argument("--poll-interval", type=float, default=1.0, help="first polling interval in seconds")
    p.add_argument(
        "--after-event",
        default=None,
        metavar="EVENT_ID",
        help="print only events after this one (the id a timed-out wait reported), so none repeats",
    )
    _add_progress_flag(p)
    _job_command(subparsers, "cancel", "cancel a fine-tuning job", cmd_cancel)

    p = subparsers.add_parser("jobs", help="list fine-tuning jobs (all pages)")
    p.add_argument(
        "--status",
        action="append",
        default=None,
        choices=JOB_STATUSES,
        help="only jobs with this status (repeatable)",
    )
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE", help="metadata filter")
    p.add_argument("--limit", type=int, default=None, help="at most N jobs")
    add_json_flag(p)
    p.set_defaults(handler=_guard(cmd_jobs))


def _job_command(
    subparsers: argparse._SubParsersAction[Any],
    name: str,
    help_text: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """A subcommand taking one job id, with ``--json``."""
    p: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text)
    p.add_argument("job", help="job id (ftjob-...)")
    add_json_flag(p)
    p.set_defaults(handler=_guard(handler))
    return p


def _add_progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar and no event lines")


def _guard(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn API errors (not FineTuneErrors, which the dispatcher handles) into exit code 1."""

    def run(args: argparse.Namespace) -> int:
        import openai

        try:
            return handler(args)
        except _UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except openai.APIStatusError as exc:
            print(f"error: the API answered {exc.status_code}: {_api_message(exc)}", file=sys.stderr)
            return EXIT_FAILED
        except openai.APIConnectionError as exc:
            print(f"error: {describe_connection_error(exc)}", file=sys.stderr)
            return EXIT_FAILED
        except openai.APIError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except openai.OpenAIError as exc:  # e.g. no API key configured
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE

    run.__name__ = handler.__name__
    return run


def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc)


def _parse_pairs(pairs: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _UsageError(f"expected KEY=VALUE, got {pair!r}")
        result[key] = value
    return result


def _job_summary(job: Any) -> str:
    parts = [f"{job.id}  {job.status}  model={job.model}"]
    if getattr(job, "fine_tuned_model", None):
        parts.append(f"fine_tuned_model={job.fine_tuned_model}")
    if getattr(job, "trained_tokens", None):
        parts.append(f"trained_tokens={job.trained_tokens}")
    error = getattr(job, "error", None)
    if error is not None and getattr(error, "code", None):
        parts.append(f"error=[{error.code}] {error.message}")
    return "  ".join(parts)


def _print_event(event: Any) -> None:
    from tqdm.auto import tqdm

    stamp = time.strftime("%H:%M:%S", time.localtime(event.created_at)) if event.created_at else "--:--:--"
    tqdm.write(f"[{stamp}] {event.level}: {event.message}", file=sys.stderr)


def _file_arg(value: str) -> str | Path:
    """A local file becomes a Path (to upload); otherwise the value must be a file id (``file-...``)."""
    path = Path(value)
    if path.is_file():
        return path
    if value.startswith("file-"):
        return value
    raise _UsageError(f"{value} is neither a readable file nor a file id (file-...)")


class _UsageError(Exception):
    """Bad arguments or unreadable input: exit code 2."""


def cmd_upload(args: argparse.Namespace) -> int:
    from finetune_wb.errors import DataValidationError
    from finetune_wb.jobs.upload import upload_file
    from finetune_wb.tracking.artifacts import ArtifactFileIndex

    path = Path(args.path)
    if not path.is_file():
        reason = "it is a directory, not a JSONL file" if path.is_dir() else "no such file"
        raise _UsageError(f"cannot read {path}: {reason}")
    try:
        file_obj = upload_file(
            path,
            client=client_from_env(),
            purpose=args.purpose,
            validate=not args.no_validate,
            model=args.model,
            reuse=not args.force,
            progress=not args.no_progress,
            index=ArtifactFileIndex(),  # the W&B dataset artifact of this data gets the file id
        )
    except DataValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.json and exc.report is not None:
            print_json(exc.report)  # the same document `finetune-wb validate --json` prints
        return EXIT_FAILED
    if args.json:
        print_json(file_obj)
    else:
        print(file_obj.id)
    return EXIT_OK


_FLAG_OF_FIELD = {
    "model": "--model",
    "method": "--method",
    "n_epochs": "--epochs",
    "batch_size": "--batch-size",
    "learning_rate_multiplier": "--learning-rate-multiplier",
    "suffix": "--suffix",
    "seed": "--seed",
    "metadata": "--metadata",
    "training_type": "--training-type",
}


def _describe_spec_error(exc: ValueError) -> str:
    """A pydantic error on JobSpec as '--flag: reason' lines, without pydantic's URLs and type dumps."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for error in errors():
        loc = error.get("loc") or ()
        field = str(loc[0]) if loc else ""
        where = _FLAG_OF_FIELD.get(field, field or "settings")
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts) or str(exc)


def cmd_train(args: argparse.Namespace) -> int:
    from finetune_wb._jsonable import to_jsonable
    from finetune_wb.errors import FineTuneError
    from finetune_wb.jobs.attach import create_or_reattach, describe_age
    from finetune_wb.schema import JobSpec
    from finetune_wb.tracking.artifacts import ArtifactFileIndex

    training_file = _file_arg(args.training_file)
    validation_file = _file_arg(args.validation_file) if args.validation_file is not None else None
    metadata = _parse_pairs(args.metadata)
    spec_fields: dict[str, Any] = {"model": args.model, "method": args.method, "metadata": metadata}
    for field, value in (
        ("n_epochs", args.epochs),
        ("batch_size", args.batch_size),
        ("learning_rate_multiplier", args.learning_rate_multiplier),
        ("suffix", args.suffix),
        ("seed", args.seed),
        ("training_type", args.training_type),
    ):
        if value is not None:
            spec_fields[field] = value
    try:
        spec = JobSpec(**spec_fields)
    except ValueError as exc:
        raise _UsageError(f"invalid job settings: {_describe_spec_error(exc)}") from exc

    if len(metadata) > 14:
        raise _UsageError(
            f"--metadata: {len(metadata)} pairs given; the API allows 16 and finetune_wb needs 2 "
            "(request id and train fingerprint, so a re-run never starts a second job) - give at most 14"
        )

    from finetune_wb.providers.checks import check_job_spec, profile_for
    from finetune_wb.providers.preflight_checks import PreflightError

    client = client_from_env()
    try:  # before any upload: a job the provider refuses fails here, not on their side after it
        profile = profile_for(client, provider=args.provider)
        check_job_spec(spec, profile)
    except FineTuneError as exc:
        flag = _FLAG_OF_FIELD.get(str(getattr(exc, "field", "")))
        raise _UsageError(f"{flag}: {exc}" if flag else str(exc)) from exc
    try:  # the end of OpenAI's jobs and shutdown dates are checked (before the upload) when a job is created
        outcome = create_or_reattach(
            spec,
            training_file=training_file,
            validation_file=validation_file,
            client=client,
            index=ArtifactFileIndex(),  # local files are uploaded: their W&B dataset artifacts get the file ids
            new=args.new,
            provider=profile,
        )
    except PreflightError as exc:
        raise _UsageError(str(exc)) from exc
    job = outcome.job
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    if outcome.reattached:
        print(
            f"re-attached to {job.id}, {describe_age(job.created_at)} (status {job.status}); the same files, "
            "settings and server - nothing was created (pass --new to start another job)",
            file=sys.stderr,
        )
    elif not args.json:
        print(f"created {job.id}", file=sys.stderr)
    if not args.wait:
        if args.json:
            print_json({**to_jsonable(job), "reattached": outcome.reattached})
        else:
            print(job.id)
        return EXIT_OK
    return _wait_and_print(
        job.id, client=client, args=args, failures=(FineTuneError,), extra={"reattached": outcome.reattached}
    )


def _wait_and_print(
    job_id: str,
    *,
    client: Any,
    args: argparse.Namespace,
    failures: tuple[type[Exception], ...],
    extra: dict[str, Any] | None = None,
) -> int:
    """Wait and print the final job; one of ``failures`` prints the error (and the job with --json), exit 1.

    ``extra`` keys are added to the job object printed with ``--json``."""
    from finetune_wb.jobs.operations import get_job

    try:
        final = _wait(job_id, client=client, args=args)
    except failures as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.json:
            print_json(_with_extra(get_job(job_id, client=client), extra))
        return EXIT_FAILED
    if args.json:
        print_json(_with_extra(final, extra))
    else:
        _print_final(final, args)
    return EXIT_OK


def _with_extra(job: Any, extra: dict[str, Any] | None) -> Any:
    from finetune_wb._jsonable import to_jsonable

    return {**to_jsonable(job), **extra} if extra else job


def _wait(job_id: str, *, client: Any, args: argparse.Namespace) -> Any:
    from finetune_wb.jobs.waiting import wait_for_job

    quiet = args.no_progress
    return wait_for_job(
        job_id,
        client=client,
        timeout=args.timeout,
        poll_interval=getattr(args, "poll_interval", 1.0),
        on_event=None if (quiet or args.json) else _print_event,
        progress=not quiet,
        after_event_id=getattr(args, "after_event", None),
    )


def _print_final(job: Any, args: argparse.Namespace) -> None:
    if args.json:
        print_json(job)
    else:
        print(_job_summary(job))


def cmd_status(args: argparse.Namespace) -> int:
    from finetune_wb.jobs.operations import get_job

    job = get_job(args.job, client=client_from_env())
    _print_final(job, args)
    return EXIT_OK


def cmd_wait(args: argparse.Namespace) -> int:
    from finetune_wb.errors import JobCancelled, JobFailed, JobTimeout

    return _wait_and_print(
        args.job, client=client_from_env(), args=args, failures=(JobFailed, JobCancelled, JobTimeout)
    )


def cmd_cancel(args: argparse.Namespace) -> int:
    from finetune_wb.jobs.operations import cancel_job

    job = cancel_job(args.job, client=client_from_env())
    _print_final(job, args)
    if job.status in ("succeeded", "failed"):
        # The server refuses to cancel a job that already ended; say so rather than pretend it worked.
        print(f"error: job {job.id} had already {job.status}; nothing was cancelled", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    from finetune_wb.jobs.operations import list_jobs

    metadata = _parse_pairs(args.metadata)
    jobs = list_jobs(
        client=client_from_env(), status=args.status, metadata=metadata or None, limit=args.limit
    )
    if args.json:
        print_json(jobs)
    else:
        for job in jobs:
            print(_job_summary(job))
        if not jobs:
            print("no fine-tuning jobs", file=sys.stderr)
    return EXIT_OK
