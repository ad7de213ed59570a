"""The one exception type every export step raises for a user-facing failure."""


class ExportError(RuntimeError):
    """An export could not be completed; the message is one paragraph a user can act on.

    Raised for bad input (unknown variant or target, invalid recipe, unwritable output
    directory), exporter failures (with the failing op and the recipe key to change) and
    parity-gate refusals. The CLI prints the message without a traceback and exits non-zero.
    """
