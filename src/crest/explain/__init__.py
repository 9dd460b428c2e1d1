"""Look inside a trained CREST: attention maps, localization, uncertainty, t-SNE, γ curve, report."""

from crest.explain.localization import localization_score

__all__ = ["localization_score"]
