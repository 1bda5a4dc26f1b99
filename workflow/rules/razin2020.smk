# Razin & Cohen (2020): placeholder until its rules are written.


def razin2020_figure_names():
    return []
