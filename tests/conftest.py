"""Test-session settings: the unit tests use tiny models, for which one thread is fastest."""
import matplotlib
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)
