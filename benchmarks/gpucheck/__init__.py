"""The parts of ``benchmarks/gpu_check.py``, the one prepared command for a GPU machine (issue 29).

``plan``: the sizes of a check (full, ``--tiny``); ``children``: child processes with a time limit each;
``probes``: what the children run; ``check``: a check's state and how a part runs within its budget;
``parts`` and ``cifar``: parts a-f; ``report``: summary.md and results.json; ``install``: the dry run
(``--check-install``) and the wheels a GPU machine lacks (``--list-wheels``).
"""
