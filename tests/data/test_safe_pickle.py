"""The restricted unpickler: numpy batches load, a pickle carrying code is refused."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from data_builders import python2_style_pickle

from genood.data.errors import DataFormatError, UnsafePickleError
from genood.data.formats.safe_pickle import batch_dict, safe_load, safe_loads


class RunsACommand:
    """What a malicious 'data file' looks like: unpickling it calls os.system."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class CallsEval:
    def __reduce__(self):
        return eval, ("__import__('os').getcwd()",)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_batches_load_with_every_protocol(protocol):
    batch = {
        "data": np.arange(24, dtype=np.uint8).reshape(2, 12),
        "labels": [3, 7],
        "mean": np.float64(1.5),
    }
    out = safe_loads(pickle.dumps(batch, protocol=protocol), "batch")
    assert np.array_equal(out["data"], batch["data"]) and out["labels"] == [3, 7]
    assert out["mean"] == 1.5


def test_python2_style_cifar_pickle_loads():
    data = python2_style_pickle({"data": np.ones((2, 3072), np.uint8), "labels": [1, 2]})
    assert b"cnumpy.core.multiarray" in data
    out = batch_dict(safe_loads(data, "data_batch_1"), "data_batch_1", ("data", "labels"))
    assert out["data"].shape == (2, 3072)


def test_a_pickle_carrying_code_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "data_batch_1"
    evil.write_bytes(pickle.dumps({"data": RunsACommand(str(marker))}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"data_batch_1: refusing to unpickle posix.system"):
        safe_load(evil)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError, match=r"refusing to unpickle builtins.eval"):
        safe_loads(pickle.dumps(CallsEval()), "x")


def test_codecs_encode_only_latin1():
    # Protocol-2 pickles store bytes as _codecs.encode(text, 'latin1'); nothing else passes.
    payload = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(UnsafePickleError, match="rot13"):
        safe_loads(payload, "x")


def test_garbage_and_truncated_pickles():
    with pytest.raises(DataFormatError, match="x: not a valid pickle"):
        safe_loads(b"not a pickle at all", "x")
    data = pickle.dumps({"data": np.zeros((10, 10), np.uint8)}, protocol=2)
    with pytest.raises(DataFormatError, match="not a valid pickle"):
        safe_loads(data[: len(data) // 2], "x")


def test_batch_dict_names_missing_keys():
    with pytest.raises(DataFormatError, match=r"no \['labels'\] entries"):
        batch_dict({b"data": 1}, "f", ("data", "labels"))
    with pytest.raises(DataFormatError, match="expected a pickled dict, found list"):
        batch_dict([1], "f", ("data",))
