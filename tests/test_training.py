"""``hashbench train-cnn``: trains, saves the state dict, writes the JSON record; bad input is
one line and exit code 2 with no file written."""

import json

import pytest

from hashbench import nets
from hashbench.cli import main


def test_train_cnn_dsh_and_cls_on_digits(tmp_path, capsys):
    out = tmp_path / "d12.pt"
    assert main(["train-cnn", "dsh", "--protocol", "digits-dsh", "--budget", "25", "--out", str(out), "--quiet",
                 "--device", "cpu"]) == 0
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["command"].startswith("hashbench train-cnn dsh")
    assert (rec["bits"], rec["seed"], rec["iterations"], rec["optimizer"]) == (12, 0, 25, "adam")
    assert 0 < rec["scores"]["digits-dsh"]["map"] <= 1 and rec["images_per_s"] > 0
    state = nets.load_state(out)
    assert state["head.weight"].shape == (12, 500) and tuple(state["mean"].shape) == (8, 8, 3)
    capsys.readouterr()

    cls = tmp_path / "cls.pt"
    assert main(["train-cnn", "cls", "--protocol", "digits-dsh", "--budget", "60", "--out", str(cls), "--quiet",
                 "--device", "cpu"]) == 0
    rec = json.loads(cls.with_suffix(".json").read_text())
    assert rec["kind"] == "cls" and rec["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    # fine-tuning a 24-bit model from the 12-bit one
    ft = tmp_path / "d24.pt"
    assert main(["train-cnn", "dsh", "--bits", "24", "--init-from", str(out), "--protocol", "digits-dsh",
                 "--budget", "5", "--out", str(ft), "--quiet", "--device", "cpu"]) == 0
    assert json.loads(ft.with_suffix(".json").read_text())["init_from"] == str(out)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--out", "model.bin"], "must end in .pt"),
        (["--out", "m.pt", "--budget", "fast"], "--budget"),
        (["--out", "m.pt", "--threads", "0"], "--threads"),
        (["--out", "m.pt", "--relax", "sigmoid"], "margin"),
    ],
)
def test_bad_arguments_exit_2_without_output(tmp_path, capsys, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    assert main(["train-cnn", "dsh", "--protocol", "digits-dsh", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())
