"""benchmarks/run.py's plumbing, without running any benchmark and without TRL (not in CI)."""

import doctest
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import bench_trl, figures, run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_trl(monkeypatch):
    """Make TRL look uninstalled (whether or not this venv has it)."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "trl" else find_spec(name, *a)
    )


def test_docstring_examples():
    assert doctest.testmod(figures).failed == 0


def test_figure_median_min_max_and_target():
    f = figures.figure("x", "x", [3.0, 1.0, 2.0, 10.0], target=2.4)
    assert (f["median"], f["min"], f["max"]) == (2.5, 1.0, 10.0)
    assert f["pass"] is False  # the median is what meets the target
    assert figures.figure("y", "y", 0.5)["values"] == [0.5]
    assert figures.figure("z", "z", [1.0])["pass"] is None
    with pytest.raises(ValueError):
        figures.figure("empty", "empty", [])


def test_table_has_a_row_per_figure_and_verdicts():
    figs = [
        figures.figure("a", "fast enough", [0.1, 0.2, 0.3], target=0.5),
        figures.figure("b", "too slow", [2.0], target=1.0),
        figures.figure("c", "a ratio", [1.5], unit="x"),
    ]
    lines = figures.table(figs).splitlines()
    assert lines[0].split()[:4] == ["what", "median", "min", "max"]
    assert len(lines) == 2 + len(figs)
    assert lines[2].startswith("fast enough") and lines[2].endswith("pass")
    assert lines[3].endswith("FAIL")
    assert "1.50 x" in lines[4]


def test_markdown_is_the_readme_layout():
    f = figures.figure("a", "store a result", [0.07, 0.05, 0.09], target=0.2)
    row = "| store a result | 0.07 s (0.05, 0.09) | <= 0.2 s |"
    assert figures.markdown([f]).splitlines()[2] == row


def test_trl_section_is_skipped_without_trl(no_trl):
    assert run.trl(3, quick=True) == run.TRL_SKIP
    assert "trl" not in sys.modules


def test_bench_trl_says_how_to_install_trl(no_trl):
    with pytest.raises(SystemExit) as e:
        bench_trl.require_trl()
    assert "requirements-bench.txt" in str(e.value)


def test_unknown_section_is_an_error():
    res = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--only", "engine,nope"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "nope" in res.stderr


def test_bench_step_counts_the_steps_matrix_products_by_hand():
    """bench_step's GFLOP/s rests on the profiler's FLOP count of a real step's matmuls: it must
    be the step's products counted by hand (B sequences, R table rows, width d, H heads of e;
    the profiler does not count the two matrix-vector products of the score head, 4 B d)."""
    from benchmarks import bench_step

    step, batches, essential = bench_step.setup()
    mb = batches[0]
    R, B = len(mb.tokens), mb.row.shape[0]
    d, H = step.d, step.H
    e = d // H
    forward = 2 * R * d * 2 * d + 2 * B * d * d + 2 * (2 * H * B * e * R)  # keys, values, query
    forward += 2 * B * d * d + 2 * (2 * B * d * 4 * d)  # attention's projection, the MLP
    backward = 2 * 2 * (2 * B * d * 4 * d) + 2 * (2 * B * d * d) + 4 * (2 * H * B * e * R)
    backward += 2 * (2 * R * d * 2 * d) + 2 * (2 * B * d * d)
    counted = bench_step.time_calls(step, [mb], 1)
    assert counted["matmul_flop"] == forward + backward
    assert counted["matmul_s"] > 0 and counted["other_s"] > 0
    # The limit's count is bench_limit's, 3x the last-token forward, over each sequence's real
    # tokens: the same lengths as the step's own attention mask reads (0 up to the last one).
    lengths = (mb.mask == 0).sum(1).numpy()
    want = 3 * bench_step.proxy_forward_flops(lengths, 1, d)
    assert essential[0] == pytest.approx(want, rel=1e-12)
    step.release()
