"""genood.cli.options: the shared runtime options and ``--hparam`` parsing."""

from __future__ import annotations

import argparse
from pathlib import Path

from genood.cli.options import add_hparam_option, add_runtime_options, hparam_overrides


def test_runtime_options_defaults_and_values() -> None:
    parser = argparse.ArgumentParser()
    add_runtime_options(parser)
    defaults = parser.parse_args([])
    assert (defaults.device, defaults.data_dir, defaults.no_progress, defaults.debug) == (
        "auto",
        None,
        False,
        False,
    )
    given = parser.parse_args(["--device", "cpu", "--data-dir", "d", "--no-progress", "--debug"])
    assert (given.device, given.data_dir, given.no_progress, given.debug) == (
        "cpu",
        Path("d"),
        True,
        True,
    )


def test_device_default_none_leaves_the_config_alone() -> None:
    parser = argparse.ArgumentParser()
    add_runtime_options(parser, device_default=None)
    assert parser.parse_args([]).device is None


def test_hparam_values_parse_as_toml_else_strings() -> None:
    parser = argparse.ArgumentParser()
    add_hparam_option(parser)
    args = parser.parse_args(["--hparam", "iw_samples=10", "score_bound=elbo", "--hparam", "x=0.5"])
    assert hparam_overrides(args.hparams) == {
        "iw_samples": 10,
        "score_bound": "elbo",
        "x": 0.5,
    }
    assert hparam_overrides([]) == {}
