"""The benchmark file: its schema (HDF5), reading and checking it, writing it, and the datasets,
caches and subsets that read feature maps from it."""
