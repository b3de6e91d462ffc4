"""The benchmark suite (``make bench``): ``python bench/run.py``; see ``bench/README.md``.

``run`` (command line) -> ``sections`` (what each section measures) -> ``runner`` (measured
subprocesses) -> ``workers`` (the work in each subprocess); ``report`` formats the tables
and writes the JSON; ``bench_training`` is the training comparison, run as one subprocess.
"""
