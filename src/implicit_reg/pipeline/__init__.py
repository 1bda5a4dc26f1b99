"""Running the pipeline: the config and its schema, planning jobs, their time and memory estimates, the archive's command line."""
