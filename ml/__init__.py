"""Lead scoring: features -> train -> evaluate -> score. Plain Python with no Dagster import;
the Dagster assets in orchestration/ wrap it. (Not built yet: the predictive issue.)"""
