"""Wire formats for sparse tensors (numpy only, no Flower): position codecs, value dtypes, the
FedDST reference's bit counts, and the communication ledger. Model states travel as
`fedsparse.fl.payload` packs them with these codecs."""

from fedsparse.comm.auto import codec_names, decode_positions, encode_positions, position_codec
from fedsparse.comm.ledger import CommLedger
from fedsparse.comm.reference_bits import (
    entropy_bits,
    reference_download_bits,
    reference_upload_bits,
)
from fedsparse.comm.registry import POSITION_CODECS, PositionCodec
from fedsparse.comm.values import STORAGE, decode_values, encode_values

__all__ = [
    "POSITION_CODECS",
    "STORAGE",
    "CommLedger",
    "PositionCodec",
    "codec_names",
    "decode_positions",
    "decode_values",
    "encode_positions",
    "encode_values",
    "position_codec",
    "entropy_bits",
    "reference_download_bits",
    "reference_upload_bits",
]
