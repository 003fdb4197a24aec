"""The statistics of the tuning service, free of Ray and of plotting.

`candidates` picks what confirmation re-trains (the top trials, the tuned baseline, fresh seeds);
`confirmation` turns the confirmed runs into per-configuration means, paired intervals, the
confirmed winner and the ensembles; `effects` measures the proposal's expected effects (convergence,
stability, train loss, F1) with their intervals and verdicts; `references` scores what a published
model is judged against (always the majority class, a logistic regression on the same vectors).
"""
