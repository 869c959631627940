"""User-facing errors: the CLI prints ``str(error)`` as one line and exits with ``exit_code``."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (a driver error's own, for SQLAlchemy's wrappers)."""
    error = getattr(error, "orig", None) or error
    message = str(error).strip()
    return message.splitlines()[0] if message else type(error).__name__


class ArtvecError(Exception):
    exit_code = 1


class ConfigError(ArtvecError):
    exit_code = 2


class DatabaseError(ArtvecError):
    exit_code = 3
