"""The training loop's shared pieces: which checkpoint counts as best."""

import torch

from models.training.loop_utils import keep_if_best, read_best, score_of


def test_the_score_is_taken_where_given_and_the_psnr_is_not_needed_then():
    assert score_of({"score": 0.3}) == 0.3  # a detector's run logs no PSNR
    assert score_of({"psnr_output": 27.0, "score": 2.5}) == 2.5
    assert score_of({"psnr_output": 27.0}) == 27.0


def test_only_a_better_score_replaces_the_kept_best(tmp_path):
    network = torch.nn.Linear(1, 1)
    path = tmp_path / "best.pt"
    keep_if_best(path, 0, network, {"score": 0.2})
    keep_if_best(path, 1, network, {"score": 0.1})
    assert read_best(path)[0] == 0
    keep_if_best(path, 2, network, {"score": 0.4})
    step, _, metrics = read_best(path)
    assert step == 2 and metrics == {"score": 0.4}
