"""gan-lightning: GAN experiments as PyTorch Lightning modules."""

__version__ = "0.1.0"
