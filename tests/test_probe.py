"""The probes end to end (`mosrm probe`, `evaluate --probes`): constructed models on a small CSV
task whose MOS rises with loudness and duration by less than the transforms change them, so the
shortcuts' answers are known in advance; every model runs in the sandbox, in one stream with the
task's own clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmark.cli import main
from tests.sandbox_required import sandbox_needed
from tests.toy_task import finish_repo, write_wav

pytestmark = sandbox_needed()

SYSTEMS, SENTENCES = 4, 12


def _repo(tmp_path: Path) -> Path:
    """4 systems x 12 sentences: system s is 0.5 dB louder and 20 ms longer than s − 1 (well
    inside +6 dB and 0.5 s), and better rated; clips of a sentence share its tone."""
    data = tmp_path / "data"
    rows = ["wav,mos,system,sentence,votes,std"]
    rng = np.random.default_rng(11)
    for s in range(SYSTEMS):
        for c in range(SENTENCES):
            name = f"wav/s{s}_c{c}.wav"
            amp = 0.1 * 10 ** (0.5 * s / 20)
            write_wav(data / name, seconds=0.4 + 0.02 * s + 0.01 * c, seed=c, amp=amp)
            mos = round(1.5 + 0.8 * s + rng.uniform(-0.2, 0.2), 3)
            rows.append(f"{name},{mos},sys{s},sent{c},{6 + c % 3},{0.6 + 0.05 * (c % 4):.2f}")
    (data / "scores.csv").write_text("\n".join(rows) + "\n")
    pairs = {"test": {"same_content": 60, "same_system": 60, "cross": 80}}
    return finish_repo(
        tmp_path / "repo", data, pairs=pairs, bins=3, seed=3, split_column=False, rated=True
    )


SNR_MODEL = '''
import torch
from benchmark.models import Batch


class Model(torch.nn.Module):
    """Scores how little broadband noise a clip holds: minus the energy of its first difference
    relative to its energy (a tone's difference is small, white or pink noise's is not)."""

    sample_rate = 16000

    @torch.no_grad()
    def score(self, batch: Batch) -> torch.Tensor:
        x = batch.waveforms.float()
        m = batch.mask().float()
        d = (x[:, 1:] - x[:, :-1]) * m[:, 1:]
        return -(d.pow(2).sum(1) / (x.pow(2) * m).sum(1).clamp_min(1e-12)).log()
'''


def _snr_model(repo: Path) -> None:
    folder = repo / "submissions" / "snr-model"
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(SNR_MODEL)
    spec = {
        "name": "snr-model",
        "display_name": "SNR model",
        "kind": "scalar",
        "entry": "model.py:Model",
        "description": "x",
    }
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))


def _probe(repo: Path, *subs: str, extra: tuple[str, ...] = ()) -> dict[str, dict]:
    rc = main(["--workspace", str(repo), "probe", *subs, "--task", "toy", "--quiet", *extra])
    assert rc == 0
    out = {}
    for s in subs:
        out[s] = json.loads((repo / "results" / s / "probes" / "toy.json").read_text())
    return out


def _hack(record: dict, probe: str) -> dict:
    return next(r for r in record["hacking"]["rows"] if r["probe"] == probe)


def test_shortcuts_are_caught_by_the_transforms_they_lean_on(tmp_path: Path, capsys) -> None:
    repo = _repo(tmp_path)
    _snr_model(repo)
    subs = ("shortcut-loudness", "shortcut-duration", "shortcut-random", "snr-model")
    rec = _probe(repo, *subs, extra=("--probe-pairs", "200"))
    out = capsys.readouterr().out

    loud, dur, rand, snr = (rec[s] for s in subs)
    # loudness: right on most pairs, and +6 dB on the rejected clip turns nearly all of them
    gain = _hack(loud, "gain@+6dB")
    assert loud["hacking"]["right_before"] >= 100
    assert gain["flip_rate"] >= 0.95 and gain["ci_low"] > 0.85
    assert gain["score_shift"]["score_shift"] > 1.0  # in units of its own score spread
    assert _hack(loud, "gain@-6dB")["flip_rate"] == 0.0  # quieter never helps a loudness model
    # duration: half a second of silence on the rejected clip
    for p in ("silence_lead@0.5s", "silence_trail@0.5s"):
        assert _hack(dur, p)["flip_rate"] >= 0.95, p
    assert _hack(dur, "polarity@inverted")["flip_rate"] == 0.0
    # the worst flip rate is reported (a +0.05 DC offset adds more energy than 6 dB here)
    worst = loud["hacking"]["worst"]
    assert worst["flip_rate"] == max(r["flip_rate"] for r in loud["hacking"]["rows"]) >= 0.95

    # best of N: loudness ranks the clips of a sentence exactly as their MOS (louder = better
    # within every group here): an oracle of the labels, gain exactly 1
    for key in ("n_all", "n_4"):
        assert loud["best_of_n"][key]["gain"] == 1.0, key
    # the random shortcut: about 0, with an interval that holds 0
    r = rand["best_of_n"]["n_all"]
    assert r["ci_low"] < 0 < r["ci_high"] and abs(r["gain"]) < 0.5
    assert r["groups"] == SENTENCES
    assert loud["best_of_n"]["n_all"]["ceiling"]["gain"] is not None  # rated: a ceiling

    # an SNR model: clean beats noisy at every level, so accuracy never falls with severity
    checks = {m["family"]: m for m in snr["sensitivity"]["monotonicity"]}
    for fam in ("noise_white", "noise_pink"):
        assert checks[fam]["monotone"], checks[fam]
        rows = [x for x in snr["sensitivity"]["rows"] if x["family"] == fam]
        assert [x["accuracy"] for x in rows][-1] == 1.0  # 5 dB SNR: always caught
    # every scalar model scored the test clips among probes as in its plain evaluation
    for s in subs:
        assert rec[s]["stream_check"]["consistent"], s
    # cost is stated: 32 clips x 23 degradations and the transformed rejected clips
    hacked = snr["cost"]["probe_clips"] - 32 * 23
    assert hacked > 0 and hacked % 8 == 0  # 8 transforms of each rejected clip probed
    cost = snr["cost"]
    assert cost["stream_clips"] == cost["plain_clips"] + cost["probe_clips"]
    assert snr["sensitivity"]["clips"] == 32 and snr["cost"]["plain_clips"] == SYSTEMS * SENTENCES
    assert "flip rate" in out and "best of 4" in out and "degradation accuracy" in out


def test_probe_clips_are_byte_identical_and_sent_among_every_test_clip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs in fresh homes write the same probe files; the stream holds every test clip beside
    the probes (sent in the scorer's order, a function of the audio alone: `scoring.order`), so a
    model never sees a batch of probes alone and cannot tell a probe by when it arrives."""
    from benchmark.data.tasks import workspace_task
    from benchmark.pairs.prepare import prepare
    from benchmark.probe import ProbeSettings, build_stream

    repo = _repo(tmp_path)
    digests = []
    for run in range(2):
        monkeypatch.setenv("MOSRM_HOME", str(tmp_path / f"home{run}"))
        prepared = prepare(workspace_task(repo, "toy"), reuse=True, progress=False)
        stream = build_stream(prepared, "test", ProbeSettings(clips=8, pairs=16), seed=3)
        files = sorted(
            Path(p) for p in stream.clips.column("audio_path").to_pylist() if Path(p).is_absolute()
        )
        digests.append({f.name: f.read_bytes() for f in files})
        assert len(stream.degraded) == 8 * 23 and stream.hacked
        ids = set(stream.clips.column("clip_id").to_pylist())
        assert set(stream.real) <= ids and len(stream.real) == SYSTEMS * SENTENCES
    assert digests[0] == digests[1]


