"""The figures: plot style, run statuses, published markers, and the figure notebooks (where, how run, how edited)."""
