"""Shipped experiment files parse and resolve to valid run configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from genood.experiments.spec import ALL_CLAIMS, available, load_experiment


def test_every_shipped_experiment_parses() -> None:
    names = available()
    assert {"fashion-mnist-vs-mnist", "mnist-vs-fashion-mnist", "cifar10-vs-svhn"} <= set(names)
    for name in names:
        experiment = load_experiment(name)
        assert {"quick", "cpu", "paper"} <= set(experiment.budgets)
        for budget in experiment.budgets.values():
            assert set(budget.claims) <= set(ALL_CLAIMS)
            config = budget.run_config(experiment.data)
            assert config.data.train == experiment.data.in_train
        if experiment.reverse:
            reverse = load_experiment(experiment.reverse)
            assert reverse.reverse == name
            # exactly one direction of a pair is the one where the paper reports the phenomenon
            assert reverse.expect_phenomenon != experiment.expect_phenomenon


def test_reverse_experiments_expect_no_phenomenon() -> None:
    assert load_experiment("fashion-mnist-vs-mnist").expect_phenomenon is True
    assert load_experiment("mnist-vs-fashion-mnist").expect_phenomenon is False
    assert load_experiment("svhn-vs-cifar10").expect_phenomenon is False


def test_expect_phenomenon_must_be_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text(
        'name = "x"\nexpect_phenomenon = "no"\n[data]\nin_train = "a"\nin_test = "b"\nood = ["c"]\n'
    )
    with pytest.raises(ValueError, match="expect_phenomenon must be true or false"):
        load_experiment(str(path))


def test_quick_budget_runs_only_the_single_model_claims() -> None:
    quick = load_experiment("fashion-mnist-vs-mnist").budget("quick")
    assert quick.claims == ["C1", "C4", "C6", "C7"]


def test_unknown_experiment_and_budget_name_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: .*fashion-mnist-vs-mnist"):
        load_experiment("no-such-experiment")
    with pytest.raises(ValueError, match="no budget 'huge'"):
        load_experiment("fashion-mnist-vs-mnist").budget("huge")


def test_unknown_claim_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text(
        'name = "x"\n[data]\nin_train = "a"\nin_test = "b"\nood = ["c"]\n'
        '[budget.quick]\nclaims = ["C9"]\n'
    )
    with pytest.raises(ValueError, match="unknown claims"):
        load_experiment(str(path))


def test_waic_leaves_out_a_main_model_trained_longer_than_the_members() -> None:
    from genood.experiments.reproduce import waic_members

    cpu = load_experiment("fashion-mnist-vs-mnist").budget("cpu")
    assert cpu.ensemble_steps != cpu.train["steps"]
    assert waic_members(["main", "m1", "m2"], cpu) == ["m1", "m2"]
    assert waic_members(["main", "m1"], cpu) is None  # one member left: no variance
    paper = load_experiment("fashion-mnist-vs-mnist").budget("paper")
    assert waic_members(["main", "m1", "m2"], paper) == ["main", "m1", "m2"]
    assert waic_members(["main"], paper) is None
