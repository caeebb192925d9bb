"""What the workers' fork server imports once per command, before it forks the first worker
(sweeps.driver._workers): the worker's own modules and torch's optimizer machinery (``torch._dynamo``,
which torch imports at a process's first optimizer: 1.1 s of CPU), then all of it frozen
(sweeps._heap): a forked worker's collections never walk it, nor copy its pages, and the server
exits at once when its command ends."""

from sweeps._heap import untraced_imports

with untraced_imports():
    import torch._dynamo  # noqa: F401

    import sweeps.driver._loop  # noqa: F401
    import sweeps.driver._workers  # noqa: F401
    import sweeps.experiment._experiment  # noqa: F401
    import sweeps.study._select  # noqa: F401
    import sweeps.study._study  # noqa: F401
