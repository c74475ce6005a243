"""`python -m bench.query`: the query benchmark (see run.py and README.md)."""

from bench.query.run import main

main()
