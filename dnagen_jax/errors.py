"""The one exception type for bad user input.

Everything a user can get wrong (a path, a column, a character, a config field)
raises `UserError` with a one-line message that names what was wrong and where.
`main.py` prints that line and exits non-zero instead of showing a traceback.
"""


class UserError(Exception):
  """Bad input from the user: printed as one line, never as a traceback."""
