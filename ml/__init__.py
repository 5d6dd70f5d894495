"""Lead scoring: features -> train -> evaluate -> score. Plain Python with no Dagster import, usable on
any table; the Dagster assets in orchestration/defs/ml/assets.py wrap it.

    from ml.train import fit
    model = fit(frame, label="converted", time_column="snapshot_date", seed=0)
    model.predict_proba(frame); model.explain(frame); model.evaluation
"""
