"""The pipeline steps, one module each; the Spark job entry points in jobs/ call these."""
