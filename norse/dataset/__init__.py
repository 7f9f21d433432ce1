"""Datasets for spiking neural network experiments (MNIST loaders and helpers)."""
