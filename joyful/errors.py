"""The error type that command-line tools turn into one line and exit status 2."""


class UserError(Exception):
    """Bad input from the user: a flag, a file or a data set. The message names the fix."""

    exit_code = 2
