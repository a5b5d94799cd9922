"""Model zoo: `MODELS` maps names to `(num_classes, in_channels, image_size) -> nn.Module`.

The torchvision-based models import torchvision when built, not here: importing it costs every
process (driver, each client actor) about 160 MB (measured with torch 2.14 / torchvision 0.29), and
runs of the FedDST CNNs never need it.
"""

from fedsparse.models import feddst, mlp, mobilenet, resnet, vgg  # noqa: F401  (register models)
from fedsparse.models.build import build_model
from fedsparse.models.prunable import first_layer_name, prunable_names
from fedsparse.models.registry import MODELS, ModelFactory

__all__ = ["MODELS", "ModelFactory", "build_model", "first_layer_name", "prunable_names"]
