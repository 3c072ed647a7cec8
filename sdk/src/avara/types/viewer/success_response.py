"""The acknowledgement returned by revoke and reactivate calls."""

from ..._models import BaseModel

__all__ = ["SuccessResponse"]


class SuccessResponse(BaseModel):
    """The outcome of an action that returns no object."""

    success: bool
    """Whether the action took effect"""

    message: str
    """What happened, in words"""
