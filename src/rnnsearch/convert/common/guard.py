"""The converters' last line of defence: a converter's input is untrusted, and a
malformed one (a checkpoint whose tensors have the wrong rank, a graph whose node lacks an
input, ...) can fail deep inside NumPy or a framework's reader. Every public entry of a
converter is wrapped so that such a failure still arrives as a ModelError naming the
converter and what went wrong, never as an IndexError or KeyError. Checks with a clear
message of their own come first; this only catches what they did not foresee.
"""
from __future__ import annotations

import functools

from ...errors import ModelError

# what malformed input makes Python, NumPy and the frameworks' readers raise
# (not OSError: failing to write the output is not the input's fault)
_UNFORESEEN = (ArithmeticError, AttributeError, IndexError, KeyError, LookupError,
               RecursionError, TypeError, ValueError, MemoryError, EOFError,
               RuntimeError, AssertionError, UnicodeError)


def input_errors(converter: str):
    """Decorator: unforeseen exceptions of the wrapped entry become ModelError."""
    def wrap(function):
        @functools.wraps(function)
        def guarded(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except ModelError:
                raise
            except _UNFORESEEN as e:
                if isinstance(e, MemoryError):
                    detail = "it needs more memory than this machine has"
                elif isinstance(e, RecursionError):
                    detail = "it is nested too deeply"
                else:
                    detail = f"{type(e).__name__}: {e}"
                raise ModelError(f"{converter}: the input is malformed or not supported "
                                 f"({detail})") from e
        return guarded
    return wrap
