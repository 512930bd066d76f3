"""``invoke up``: ``steps`` holds the pipeline (each step's plan and run), ``run`` observes, runs and reports."""
