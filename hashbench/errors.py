"""The one exception for bad user input: the CLI prints it as one line and exits with 2."""


class InputError(ValueError):
    """Input that the user can fix (a wrong shape, a missing file, an unknown name)."""


class NameClash(ValueError):
    """A second method or extractor registered under a name already taken."""
