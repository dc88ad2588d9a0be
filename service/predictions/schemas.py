from __future__ import annotations

from typing import Literal

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
    backbone_identity: str | None = Field(
        default=None,
        max_length=2000,
        description="With `embeddings`: the identity of the model that computed them; when "
        "given it must be the head's `backbone_identity` (409 otherwise), so vectors of "
        "another model are refused rather than scored.",
    )
    top_k: int | None = Field(
        default=None, ge=1, le=1000, description="Return only the k most probable classes per row."
    )

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.inputs is None) == (self.embeddings is None):
            raise ValueError("give exactly one of `inputs` or `embeddings`")
        if self.backbone_identity is not None and self.embeddings is None:
            raise ValueError("`backbone_identity` goes with `embeddings`")
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


# --------------------------------------------------------- OpenAI-compatible embeddings
class EmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request; `model` is a head id: the response carries that head's
    adapted features z of each input (its backbone embeds them through the cache)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model": "hd_0123", "input": ["what a film"]}]},
    )

    model: str = Field(min_length=1, max_length=80, description="A ready head's id.")
    input: str | list[str] = Field(
        description="A text or a list of texts (token arrays are not accepted)."
    )
    encoding_format: Literal["float", "base64"] = Field(
        default="float",
        description="`base64`: each vector as base64 of little-endian float32 (what the "
        "official openai client asks for by default).",
    )
    dimensions: int | None = Field(
        default=None, ge=1, description="Must equal the head's dimension when given."
    )
    user: str | None = Field(default=None, max_length=200, description="Ignored.")


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 (encoding_format).")


class EmbeddingsUsage(BaseModel):
    prompt_tokens: int = Field(description="cl100k_base tokens of the inputs.")
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingsUsage


# ------------------------------------------------------- classification of plain texts
class ClassifyRequest(BaseModel):
    """Classify plain texts with a head, by id in `model` (the request shape of embedding
    servers' /classify routes, e.g. infinity's)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model": "hd_0123", "input": ["what a film"]}]},
    )

    model: str = Field(min_length=1, max_length=80, description="A ready head's id.")
    input: str | list[str] = Field(description="A text or a list of texts.")
    top_k: int | None = Field(
        default=None, ge=1, le=1000, description="Only the k most probable classes per text."
    )


class ClassifyItem(BaseModel):
    index: int
    label: Label = Field(description="The most probable class.")
    score: float = Field(description="Its probability.")
    scores: list[ClassScore] = Field(description="Classes by decreasing probability.")


class ClassifyResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[ClassifyItem] = Field(description="One per input, in input order.")
    model: str
    usage: EmbeddingsUsage
