"""The Optuna study of a search: where it is stored and the story it tells.

`storage` opens the study's storage (a journal file per data set, data fingerprint and space
fingerprint by default, or any Optuna storage URL), creates and loads studies, and copies earlier
trials for a warm start; `story` writes into the study what Optuna alone cannot know (the search's
budget, its ranking rule and winner, the confirmation and the published configuration), so that
optuna-dashboard, `optuna best-trial` and the report agree.
"""
