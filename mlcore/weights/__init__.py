"""Reading pretrained weights published in other frameworks' formats (no framework import)."""

from mlcore.weights.pth import PthFormatError, UnsafePickleError, read_state_dict

__all__ = ["PthFormatError", "UnsafePickleError", "read_state_dict"]
