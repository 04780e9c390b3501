"""Tools for development, tests and benchmarks; never imported by api/, core/, tasks/, workers/."""
