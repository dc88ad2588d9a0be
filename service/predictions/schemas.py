from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

Label = StrictStr | StrictInt


class PredictRequest(BaseModel):
    """Exactly one of `inputs` (embedded through the head's own backbone and the cache) or
    `embeddings` (vectors of the head's dimension, from the same backbone)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"inputs": ["what a film", "never again"], "top_k": 2}]},
    )

    inputs: list[str] | None = Field(
        default=None, min_length=1, description="Texts (or base64 images for image heads)."
    )
    embeddings: list[list[float]] | None = Field(
        default=None, min_length=1, description="Pre-computed backbone vectors."
    )
    top_k: int | None = Field(
        default=None, ge=1, le=1000, description="Return only the k most probable classes per row."
    )

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.inputs is None) == (self.embeddings is None):
            raise ValueError("give exactly one of `inputs` or `embeddings`")
        return self


class ClassScore(BaseModel):
    label: Label
    probability: float


class Prediction(BaseModel):
    label: Label
    probability: float = Field(description="Probability of the predicted label.")
    scores: list[ClassScore] = Field(description="Classes by decreasing probability.")


class PredictResponse(BaseModel):
    head_id: str
    predictions: list[Prediction] = Field(description="One per input, in input order.")
