"""Model zoo: `MODELS` maps names to `(num_classes, in_channels, image_size) -> nn.Module`."""

from fedsparse.models import feddst, mlp, mobilenet, resnet, vgg  # noqa: F401  (register models)
from fedsparse.models.build import build_model
from fedsparse.models.prunable import first_layer_name, prunable_names
from fedsparse.models.registry import MODELS, ModelFactory

__all__ = ["MODELS", "ModelFactory", "build_model", "first_layer_name", "prunable_names"]
