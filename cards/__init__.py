"""The card templates: `dataset_card.md` (a curated dataset) and `model_card.md` (a checkpoint trained with
`AdaptiveGRPOTrainer`), jinja2 text rendered by `sgpo_curate.cards`.

This folder is the package `sgpo_curate.card_templates` once installed (pyproject's `package-dir`); the
templates are read with `importlib.resources`, so they work from a wheel, a zip or an editable install.
"""
