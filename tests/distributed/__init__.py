"""2-process tests under mpiexec (a package, so its conftest does not shadow tests/conftest.py)."""
