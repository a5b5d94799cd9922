"""Wire formats for sparse tensors (numpy only, no Flower): position codecs, value dtypes, the
tensor-level encode/decode, the FedDST reference's bit counts, and the communication ledger."""

from fedsparse.comm.auto import decode_positions, encode_positions  # registers every codec
from fedsparse.comm.ledger import CommLedger
from fedsparse.comm.reference_bits import (
    entropy_bits,
    reference_download_bits,
    reference_upload_bits,
)
from fedsparse.comm.registry import POSITION_CODECS, PositionCodec
from fedsparse.comm.sparse_tensor import decode_sparse, encode_sparse
from fedsparse.comm.values import STORAGE, decode_values, encode_values

__all__ = [
    "POSITION_CODECS",
    "STORAGE",
    "CommLedger",
    "PositionCodec",
    "decode_positions",
    "decode_sparse",
    "decode_values",
    "encode_positions",
    "encode_sparse",
    "encode_values",
    "entropy_bits",
    "reference_download_bits",
    "reference_upload_bits",
]
