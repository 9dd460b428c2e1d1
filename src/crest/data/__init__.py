"""Benchmark data: one HDF5 schema for every source (extraction, xlsa17 import, synthetic worlds)."""

from crest.data.schema.benchmark import Benchmark
from crest.data.schema.dataset import FeatureDataset
from crest.data.schema.hdf5 import read_benchmark
from crest.data.schema.writer import BenchmarkWriter

__all__ = ["Benchmark", "BenchmarkWriter", "FeatureDataset", "read_benchmark"]
