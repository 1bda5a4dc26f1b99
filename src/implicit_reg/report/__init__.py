"""The report: setup statements written from the config, generated figure sections, page layout checks."""
