"""Plain-text detection tables: the robustness table's group row and worst-AUROC column."""

from __future__ import annotations

from genood.ood.tables import format_guard, format_robustness


def _row(auroc: float) -> dict[str, dict[str, float]]:
    return {"dos": {"auroc": auroc, "tpr": 0.5}, "likelihood": {"auroc": auroc / 2, "tpr": 0.1}}


def test_robustness_table_labels_groups_and_leaves_hflip_out_of_the_worst() -> None:
    table = {
        "mnist-10k": _row(0.99),
        "probe:noise:1x28x28": _row(1.0),
        "probe:letters:1x28x28": _row(0.9),
        "probe:vflip:fashion-mnist:test": _row(0.8),
        "probe:hflip:fashion-mnist:test": _row(0.5),
    }
    lines = format_robustness(table, "title").splitlines()
    assert lines[0] == "title" and lines[1].split()[:2] == ["score", "mnist-10k"]
    groups = lines[2]
    for label in ("group", "data set", "far-OOD", "near-OOD", "transformed, not in goal"):
        assert label in groups
    # the group of each set sits under its name
    assert groups.index("far-OOD") == lines[1].index("probe:noise")
    assert set(lines[3]) == {"-", " "}
    dos = next(line for line in lines if line.startswith("dos"))
    assert dos.split()[-1] == "0.800"  # the worst in-goal set, vflip, not hflip's 0.500
    assert "worst AUROC over the sets in the goal" in lines[-1]


def test_robustness_table_without_probes_keeps_its_footer() -> None:
    text = format_robustness({"mnist-10k": _row(0.99), "svhn": _row(0.7)})
    assert text.splitlines()[-1].endswith("rejected at the threshold")
    assert text.splitlines()[1].split("  ")[0] == "group" and text.count("data set") == 2


def test_guard_table_columns_stay_aligned_for_long_score_names() -> None:
    report = {
        "in_rejection_rate": 0.05,
        "accuracy_accepted": 0.9,
        "accuracy_unguarded": 0.89,
        "ood_rejection_rate": 1.0,
    }
    names = ("dos", "dos+mahalanobis+energy:2@fisher")
    lines = format_guard({"classifier": "CLF", "reports": dict.fromkeys(names, report)})
    header, *rows = lines.splitlines()[1:3]
    # every row ends where the header does, and its figures sit under their headings
    assert {len(row) for row in rows} == {len(header)}
    assert all(row.index("0.0500") + 6 == header.index("in rejected") + 11 for row in rows)
