"""sweeps._heap: a command's imports and exit without the garbage collector's walks of their heap."""

import gc
import subprocess
import sys
import textwrap

import pytest

from sweeps._heap import leave, untraced_imports
from tests.helpers import subprocess_env


@pytest.fixture
def collector_restored():
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    gc.enable() if enabled else gc.disable()


def test_heap_untraced_imports_collect_nothing_inside_then_freeze_what_lives(collector_restored):
    gc.unfreeze()
    gc.enable()
    with untraced_imports():
        assert not gc.isenabled()
        made = [[] for _ in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(made)
    assert gc.collect() >= 0 and len(made) == 1000  # frozen objects are still alive and usable


def test_heap_untraced_imports_keep_a_disabled_collector_disabled(collector_restored):
    gc.disable()
    with untraced_imports():
        pass
    assert not gc.isenabled()


def test_heap_untraced_imports_restore_the_collector_when_an_import_fails(collector_restored):
    gc.enable()
    with pytest.raises(ModuleNotFoundError):
        with untraced_imports():
            import sweeps_no_such_module  # noqa: F401
    assert gc.isenabled()


def test_heap_leave_freezes_then_exits_with_the_code_running_exit_handlers():
    script = textwrap.dedent("""
        import atexit, gc, sys
        from sweeps._heap import leave
        atexit.register(lambda: print("at exit, frozen:", gc.get_freeze_count() > 0))
        leave(3)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env(),
                         timeout=120)
    assert run.returncode == 3, run.stderr
    assert run.stdout.strip() == "at exit, frozen: True"


def test_heap_leave_passes_none_as_exit_zero():
    with pytest.raises(SystemExit) as exc:
        try:
            leave(None)
        finally:
            gc.unfreeze()
    assert exc.value.code is None


@pytest.mark.parametrize("module", ["sweeps", "sweeps.export", "sweeps.preflight", "sweeps.proxy", "sweeps.train",
                                    "sweeps.vault", "sweeps.trial._plots"])
def test_heap_every_command_leaves_through_leave(module):
    """Each command's ``python -m`` exits through :func:`leave` (a command that exits by sys.exit
    spends its last second or two in the collector's walks)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec(module)
    path = Path(spec.origin)
    if path.name == "__init__.py":
        path = path.with_name("__main__.py")
    source = path.read_text()
    tail = source[source.index('if __name__ == "__main__":'):]
    assert "leave(" in tail or "cli()" in tail
    assert "sys.exit" not in tail


def test_heap_the_sweeps_command_imports_and_exits_frozen_and_main_leaves_the_collector_alone():
    script = textwrap.dedent("""
        import atexit, gc, sys
        atexit.register(lambda: print("at exit, frozen:", gc.get_freeze_count() > 0))
        from sweeps.__main__ import cli, main
        assert main(["--version"]) == 0 and gc.get_freeze_count() == 0, "main() froze its caller's heap"
        sys.argv = ["sweeps", "+experiment=quickstart", "sweep.n_trials=0"]
        cli()
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env(),
                         timeout=300)
    assert run.returncode == 2, run.stderr
    assert "sweep.n_trials must be >= 1, got 0" in run.stderr
    assert run.stdout.strip().splitlines()[-1] == "at exit, frozen: True"
