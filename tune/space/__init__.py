"""Search spaces of the tuning service: one YAML file per data set, checked against JoyfulConfig.

File format (``search_spaces/<dataset>.yaml``)::

    dataset: iemocap_4                  # must match --dataset
    metric: dev_weighted_f1             # dev_weighted_f1 | dev_accuracy (max) | dev_loss (min)
    mode: max                           # optional; defaults to the metric's direction
    budget: {num_samples: 32, max_epochs: 50, grace_period: 5, reduction_factor: 3,
             cpus_per_trial: 2, gpus_per_trial: 0.25, max_concurrent: 0,
             time_budget: 0}                  # every key optional
    strategy: {sampler: tpe, startup_trials: 0, scheduler: patient}   # every key optional
    fixed: {modalities: atv}            # JoyfulConfig settings applied to every trial
    parameters:                         # searched JoyfulConfig settings, suggested in `when` order
      fusion: {type: categorical, choices: [autofusion, hierarchical]}
      encoder_loss_weight: {type: float, low: 0.01, high: 0.1, log: true}
      gate_reg_weight: {type: float, low: 1.0e-4, high: 0.1, log: true,
                        when: {fusion: hierarchical}}
      reconstruction_loss: {type: categorical, choices: [mse, smooth_l1],
                            when: {fusion: hierarchical}}
    baseline: {fusion: autofusion, encoder_loss_weight: 0.03}   # evaluated first
    proposal: {fusion: hierarchical, reconstruction_loss: smooth_l1}  # optional
    resampling: auto                    # holdout | cv | {kind: cv, folds: 5} | auto
    on_tie: baseline                    # what a tie with the baseline publishes
    ensemble: refit                     # with cv: the winner refit on train + dev, or its folds

A parameter takes ``type`` (float | int | categorical); ``low``/``high`` (low < high) with optional
``log`` and ``step`` for numbers; ``choices`` for categoricals; ``when`` ``{parameter: value or
[values]}`` to search it only under that condition; and ``role`` (scientific | nuisance, the
tuning-playbook label). Each value of the (categorical) scientific parameter is an arm that the
search tunes on its own trials. Confirmation re-trains the baseline at the nuisance values it does
not set taken from the best trial that shares its scientific values, so the baseline too runs at
tuned settings; ``proposal`` names the proposed setting whose expected effects confirmation measures
against that baseline (at the best trial that has its values). ``epochs`` is ``budget.max_epochs``
and ``dataset`` is the top-level key, so neither may be fixed or searched. Every mistake raises
:class:`UserError` naming the file, the key and the rule.

A :class:`Parameter` checks its own rules (``_parameter``); the ``when`` order and the walk over the
parameters active under some values are written once (``_conditions``); :class:`Budget`
(``_budget``), :class:`Strategy` (``_strategy``), :class:`SearchSpace` (``_space``, with its
define-by-run ``suggest``); ``_reader`` turns a file into a space and adds the rules only the file
knows (JoyfulConfig settings, fixed values, baseline); ``_shipped`` and ``_defaults`` say which file
a data set gets.
"""

from tune.space._budget import Budget, duration, rungs, words_of_duration
from tune.space._defaults import resolve_space, write_default_space
from tune.space._parameter import PARAMETER_TYPES, ROLES, Parameter
from tune.space._reader import METRIC_MODES, load_space
from tune.space._references import ReferenceRuns
from tune.space._resampling import NOISE_THRESHOLD, RESAMPLING_KINDS, Resampling
from tune.space._shipped import (
    DEFAULT_SPACE_NAME,
    DEFAULT_SPACE_PATH,
    SPACES_DIR,
    default_space_path,
)
from tune.space._space import SearchSpace
from tune.space._strategy import SAMPLERS, SCHEDULERS, Strategy

__all__ = [
    "DEFAULT_SPACE_NAME",
    "DEFAULT_SPACE_PATH",
    "METRIC_MODES",
    "NOISE_THRESHOLD",
    "PARAMETER_TYPES",
    "RESAMPLING_KINDS",
    "ROLES",
    "SAMPLERS",
    "SCHEDULERS",
    "SPACES_DIR",
    "Budget",
    "Parameter",
    "ReferenceRuns",
    "Resampling",
    "SearchSpace",
    "Strategy",
    "default_space_path",
    "duration",
    "load_space",
    "resolve_space",
    "rungs",
    "words_of_duration",
    "write_default_space",
]
