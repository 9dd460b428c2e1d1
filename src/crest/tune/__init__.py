"""`crest tune`: every model tuned on its validation classes with the same budget, on Optuna.

A study is a folder (:class:`crest.tune.folder.StudyFolder`): the Optuna study in SQLite, one
`train.validation_only` run per trial under ``trials/`` (the test split is never read), the best
trial as a config ``crest train --config`` takes, and a report. Modules: ``folder`` (its layout),
``study`` (opening, interrupted trials, the budget: shared with ``crest sweep``), ``objective``
(one trial: sample, train, report each epoch to the pruner), ``run`` (:func:`crest.tune.run.tune`),
``best`` (the best config) and ``report`` (report.md and the optimisation-history figure).

Nothing is imported here, so that ``crest.experiments`` may use ``crest.tune.study`` while
``crest.tune.objective`` uses ``crest.experiments`` (docs/architecture.md, layers).
"""
