"""Building blocks shared by builder.py, inference.py, perf.py and the notebook."""
