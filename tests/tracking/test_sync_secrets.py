"""Keys that live only in the client (not in the environment) never reach W&B, records or messages."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from typing import Any

import pytest

from finetune_wb._secrets import known_secrets, url_secrets
from finetune_wb.tracking.sync import sync_job, sync_jobs
from tests.fakes.finetune_api import FakeFineTuneAPI, FakeJob, jsonl, training_lines
from tests.fakes.wandb_readback import files_containing, read_runs

CLIENT_KEY = "sk-only-in-the-client-0123456789abcdef"
URL_PASSWORD = "pw-in-the-base-url-0123456789"
QUERY_KEY = "gateway-query-key-0123456789abcdef"
HEADER_KEY = "gateway-header-key-0123456789abcdef"
SECRETS = [CLIENT_KEY, URL_PASSWORD, QUERY_KEY, HEADER_KEY]


def _roots() -> list[str]:
    names = ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "FINETUNE_WB_HOME")
    return [os.environ[v] for v in names if os.environ.get(v)]


def test_url_secrets_finds_user_info_and_key_like_query_values() -> None:
    url = f"https://bob:{URL_PASSWORD}@gw.example/v1?api-version=2024-10-21&api-key={QUERY_KEY}"
    found = url_secrets(url)
    assert URL_PASSWORD in found and QUERY_KEY in found and f"bob:{URL_PASSWORD}" in found
    assert "2024-10-21" not in found  # not a credential
    assert url_secrets("http://127.0.0.1:8787/v1") == [] and url_secrets(None) == []


def test_a_base_url_with_credentials_in_the_environment_is_a_known_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"https://bob:{URL_PASSWORD}@gw.example/v1?key={QUERY_KEY}")
    secrets = known_secrets()
    assert URL_PASSWORD in secrets and QUERY_KEY in secrets


def test_sync_with_keys_only_in_the_client_leaks_none_of_them(
    monkeypatch: pytest.MonkeyPatch, no_online_wandb: list[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the key exists only inside the client
    api = FakeFineTuneAPI(
        files={"file-train": jsonl(training_lines()), "file-valid": jsonl(training_lines()[:2])}
    )
    ok = api.add_job(FakeJob("ftjob-clientkey0001", event_steps=[1, 2]))
    failed = api.add_job(
        FakeJob(
            "ftjob-clientkey0002",
            status="failed",
            event_steps=[],
            # a server error message quoting the key (some gateways echo the request)
            error={"code": "bad", "message": f"rejected request ?api-key={QUERY_KEY}", "param": None},
        )
    )
    client = api.client(
        api_key=CLIENT_KEY,
        base_url=f"http://bob:{URL_PASSWORD}@fake-openai.invalid/v1",
        default_query={"api-key": QUERY_KEY},
        default_headers={"x-api-key": HEADER_KEY},
    )
    # Verbose logging to the console, as `finetune-wb -v sync` does: httpx logs every URL (with the query).
    handler = logging.StreamHandler(sys.stderr)
    httpx_logger = logging.getLogger("httpx")
    old_level = httpx_logger.level
    httpx_logger.addHandler(handler)
    httpx_logger.setLevel(logging.INFO)
    try:
        report = sync_jobs(project="secrets", client=client)
        missing = sync_job("ftjob-missing00003", project="secrets", client=client)
    finally:
        httpx_logger.removeHandler(handler)
        httpx_logger.setLevel(old_level)

    assert {r.job_id: r.outcome for r in report.results} == {ok.id: "synced", failed.id: "synced"}
    assert any(QUERY_KEY in str(q) for (_, _, q) in api.journal)  # the gateway key was really sent
    runs = {r.name: r for r in read_runs()}
    assert runs[failed.id].summary["error"]["message"] == "rejected request ?api-key=[redacted]"
    assert runs[failed.id].exit_code == 1
    assert missing.outcome == "failed" and "finetune-wb jobs" in (missing.error or "")
    dumped = report.model_dump_json() + missing.model_dump_json()
    assert not [s for s in SECRETS if s in dumped]
    assert files_containing(SECRETS, *_roots()) == []
    assert no_online_wandb == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_names_it_without_its_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import openai

    from finetune_wb.cli import main
    from finetune_wb.errors import JobError

    port = _closed_port()
    client = openai.OpenAI(
        api_key=CLIENT_KEY,
        base_url=f"http://bob:{URL_PASSWORD}@127.0.0.1:{port}/v1",
        default_query={"api-key": QUERY_KEY},
        max_retries=0,
    )
    monkeypatch.setattr("finetune_wb._retry.DEFAULT_RETRY.max_attempts", 1)
    result = sync_job("ftjob-unreachable01", project="secrets", client=client)
    assert result.outcome == "failed"
    assert f"http://127.0.0.1:{port}/v1" in (result.error or "") and "OPENAI_BASE_URL" in (result.error or "")
    with pytest.raises(JobError) as info:
        sync_jobs(project="secrets", client=client)
    assert f"127.0.0.1:{port}" in str(info.value) and "could not list the fine-tuning jobs" in str(info.value)
    assert not [s for s in SECRETS if s in result.model_dump_json() + str(info.value)]

    monkeypatch.setattr("finetune_wb.cli.sync.client_from_env", lambda: client)
    assert main(["sync", "--id", "ftjob-unreachable01", "--json"]) == 1
    out = capsys.readouterr()
    (item,) = json.loads(out.out)["results"]
    assert item["outcome"] == "failed" and f"127.0.0.1:{port}" in item["error"]
    assert not [s for s in SECRETS if s in out.out + out.err]
    assert read_runs() == []  # nothing was written for a job that could not be read


def test_sync_jobs_rejects_a_negative_limit() -> None:
    from finetune_wb.errors import ConfigError

    with pytest.raises(ConfigError, match="limit must be 0 or more"):
        sync_jobs(project="p", limit=-1, client=FakeFineTuneAPI().client())


def test_clients_are_registered_for_scrubbing(monkeypatch: pytest.MonkeyPatch) -> None:
    from finetune_wb._secrets import register_client_secrets, scrub

    client: Any = FakeFineTuneAPI().client(
        api_key="sk-registered-key-000111222333", default_headers={"Authorization": "Bearer tok-0123456789ab"}
    )
    register_client_secrets(client)
    assert scrub({"note": "sk-registered-key-000111222333 and tok-0123456789ab"}) == {
        "note": "[redacted] and [redacted]"
    }


def test_azure_sync_works_and_never_writes_its_key(
    monkeypatch: pytest.MonkeyPatch, no_online_wandb: list[str]
) -> None:
    import httpx
    import openai

    azure_key = "azure-key-only-in-the-client-0123456789"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    api = FakeFineTuneAPI(
        files={"file-train": jsonl(training_lines()), "file-valid": jsonl(training_lines())}
    )
    job = api.add_job(FakeJob("ftjob-azure000001"))
    seen_keys: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen_keys.append(request.headers.get("api-key", ""))
        return api.handle(request)

    client = openai.AzureOpenAI(
        api_key=azure_key,
        azure_endpoint="https://my-resource.openai.azure.com",
        api_version="2024-10-21",
        http_client=httpx.Client(transport=httpx.MockTransport(handle)),
        max_retries=0,
    )
    result = sync_job(job.id, project="secrets-azure", client=client)
    assert result.outcome == "synced" and azure_key in seen_keys  # the Azure route and key were used
    (run,) = read_runs()
    assert run.summary["status"] == "succeeded" and run.config["job"]["id"] == job.id
    assert files_containing([azure_key], *_roots()) == []
    assert no_online_wandb == []
