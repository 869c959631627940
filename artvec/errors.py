"""User-facing errors: the CLI prints ``str(error)`` as one line and exits with ``exit_code``."""


class ArtvecError(Exception):
    exit_code = 1


class ConfigError(ArtvecError):
    exit_code = 2


class DatabaseError(ArtvecError):
    exit_code = 3
