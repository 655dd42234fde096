"""The one error base class of the project.

Every error that a user can cause or mend (a bad file, a bad option, a missing TensorRT, a GPU
fault) is a BertTrtError told in one line; the front ends catch this class, print the line and exit
with status 2. Anything else escaping is a bug and keeps its traceback.
"""


class BertTrtError(Exception):
    """A problem the user can act on, told in one line that names it and the fix."""
