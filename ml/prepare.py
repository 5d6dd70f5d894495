"""Turn any DataFrame into LightGBM's input: numbers stay numbers, strings become categories, gaps stay NaN.

The schema is learned once from the training frame and stored with the model, so scoring applies exactly
the same columns and category codes (an unseen category becomes missing, never a new code).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

# A text column with more distinct values than this is an identifier, not a category: it is left out.
MAX_CATEGORIES = 200


@dataclass(frozen=True)
class FeatureSchema:
    numeric: list[str]
    categorical: dict[str, list[str]]
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @classmethod
    def learn(cls, frame: pd.DataFrame, exclude: set[str]) -> FeatureSchema:
        numeric, categorical, dropped = [], {}, {}
        for name in frame.columns:
            if name in exclude:
                continue
            column = frame[name]
            if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
                numeric.append(name)
            elif pd.api.types.is_datetime64_any_dtype(column):
                dropped[name] = "timestamp (derive an age or a duration from it)"
            else:
                values = sorted({str(v) for v in column.dropna().unique()})
                if len(values) > MAX_CATEGORIES:
                    dropped[name] = f"text with {len(values)} distinct values (an identifier, not a category)"
                elif not values:
                    dropped[name] = "always empty"
                else:
                    categorical[name] = values
        if not numeric and not categorical:
            raise ValueError("no usable feature columns")
        return cls(numeric, categorical, dropped)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"frame lacks feature columns: {', '.join(missing)}")
        out = {}
        for name in self.numeric:
            out[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64").to_numpy()
        for name, values in self.categorical.items():
            column = frame[name]
            text = column.astype(object).where(column.isna(), column.astype(str))  # str(v), gaps kept
            known = text.where(text.isin(values))  # an unseen category becomes missing
            out[name] = pd.Categorical(known, categories=values)
        return pd.DataFrame(out, index=frame.index)

    def to_dict(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical, "dropped": self.dropped}

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSchema:
        return cls(list(data["numeric"]), {k: list(v) for k, v in data["categorical"].items()}, dict(data["dropped"]))
