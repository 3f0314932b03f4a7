"""gx_import: GX imported without pyspark, altair and scipy.stats, which stay importable and usable afterwards."""

import subprocess
import sys
import textwrap

import pytest

from orchestration.lib.gx_import import DeferredModule, without_unused_dependencies


@pytest.fixture
def package(tmp_path, monkeypatch):
    """Two fresh modules on sys.path; each counts its executions in ``ran``."""
    for name in ("il_probe_hidden", "il_probe_deferred"):
        (tmp_path / f"{name}.py").write_text("import builtins\nbuiltins.il_probe_ran.append(__name__)\nVALUE = 42\n")
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    ran: list[str] = []
    monkeypatch.setattr("builtins.il_probe_ran", ran, raising=False)
    yield ran
    for name in ("il_probe_hidden", "il_probe_deferred"):
        sys.modules.pop(name, None)


def test_a_hidden_module_is_missing_inside_the_block_only_and_a_deferred_one_loads_on_first_use(package):
    with without_unused_dependencies(hidden=("il_probe_hidden",), deferred=("il_probe_deferred",)):
        with pytest.raises(ImportError):
            import il_probe_hidden  # noqa: F401
        import il_probe_deferred

        assert isinstance(il_probe_deferred, DeferredModule) and package == []
    import il_probe_hidden

    assert il_probe_hidden.VALUE == 42 and package == ["il_probe_hidden"]
    assert il_probe_deferred.VALUE == 42 and package == ["il_probe_hidden", "il_probe_deferred"]
    assert not isinstance(sys.modules["il_probe_deferred"], DeferredModule)  # the real module replaced it
    assert il_probe_deferred.VALUE == 42 and package.count("il_probe_deferred") == 1  # imported once


def test_a_module_imported_before_the_block_is_left_alone(package):
    import il_probe_deferred
    import il_probe_hidden

    with without_unused_dependencies(hidden=("il_probe_hidden",), deferred=("il_probe_deferred",)):
        assert sys.modules["il_probe_hidden"] is il_probe_hidden
        assert sys.modules["il_probe_deferred"] is il_probe_deferred
    assert sys.modules["il_probe_hidden"] is il_probe_hidden and sorted(package) == [
        "il_probe_deferred",
        "il_probe_hidden",
    ]


def test_gx_imported_by_the_gates_leaves_out_pyspark_altair_and_scipy_stats_which_still_work_after_it():
    # a fresh interpreter: this test process may have imported them already
    script = textwrap.dedent(
        """
        import sys
        from orchestration.lib.quality_gate import import_gx
        gx = import_gx()
        left_out = ("pyspark", "altair", "scipy.stats")
        assert not any(name in sys.modules for name in left_out), [n for n in left_out if n in sys.modules]
        from great_expectations.compatibility import pyspark as shim
        assert not shim.pyspark  # GX's "not installed": it is handed pandas frames only
        from pyspark.sql import SparkSession  # the Spark engine's import, after GX's
        from great_expectations.expectations.core import expect_column_kl_divergence_to_be_less_than as kl
        from great_expectations.expectations.metrics.column_aggregate_metrics import (
            column_parameterized_distribution_ks_test_p_value as ks,
        )
        import scipy.stats._stats_py  # a submodule imported after GX: the real package, imported once
        import altair
        import scipy.stats
        assert kl.alt.Chart is altair.Chart and kl.stats.entropy is scipy.stats.entropy  # GX's uses of them
        assert ks.stats.kstest is scipy.stats.kstest is scipy.stats._stats_py.kstest
        assert type(sys.modules["scipy.stats"]).__name__ == "module"
        print("ok", SparkSession.__name__)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["ok", "SparkSession"]
