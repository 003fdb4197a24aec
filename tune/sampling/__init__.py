"""How a search proposes its trials: one sampler per arm of the scientific parameter
(`ArmedSampler`), chosen by name from the samplers of `tune.space.SAMPLERS` (`build_sampler`), with
a random start-up sized to the budget."""

from tune.sampling._arms import ArmedSampler, Proposal, arm_key
from tune.sampling._samplers import build_sampler, default_startup, learns_from

__all__ = ["ArmedSampler", "Proposal", "arm_key", "build_sampler", "default_startup", "learns_from"]
