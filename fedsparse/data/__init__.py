"""Datasets as uint8 tensors, batched augmentation, and federated client splits."""

from fedsparse.data.augment import normalize, random_crop_flip
from fedsparse.data.image_data import ImageData
from fedsparse.data.load import load_dataset
from fedsparse.data.sources import DATASETS
from fedsparse.data.splits import SPLITS, ClientSplit, make_split, split_params

__all__ = [
    "DATASETS",
    "SPLITS",
    "ClientSplit",
    "ImageData",
    "load_dataset",
    "make_split",
    "normalize",
    "random_crop_flip",
    "split_params",
]
