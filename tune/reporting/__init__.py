"""The report of a search: Markdown, PNG plots and an optional interactive HTML page.

`report` assembles results/reports/<dataset>.md from the stored records: `sections` writes the
search's sections (summary, history, parameters, importance, Optuna's views, curves) and
`confirmation` the confirmation's (runs over seeds, references, limits, expected effects), both from
a `context.Context`; `plots` draws the project's own figures (curves, history, parameters,
confirmation) with the always-majority level; `optuna_plots` draws Optuna's views of the study
(parallel coordinates, slices, contours, the interactive page). Matplotlib and plotly are imported
only when a figure is drawn.
"""
