"""The resolution ladder (issue 14): journalled, resumable, and its ordering verdict."""

import json

import pandas as pd
import pytest

from dipspec.experiments import ladder, trajectories
from dipspec.fitting import FitInterrupted
from dipspec.fitting.interrupts import request_interrupt


def test_a_ladder_journals_each_fit_and_a_rerun_skips_them(tmp_path, monkeypatch):
    options = dict(images=["astronaut"], sizes=[64], width=4, progress=False,
                   iterations={64: 8}, device="cpu")
    path = ladder.run_ladder(tmp_path, **options)
    rows = ladder.ladder_rows(path)
    assert sorted(rows["lambda"]) == ["1", "2", "3", "plain"]
    assert (rows["peak_psnr"] >= rows["final_psnr"]).all()
    assert (rows["decay_db"] - (rows["peak_psnr"] - rows["final_psnr"])).abs().max() < 1e-9
    for _, row in rows.iterrows():  # each fit's trajectory is kept beside the journal
        trajectory = trajectories.load_trajectory(tmp_path / row["trajectory"])
        assert len(trajectory) == 8
        assert abs(trajectory["psnr"].max() - row["peak_psnr"]) < 1e-4

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished fit ran again")

    monkeypatch.setattr(trajectories, "fit_many", must_not_run)
    ladder.run_ladder(tmp_path, **options)  # everything is in the journal
    with pytest.raises(AssertionError, match="ran again"):
        ladder.run_ladder(tmp_path, **{**options, "iterations": {64: 9}})  # a changed setting


def test_a_rung_split_by_lambda_finishes_with_the_same_journal(tmp_path):
    options = dict(images=["astronaut"], sizes=[64], width=4, progress=False,
                   iterations={64: 6}, device="cpu")
    path = ladder.run_ladder(tmp_path, **options, lambdas=[1.0, None])
    first = ladder.ladder_rows(path).set_index("lambda")
    assert sorted(first.index) == ["1", "plain"]
    ladder.write_report(path, tmp_path / "part", images=["astronaut"], sizes=[64])
    info = json.loads((tmp_path / "part.json").read_text())["provenance"]
    assert info["rungs_pending"] == ["astronaut 64² (λ = 2, 3 to run)"]
    rows = ladder.ladder_rows(ladder.run_ladder(tmp_path, **options)).set_index("lambda")
    assert sorted(rows.index) == ["1", "2", "3", "plain"]  # the rest of the rung, no repeat
    assert rows.loc[["1", "plain"], "final_psnr"].tolist() == first["final_psnr"].tolist()
    assert ladder.write_report(path, tmp_path / "whole", images=["astronaut"],
                               sizes=[64]).shape[0] == 1  # a finished rung gets its verdict


