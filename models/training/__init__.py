"""Training data, simulated clouds and the training loop of the shipped models."""
