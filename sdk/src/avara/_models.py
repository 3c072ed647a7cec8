"""The base class of every response model: snake_case attributes over camelCase wire names."""

import pydantic
from pydantic.alias_generators import to_camel

__all__ = ["BaseModel"]


class BaseModel(pydantic.BaseModel):
    """A response object.

    Fields the server adds later are kept (readable as attributes and in ``model_dump()``)
    rather than rejected, so a newer server never breaks an older client.
    """

    model_config = pydantic.ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
    )
