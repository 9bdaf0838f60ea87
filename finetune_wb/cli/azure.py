"""`finetune-wb deploy | undeploy | pause | resume`: Azure OpenAI deployments and pausing jobs.

``deploy`` puts a fine-tuned model (or checkpoint) behind a deployment name through Azure Resource Manager
and waits until it has succeeded; ``undeploy`` deletes the deployment (the model stays). The account's
location comes from ``--subscription/--resource-group/--account`` or ``AZURE_SUBSCRIPTION_ID``,
``AZURE_RESOURCE_GROUP``, ``AZURE_OPENAI_ACCOUNT``; ``--management-url`` or ``AZURE_MANAGEMENT_URL`` points
at another cloud (or the emulator); the token is ``AZURE_MANAGEMENT_TOKEN`` when set, else azure-identity's
``DefaultAzureCredential``. Exit codes: 0 succeeded, 1 the deployment failed or Azure refused it (name in
use, quota), 2 bad input (a missing location, no credential).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from finetune_wb.cli._common import add_json_flag, print_json

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _location_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subscription", default=None, help="subscription id (default: $AZURE_SUBSCRIPTION_ID)")
    p.add_argument("--resource-group", default=None, help="resource group (default: $AZURE_RESOURCE_GROUP)")
    p.add_argument(
        "--account", default=None, help="Azure OpenAI resource name (default: $AZURE_OPENAI_ACCOUNT)"
    )
    p.add_argument(
        "--management-url",
        default=None,
        help="ARM base URL (default: $AZURE_MANAGEMENT_URL or https://management.azure.com)",
    )


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add deploy, undeploy, pause and resume."""
    p = subparsers.add_parser(
        "deploy",
        help="deploy a fine-tuned model on Azure OpenAI and wait until it answers",
        description="Deploy MODEL (a fine_tuned_model or checkpoint id) as DEPLOYMENT. Re-running it re-uses "
        "the deployment of the same model (nothing is deployed twice); a name that serves another model is "
        "refused. Exit codes: 0 succeeded, 1 failed or refused, 2 bad input.",
    )
    p.add_argument("model", help="fine-tuned model id (<base>.ft-<hex>) or checkpoint id (ftchkpt-<hex>)")
    p.add_argument(
        "--name", required=True, metavar="DEPLOYMENT", help="deployment name (what chat calls use)"
    )
    p.add_argument(
        "--sku",
        default="developer",
        choices=["developer", "standard", "globalstandard"],
        help="developer (default: no hosting fee, deleted by Azure after 24 h), standard or globalstandard "
        "(hourly hosting fee)",
    )
    p.add_argument(
        "--capacity", type=int, default=None, help="capacity in thousands of tokens/minute (default 50)"
    )
    _location_flags(p)
    p.add_argument("--timeout", type=float, default=None, help="stop waiting after S seconds (exit 1)")
    p.add_argument("--poll-interval", type=float, default=5.0, help="seconds between status checks")
    add_json_flag(p)
    p.set_defaults(handler=cmd_deploy)

    p = subparsers.add_parser(
        "undeploy", help="delete an Azure OpenAI deployment (the fine-tuned model stays)"
    )
    p.add_argument("deployment", help="deployment name")
    _location_flags(p)
    add_json_flag(p)
    p.set_defaults(handler=cmd_undeploy)

    from finetune_wb.cli.jobs import _guard

    for name, text in (
        ("pause", "pause a running fine-tuning job (Azure OpenAI)"),
        ("resume", "resume a paused job"),
    ):
        p = subparsers.add_parser(name, help=text)
        p.add_argument("job", help="job id (ftjob-...)")
        add_json_flag(p)
        p.set_defaults(handler=_guard(cmd_pause if name == "pause" else cmd_resume), action=name)


def _account(args: argparse.Namespace) -> Any:
    from finetune_wb.jobs.azure_auth import AzureAccount

    return AzureAccount.from_env(
        subscription=args.subscription,
        resource_group=args.resource_group,
        account=args.account,
        management_url=args.management_url,
    )


def _run(args: argparse.Namespace, body: Any) -> int:
    from finetune_wb.errors import ConfigError
    from finetune_wb.jobs.azure_auth import AzureAuthError
    from finetune_wb.jobs.deployments import DeploymentError

    try:
        return int(body())
    except (ConfigError, AzureAuthError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DeploymentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        httpx = sys.modules.get("httpx")
        if httpx is None or not isinstance(exc, httpx.TransportError):
            raise
        print(
            f"error: cannot reach the management endpoint {args.management_url or ''}: {exc}; check "
            "--management-url / AZURE_MANAGEMENT_URL and the network",
            file=sys.stderr,
        )
        return EXIT_FAILED


def cmd_deploy(args: argparse.Namespace) -> int:
    def body() -> int:
        from finetune_wb.jobs.deployments import Deployment, deploy_model
        from finetune_wb.providers.hosting import hosting_usd_per_hour

        account = _account(args)

        def on_state(dep: Deployment) -> None:
            if not args.json:
                note = " (re-using the existing deployment)" if dep.reused else ""
                print(f"deployment {dep.name}: {dep.state}{note}", file=sys.stderr)

        dep = deploy_model(
            args.model,
            name=args.name,
            account=account,
            sku=args.sku,
            capacity=args.capacity,
            timeout=args.timeout,
            poll_interval=args.poll_interval,
            on_state=on_state,
        )
        fee = hosting_usd_per_hour(dep.model, dep.sku)
        if args.json:
            print_json(
                {**dep.model_dump(mode="json"), "hosting_usd_per_hour": fee, "account": account.account}
            )
        else:
            print(dep.name)
            cost = "no hosting fee" if fee == 0 else f"hosting fee about ${fee:.2f}/hour until undeployed"
            print(f"{dep.name} serves {dep.model} ({dep.sku}, {cost})", file=sys.stderr)
        return EXIT_OK

    return _run(args, body)


def cmd_undeploy(args: argparse.Namespace) -> int:
    def body() -> int:
        from finetune_wb.jobs.deployments import undeploy

        account = _account(args)
        deleted = undeploy(args.deployment, account=account)
        if args.json:
            print_json({"name": args.deployment, "deleted": deleted, "account": account.account})
        else:
            what = "deleted" if deleted else "did not exist (nothing to delete)"
            print(f"deployment {args.deployment} {what}", file=sys.stderr)
        return EXIT_OK

    return _run(args, body)


def _job_action(args: argparse.Namespace, action: Any) -> int:
    from finetune_wb._jsonable import to_jsonable
    from finetune_wb.cli._common import client_from_env

    job = action(args.job, client=client_from_env())
    if args.json:
        print_json(to_jsonable(job))
    else:
        print(f"{job.id}: {job.status}")
    return EXIT_OK


def cmd_pause(args: argparse.Namespace) -> int:
    from finetune_wb.jobs.pausing import pause_job

    return _job_action(args, pause_job)


def cmd_resume(args: argparse.Namespace) -> int:
    from finetune_wb.jobs.pausing import resume_job

    return _job_action(args, resume_job)
