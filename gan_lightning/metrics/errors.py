"""Errors raised by the metric layer (kept in their own module so every submodule can import them)."""


from gan_lightning.errors import GanLightningError


class MetricsError(GanLightningError):
    """A metric cannot be computed as configured: missing weights, unknown metric/extractor name, bad input.

    The message is one line meant for the user (the CLI prints it without a traceback).
    """
