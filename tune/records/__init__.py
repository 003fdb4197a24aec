"""The tuning service's records, typed: one Ray trial, one study (search), one best config and its parts.

Each record is a dataclass that validates itself and owns its JSON form (`from_dict`/`to_dict`; a best config
read and written back is byte for byte the file it came from); every other module passes these objects, not
JSON-shaped dicts. The rules that decide between results live here, once: which trial may win and how trials
rank (`Outcome.can_win`, `ranked`: highest best dev weighted F1, then the earlier best epoch, then the trial
id), and whether a new best config replaces the current one (`BestConfig.replaces`, `BestConfig.confirms`).
Search (the winner), confirmation (its candidates and tuned points) and the report all rank with `ranked`.
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
from tune.records._outcome import (
    COMPLETE,
    EARLY_STOPPED,
    ELIGIBLE_OUTCOMES,
    ERRORED,
    NON_FINITE,
    OUTCOMES,
    STATUS_LABELS,
    Outcome,
    classify,
    stop_reason,
)
from tune.records._parts import (
    DataRef,
    Rerun,
    Resources,
    Scheduler,
    Searcher,
    SingleTrialBest,
    StudyInfo,
    TrialCounts,
    Versions,
    WarmStartSummary,
)
from tune.records._ranking import RANKING_RULE, choose_winner, outcome_counts, ranked
from tune.records._references import LinearReference, MajorityReference, References
from tune.records._scores import EnsembleScores, Metric, PairedDifference, Summary, TestScores
from tune.records._study import STUDY_KIND, STUDY_SCHEMA_VERSION, MajorityLevel, StudyRecord
from tune.records._trial import TrialRecord

__all__ = [
    # how a trial ended, and the one ranking
    "COMPLETE", "EARLY_STOPPED", "ELIGIBLE_OUTCOMES", "ERRORED", "NON_FINITE", "OUTCOMES", "RANKING_RULE",
    "STATUS_LABELS", "Outcome", "choose_winner", "classify", "outcome_counts", "ranked", "stop_reason",
    # trials and studies
    "STUDY_KIND", "STUDY_SCHEMA_VERSION", "MajorityLevel", "StudyRecord", "TrialRecord",
    # the best config and its parts
    "BEST_CONFIG_KIND", "BEST_CONFIG_SCHEMA_VERSION", "CONFIRMATION_KIND", "BestConfig", "ConfigurationRecord",
    "Confirmation", "DataRef", "EffectRow", "Effects", "Ensemble", "EnsembleMember", "EnsembleOption",
    "EnsembleScores", "LinearReference", "MajorityReference", "Metric", "PairedDifference", "References", "Rerun",
    "Resources", "RunRecord", "Scheduler", "Searcher", "SingleRunScores", "SingleTrialBest", "StudyInfo", "Summary",
    "TestScores", "TrialCounts", "Verdict", "Versions", "WarmStartSummary",
]
