"""`sync` links a job only to dataset artifacts of its own project, under the job's own file id."""

from __future__ import annotations

from finetune_wb.tracking.sync import sync_job
from tests.fakes.finetune_api import FakeFineTuneAPI, FakeJob, jsonl, training_lines
from tests.fakes.wandb_readback import read_runs


def test_the_same_bytes_logged_in_another_project_are_not_this_jobs_artifact() -> None:
    data = jsonl(training_lines())
    api = FakeFineTuneAPI(files={"file-first": data, "file-later": data})
    one = api.add_job(FakeJob("ftjob-projecta0001", training_file="file-first", validation_file=None))
    two = api.add_job(FakeJob("ftjob-projectb0001", training_file="file-later", validation_file=None))
    three = api.add_job(FakeJob("ftjob-projectb0002", training_file="file-first", validation_file=None))
    client = api.client()
    assert sync_job(one.id, project="project-a", client=client).outcome == "synced"
    assert sync_job(two.id, project="project-b", client=client).outcome == "synced"
    assert sync_job(three.id, project="project-b", client=client).outcome == "synced"

    runs = {r.name: r for r in read_runs()}
    # project-b logged its own artifact instead of naming project-a's
    (own,) = [a for a in runs[two.id].artifacts() if a["type"] == "dataset"]
    (entry,) = runs[two.id].config["lineage"]["inputs"]
    assert entry["openai_file_id"] == "file-later"  # this job's file, not the first upload's
    assert own["metadata"]["openai_file_id"] == "file-later"
    # a job in project-b whose file id is known from project-a: linked to project-b's artifact of those bytes
    (entry3,) = runs[three.id].config["lineage"]["inputs"]
    assert entry3["sha256"] == entry["sha256"] and entry3["openai_file_id"] == "file-first"
    assert [a for a in runs[three.id].artifacts() if a["type"] == "dataset"] == []
