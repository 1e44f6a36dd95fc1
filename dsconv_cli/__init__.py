"""dsconv: exact cost of a convolution layer and of its depthwise-separable counterpart."""

__version__ = "0.1.0"
