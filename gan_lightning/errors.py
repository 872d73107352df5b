"""User-facing errors: the CLI prints their message as one line and exits non-zero, no traceback."""


class GanLightningError(Exception):
    """A problem the user can fix (bad input, missing file). Exit status 1."""

    exit_code = 1
    prefix = "error"  # the CLI prints "<prefix>: <message>"


class Stopped(GanLightningError):
    """Stopped by a signal (SIGINT, SIGTERM ...); exit status 128 + the signal number (130, 143 ...)."""

    prefix = "stopped"

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class ConfigError(GanLightningError):
    """An invalid experiment config: unknown key, wrong type, unknown name. Exit status 2."""

    exit_code = 2


def check_values(section: str, config, checks: list[tuple[str, bool, str]]) -> None:
    """Raise ConfigError for the first ``(key, ok, accepted)`` that is not ok: "<section>.<key>: <value>; accepted:
    <accepted>"."""
    for key, ok, accepted in checks:
        if not ok:
            raise ConfigError(f"{section}.{key}: {config[key]!r}; accepted: {accepted}")