@pytest.mark.parametrize("given", [["1.5"], ["two"], ["1", "4"]])
def test_the_ladder_command_refuses_a_lambda_it_does_not_run(tmp_path, capsys, given):
    with pytest.raises(SystemExit) as stop:
        ladder.main(["--out", str(tmp_path), "--lambdas", *given, "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 2 and "the ladder runs λ = 1, 2, 3, plain" in err
    assert not (tmp_path / "ladder.journal.jsonl").exists()


def test_checked_lambdas_keeps_the_ladders_order():
    assert ladder.checked_lambdas(["plain", "3", 1]) == (1.0, 3.0, None)
    assert ladder.checked_lambdas([None, 2.0]) == (2.0, None)


def _rung(peaks, finals):
    return pd.DataFrame({"image": "x", "size": 64, "lambda": ["1", "2", "3", "plain"],
                         "peak_psnr": peaks, "final_psnr": finals,
                         "decay_db": [p - f for p, f in zip(peaks, finals)]})


def test_ordering_states_the_papers_three_conditions():
    holds = ladder.ordering(_rung([26.0, 30.0, 30.5, 30.5], [25.9, 29.8, 27.0, 22.0]))
    assert holds.loc[0, "holds"] and holds.loc[0, "best_final_lambda"] == "2"
    # λ = 1 is already right (as at 64² with width 128): it ends best, so the ordering fails
    shifted = ladder.ordering(_rung([26.0, 25.5, 25.4, 25.4], [25.6, 20.7, 22.3, 22.3]))
    assert not shifted.loc[0, "holds"] and not shifted.loc[0, "two_best"]
    assert shifted.loc[0, "best_final_lambda"] == "1"


@pytest.mark.parametrize("how", ["killed", "Ctrl-C"])
def test_a_rung_killed_mid_way_continues_from_its_checkpoint(tmp_path, monkeypatch, how):
    """Fit and recorder checkpoint together: the continued rung equals an uninterrupted one,
    whether the process died (the last periodic checkpoint, 15) or was asked to stop (Ctrl-C:
    the fit saves where it is, 18, and the recorder with it)."""
    options = dict(images=["astronaut"], sizes=[64], width=4, progress=False,
                   iterations={64: 23}, device="cpu")
    monkeypatch.setattr(ladder, "CHECKPOINT_EVERY", 5)
    whole = ladder.ladder_rows(ladder.run_ladder(tmp_path / "whole", **options))
    recorded = trajectories._VarianceRecorder.__call__

    def killed(self, info):
        if info["iteration"] == 17 and info["member"] == 0:
            if how == "killed":
                raise RuntimeError("killed")
            request_interrupt("SIGINT")  # what Ctrl-C does: heard at the end of the iteration
        recorded(self, info)

    monkeypatch.setattr(trajectories._VarianceRecorder, "__call__", killed)
    with pytest.raises(RuntimeError if how == "killed" else FitInterrupted):
        ladder.run_ladder(tmp_path / "split", **options)
    saved = sorted(p.name for p in (tmp_path / "split" / "checkpoints").iterdir())
    last = 15 if how == "killed" else 18
    assert "astronaut_64_s0.pt" in saved and f"astronaut_64_s0.recorder-{last}.pt" in saved
    monkeypatch.setattr(trajectories._VarianceRecorder, "__call__", recorded)
    split = ladder.ladder_rows(ladder.run_ladder(tmp_path / "split", **options))
    assert not list((tmp_path / "split" / "checkpoints").iterdir())  # cleaned up when done
    columns = ["lambda", "peak_psnr", "peak_iteration", "final_psnr", "stop_iteration"]
    pd.testing.assert_frame_equal(split[columns], whole[columns])
    for name in whole["trajectory"]:
        a = trajectories.load_trajectory(tmp_path / "whole" / name)
        b = trajectories.load_trajectory(tmp_path / "split" / name)
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_the_report_tables_the_finished_fits_and_names_the_pending_rungs(tmp_path):
    path = ladder.run_ladder(tmp_path / "run", images=["astronaut"], sizes=[64], width=4,
                             progress=False, iterations={64: 6}, device="cpu")
    verdict = ladder.write_report(path, tmp_path / "ladder", images=["astronaut", "camera"],
                                  sizes=[64, 128])
    assert sorted(p.name for p in tmp_path.glob("ladder.*")) == ["ladder.csv", "ladder.json",
                                                               "ladder.md"]
    table = ladder.read_ladder(tmp_path / "ladder.csv")
    assert list(table["lambda"]) == ["1", "2", "3", "plain"]  # the paper's λ, then plain DIP
    rows = ladder.ladder_rows(path).set_index("lambda")
    assert (table.set_index("lambda")["final_psnr"]
            - rows.loc[table["lambda"], "final_psnr"]).abs().max() <= 5e-4  # rounded to 0.001
    info = json.loads((tmp_path / "ladder.json").read_text())["provenance"]
    assert info["rungs_pending"] == ["camera 64²", "astronaut 128²", "camera 128²"]
    assert info["fits"] == 4 and info["iterations_per_size"] == {"64": 6}
    assert len(verdict) == 1 and verdict.loc[0, "image"] == "astronaut"
    assert "## Does the paper's ordering hold?" in (tmp_path / "ladder.md").read_text()


def test_the_ladder_command_reports_an_unreachable_image_in_one_line(tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.setenv("DIPSPEC_DATA_MIRROR", "")
    monkeypatch.setenv("DIPSPEC_OFFLINE", "1")
    code = ladder.main(["--out", str(tmp_path), "--images", "Peppers", "--sizes", "64",
                        "--width", "4", "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("ladder: error: ")
    assert not (tmp_path / "ladder.journal.jsonl").exists()


def test_the_wide_presets_lambda_is_the_committed_ladders_best_at_its_size():
    """presets.WIDE's denoising λ is the one that ends best on every finished rung at the
    preset's size and width in the committed table (results/ladder.csv)."""
    from dipspec.presets import WIDE

    table = ladder.read_ladder("ladder")
    verdict = ladder.ordering(table)
    at_size = verdict[verdict["size"] == WIDE.image_size]
    assert len(at_size) >= 1
    assert set(at_size["best_final_lambda"]) == {f"{WIDE.lipschitz_lambda:g}"}