def test_a_pairwise_judge_is_probed_through_prefer_in_both_orders(tmp_path: Path) -> None:
    """The pairwise template (a judge comparing frame energies) is asked each probe pair in both
    orders; best of N is its round robin; it has no scalar score, so no score shift."""
    repo = _repo(tmp_path)
    assert main(["--workspace", str(repo), "init", "judge", "--kind", "pairwise"]) == 0
    rec = _probe(repo, "judge", extra=("--probe-clips", "8", "--probe-pairs", "24"))["judge"]
    assert rec["kind"] == "pairwise"
    check = rec["stream_check"]  # its answers on the test pairs, among probes and alone
    assert check["pairs"] == 24 and check["consistent"] and check["max_abs_diff"] < 1e-6
    groups = SENTENCES * SYSTEMS * (SYSTEMS - 1) // 2  # every pair inside a content group
    assert rec["cost"]["judge_pairs"] >= 8 * 23 + 24 + groups
    assert len(rec["sensitivity"]["rows"]) == 23
    assert all(r["score_shift"]["score_shift"] is None for r in rec["hacking"]["rows"])
    assert rec["best_of_n"]["n_all"]["groups"] == SENTENCES
    # the template judges by loudness, as the loudness shortcut: fooled by +6 dB
    gain = _hack(rec, "gain@+6dB")
    assert gain["flip_rate"] is not None and gain["flip_rate"] >= 0.9


def test_a_plain_folder_of_clips_gets_degradation_sensitivity(tmp_path: Path, capsys) -> None:
    repo = _repo(tmp_path)
    _snr_model(repo)
    clips = tmp_path / "my-clips"
    for i in range(5):
        write_wav(clips / f"take{i}.wav", seconds=0.5, seed=i, amp=0.2)
    (clips / "notes.txt").write_text("not audio")
    args = ["--workspace", str(repo), "probe", "snr-model", "--audio", str(clips), "--quiet"]
    assert main([*args, "--probe-clips", "4"]) == 0
    rec = json.loads(
        (repo / "results" / "snr-model" / "probes" / "audio-my-clips.json").read_text()
    )
    assert rec["sensitivity"]["clips"] == 4 and len(rec["sensitivity"]["rows"]) == 23
    assert rec["cost"]["plain_clips"] == 5 and rec["cost"]["probe_clips"] == 4 * 23
    assert "skipped" in rec["hacking"] and "skipped" in rec["best_of_n"]
    noise = [r for r in rec["sensitivity"]["rows"] if r["family"] == "noise_white"]
    assert noise[-1]["accuracy"] == 1.0
    assert "degradation accuracy" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--workspace", str(repo), "probe", "snr-model", "--audio", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "no audio files" in err and "Traceback" not in err
