"""Benchmark data: one HDF5 schema for every source (extraction, xlsa17 import, synthetic worlds)."""

from crest.data.benchmark import Benchmark
from crest.data.dataset import FeatureDataset
from crest.data.h5 import BenchmarkWriter, read_benchmark

__all__ = ["Benchmark", "BenchmarkWriter", "FeatureDataset", "read_benchmark"]
