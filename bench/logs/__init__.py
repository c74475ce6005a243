"""The logs benchmark (issue 12): `python -m bench.logs`; see README.md."""
