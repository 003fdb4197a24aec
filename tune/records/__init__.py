"""The tuning service's records, typed: one Ray trial, one study (search), one best config and its
parts.

Each record is a frozen pydantic model (`_base.Record`): its annotations state its JSON form, it
validates itself on `from_dict` (one line naming the first bad key) and `to_dict` writes it; every
other module passes these objects, not JSON-shaped dicts. The rules that decide between results live
here, once: which trial may win and how trials rank (`Outcome.can_win`, `ranked`), and whether a new
best config replaces the current one (`BestConfig.replaces`, `BestConfig.confirms`). Search,
confirmation and report all rank with `ranked`.
"""

from tune.records._best_config import BEST_CONFIG_KIND, BEST_CONFIG_SCHEMA_VERSION, BestConfig
from tune.records._confirmation import (
    CONFIRMATION_KIND,
    ConfigurationRecord,
    Confirmation,
    EffectRow,
    Effects,
    RunRecord,
    Verdict,
)
from tune.records._ensemble import Ensemble, EnsembleMember, EnsembleOption, SingleRunScores
from tune.records._outcome import Outcome, classify, stop_reason
from tune.records._parts import (
    DataRef,
    Ending,
    Rerun,
    Resampling,
    Resources,
    Sampling,
    Scheduler,
    Searcher,
    SingleTrialBest,
    StudyInfo,
    TrialCounts,
    Versions,
    WarmStartSummary,
)
from tune.records._ranking import RANKING_RULE, choose_winner, outcome_counts, ranked
from tune.records._references import LinearReference, MajorityReference, ReferenceRun, References
from tune.records._scores import (
    Comparison,
    EnsembleScores,
    Metric,
    PairedDifference,
    Summary,
    TestScores,
)
from tune.records._study import (
    STUDY_KIND,
    STUDY_SCHEMA_VERSION,
    Invocation,
    MajorityLevel,
    StudyRecord,
)
from tune.records._trial import TrialRecord

__all__ = [
    # how a trial ended, and the one ranking
    "RANKING_RULE",
    "Outcome",
    "choose_winner",
    "classify",
    "outcome_counts",
    "ranked",
    "stop_reason",
    # trials and studies
    "STUDY_KIND",
    "STUDY_SCHEMA_VERSION",
    "Invocation",
    "MajorityLevel",
    "StudyRecord",
    "TrialRecord",
    # the best config and its parts
    "BEST_CONFIG_KIND",
    "BEST_CONFIG_SCHEMA_VERSION",
    "CONFIRMATION_KIND",
    "BestConfig",
    "Comparison",
    "ConfigurationRecord",
    "Confirmation",
    "DataRef",
    "EffectRow",
    "Effects",
    "Ending",
    "Ensemble",
    "EnsembleMember",
    "EnsembleOption",
    "EnsembleScores",
    "LinearReference",
    "MajorityReference",
    "Metric",
    "PairedDifference",
    "ReferenceRun",
    "References",
    "Rerun",
    "Resampling",
    "Resources",
    "RunRecord",
    "Sampling",
    "Scheduler",
    "Searcher",
    "SingleRunScores",
    "SingleTrialBest",
    "StudyInfo",
    "Summary",
    "TestScores",
    "TrialCounts",
    "Verdict",
    "Versions",
    "WarmStartSummary",
]
