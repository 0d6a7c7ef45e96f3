"""The `restorium` command as a user runs it: a real process, real Prefect, Ray and weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

RESTORIUM = [sys.executable, "-m", "flows.cli"]


def _counts(summary: dict) -> dict:
    return {k: v for k, v in summary["counts"].items() if k != "flagged"}


def _cli(*args: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*RESTORIUM, *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def env(tmp_path: Path, shared_models: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RESTORIUM_HOME": str(tmp_path / "archive"),
        "RESTORIUM_MODELS_DIR": str(shared_models),
        "PREFECT_HOME": str(tmp_path / "prefect"),  # a private ephemeral Prefect database
        "COLUMNS": "200",
    }


@pytest.mark.slow
def test_run_json_then_audit_from_catalog_and_from_file(tmp_path, env, shared_data):
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.open(shared_data / "old_photos/old_w_scratch/c.png").convert("RGB").crop((0, 0, 96, 64)).save(
        scans / "photo.png")
    (scans / "blank.jpg").touch()

    run = _cli("run", str(scans), "--json", env=env)

    # the batch finished, one scan failed (a crash would exit 4 and print no summary)
    assert run.returncode == 1 and run.stdout.strip(), run.stderr
    summary = json.loads(run.stdout)  # stdout holds only the JSON (progress goes to stderr)
    assert _counts(summary) == {"scans": 2, "ingested": 2, "mastered": 1, "unchanged": 0, "failed": 1, "skipped": 0}
    by_name = {Path(s["path"]).name: s for s in summary["scans"]}
    assert by_name["blank.jpg"] == {"path": str(scans / "blank.jpg"), "sha256": by_name["blank.jpg"]["sha256"],
                                    "outcome": "failed", "master": None, "access": None,
                                    "reason": "zero-byte file", "verdict": "fail", "flags": [],
                                    "notes": [], "kind": "invalid"}
    master = by_name["photo.png"]["master"]
    assert Path(master).is_file() and Path(by_name["photo.png"]["access"]).is_file()
    assert (tmp_path / "archive" / "reports" / f"run-{summary['run_uuid']}.json").is_file()

    from_catalog = _cli("audit", master, "--json", env=env)
    from_file = _cli("audit", master, "--json", "--from-file", env={**env, "RESTORIUM_HOME": "/nonexistent"})
    assert from_catalog.returncode == 0 and from_file.returncode == 0, from_catalog.stderr + from_file.stderr
    assert json.loads(from_catalog.stdout) == json.loads(from_file.stdout)
    audit = json.loads(from_catalog.stdout)
    assert audit["original"]["path"] == str(scans / "photo.png")
    assert audit["run"]["uuid"] == summary["run_uuid"]
    assert audit["recipe"]["hash"] == summary["recipe_hash"]
    assert [s["step"] for s in audit["steps"]][:3] == ["ingest", "digest", "qa"]

    human = _cli("audit", master, env=env)
    assert human.returncode == 0 and "realesr-general-x4v3" in human.stdout and "weights sha256" in human.stdout


def test_a_crash_is_told_apart_from_failed_scans(tmp_path, env):
    """Prefect's API server not starting in time (a loaded machine) is a crash: exit 4 with the reason,
    not exit 1 ("some scans failed") with nothing to say."""
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.fromarray(np.full((32, 48, 3), 128, np.uint8)).save(scans / "grey.png")
    # a first start in a new PREFECT_HOME takes 11+ s: one second is never enough
    run = _cli("run", str(scans), "--json", env={**env, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1"})
    assert run.returncode == 4, run.stderr
    assert run.stdout == ""
    assert "run crashed: RuntimeError: Timed out while attempting to connect to ephemeral Prefect API" in run.stderr
    assert "run again to resume" in run.stderr
    assert not list((tmp_path / "archive").glob("masters/**/*.tif"))


def test_missing_weights_stop_before_any_work(tmp_path, env):
    (tmp_path / "scans").mkdir()
    empty_models = tmp_path / "no-models"
    empty_models.mkdir()
    result = _cli("run", str(tmp_path / "scans"), "--models-dir", str(empty_models), env=env, timeout=120)
    assert result.returncode == 2
    assert "realesr-general-x4v3" in result.stderr and "restorium models fetch" in result.stderr
    assert "restorium models import" in result.stderr
    # archival names the fidelity weights first and says how to make them, then its fallback
    assert "restorium-fidelity-x4v3" in result.stderr and "restorium models finetune" in result.stderr
    assert "fallback model is missing too" in result.stderr
    assert not (tmp_path / "archive" / "catalog.sqlite").exists()


def test_models_finetune_registers_weights_the_archival_preset_then_uses(tmp_path, env, shared_models, shared_data):
    models = tmp_path / "models"
    models.mkdir()
    (models / "realesr-general-x4v3.pth").symlink_to(shared_models / "realesr-general-x4v3.pth")
    photos = sorted((shared_data / "sr_gt/CBSD68").glob("*.png"))[1:3]
    result = _cli("models", "finetune", *map(str, photos), "--steps", "2", "--models-dir", str(models),
                  env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("restorium-fidelity-x4v3: ")
    record = json.loads((models / "restorium-fidelity-x4v3.training.json").read_text())
    assert record["settings"]["steps"] == 2 and record["files"] == [str(p.resolve()) for p in photos]
    listed = _cli("models", "list", "--json", "--models-dir", str(models), env=env, timeout=120)
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["restorium-fidelity-x4v3"]["present"] and rows["restorium-fidelity-x4v3"]["sha256"] == record["sha256"]

    missing = _cli("models", "finetune", str(tmp_path / "nothing-here"), "--models-dir", str(models), env=env,
                   timeout=120)
    assert missing.returncode == 2 and "nothing-here: no such file or folder" in missing.stderr


def test_models_prepare_says_what_is_wrong_before_training(tmp_path, env, shared_models, shared_data):
    empty = tmp_path / "no-photos"
    empty.mkdir()
    models = tmp_path / "models"
    nothing = _cli("models", "prepare", str(empty), "--models-dir", str(models), env=env, timeout=120)
    assert nothing.returncode == 2 and "no photographs to train on" in nothing.stderr
    photo = str(sorted((shared_data / "sr_gt/CBSD68").glob("*.png"))[1])
    no_source = _cli("models", "prepare", photo, "--from", str(tmp_path / "gone"), "--models-dir", str(models),
                     env=env, timeout=120)
    assert no_source.returncode == 2 and "gone: no such folder of weights" in no_source.stderr
    unknown = _cli("models", "prepare", photo, "--from", str(shared_models), "--only", "gfpgan",
                   "--models-dir", str(models), env=env, timeout=120)
    assert unknown.returncode == 2 and "'gfpgan' is not a model restorium makes" in unknown.stderr
    assert not list(models.glob("restorium-*.pth"))  # nothing trained


def test_argument_errors_are_clear(tmp_path, env):
    result = _cli("run", str(tmp_path), "--scale", "2", "--long-edge", "3840", env=env, timeout=120)
    assert result.returncode == 2 and "not both" in result.stderr
    result = _cli("run", str(tmp_path), "--recipe", "nope", env=env, timeout=120)
    assert result.returncode == 2 and "no recipe preset named 'nope'" in result.stderr
    result = _cli("run", str(tmp_path / "missing"), env=env, timeout=120)
    assert result.returncode == 2 and "not a folder" in result.stderr
    # Rich would read "[old]" as a style tag and drop it, and "[/old]" would crash the message
    for name in ("box [old]", "box [/old]"):
        result = _cli("run", str(tmp_path / name), env=env, timeout=120)
        assert result.returncode == 2 and f"{tmp_path / name}: not a folder" in result.stderr, result.stderr


def test_models_list_shows_the_shared_weights(env, shared_models):
    result = _cli("models", "list", "--json", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["realesr-general-x4v3"]["present"] is True
    assert rows["realesr-general-x4v3"]["sha256"] == (
        "abfdb8b42866ea77a7b30091d8ef0134179a0cf5418315b1d2ccb861317d4952")
    assert rows["RealESRGAN_x2plus"]["present"] is False


def test_qa_command_reports_findings_per_file(tmp_path, env, shared_data):
    from tasks.demo import samples

    clean = np.asarray(Image.open(shared_data / "sr_gt/McMaster/4.tif").convert("RGB"))
    Image.fromarray(samples.motion_blur(clean, 15, 30)).save(tmp_path / "shaken.png")
    Image.fromarray(samples.add_noise(clean, 20, seed=1)).save(tmp_path / "grainy.png")
    data = (shared_data / "edge_cases/0014.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])

    result = _cli("qa", str(tmp_path), "--json", "--profile", "fadgi-3star-photo", env=env, timeout=300)

    assert result.returncode == 1, result.stderr  # a file failed
    by_name = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    shaken = by_name["shaken.png"]["findings"]
    assert shaken["blur"]["type"] == "motion" and abs(shaken["blur"]["angle_deg"] - 30) < 10
    assert shaken["blur"]["length_px"] > 8
    grainy = by_name["grainy.png"]
    assert 15 < grainy["findings"]["noise_sigma"] < 25 and any(r.startswith("noisy") for r in grainy["reasons"])
    for key in ("scratches", "jpeg_blockiness", "clipping", "contrast", "color_cast", "skew_deg"):
        assert key in grainy["findings"]
    assert grainy["verdict"] == "fail"  # an 8-bit PNG is not a FADGI 3-star master
    assert any("fadgi-3star-photo" in r for r in grainy["reasons"])
    assert by_name["cut.jpg"]["verdict"] == "fail" and "damaged JPEG" in by_name["cut.jpg"]["reasons"][0]


def test_summary_prints_paths_and_reasons_as_they_are(capsys, monkeypatch):
    """Folder and file names are text, not Rich markup: "[old]" stays, "[/old]" does not crash."""
    from flows.cli.app import _print_summary

    monkeypatch.setenv("COLUMNS", "300")
    summary = {
        "run_uuid": "r1", "recipe": "archival", "recipe_hash": "0" * 64, "scans_dir": "/scans", "home": "/arch",
        "catalog": "sqlite:////arch/catalog.sqlite", "timings": {"wall_seconds": 1.0},
        "counts": {"scans": 2, "ingested": 2, "mastered": 1, "unchanged": 0, "failed": 1, "flagged": 1},
        "scans": [
            {"path": "/scans/box [old]/a.tif", "outcome": "mastered", "master": "/arch/masters/box [old]/a.1.tif",
             "reason": None, "flags": ["fidelity guard: SSIM [low]"]},
            {"path": "/scans/box [/old]/b.tif", "outcome": "failed", "master": None, "reason": "cannot read [/x]",
             "flags": []},
        ],
    }
    _print_summary(summary)
    shown = capsys.readouterr().out
    for text in ("box [old]/a.tif", "masters/box [old]/a.1.tif", "SSIM [low]", "box [/old]/b.tif", "cannot read [/x]"):
        assert text in shown
