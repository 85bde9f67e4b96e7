"""Data: text and vocabularies, batching, the built-in datasets, time series and synthetic tasks.

The package's own names are the batching helpers (:mod:`rnnlab.data.batches`), as ``rnnlab.data`` had them.
"""

from rnnlab.data.batches import (
                                 BUCKET_CHUNK_BATCHES,
                                 ArrayBatches,
                                 Batch,
                                 Batches,
                                 LMStream,
                                 kfold_indices,
                                 train_val_split,
)

__all__ = ["Batch", "Batches", "ArrayBatches", "LMStream", "train_val_split", "kfold_indices", "BUCKET_CHUNK_BATCHES"]
