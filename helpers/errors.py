"""The one error base class of the project.

Every error that a user can cause or mend (a bad file, a bad option, a missing TensorRT, a GPU
fault) is a BertTrtError told in one line; the front ends catch this class, print the line and exit
with status 2. Anything else escaping is a bug and keeps its traceback.
"""
import os
import sys
import warnings


class BertTrtError(Exception):
    """A problem the user can act on, told in one line that names it and the fix."""


def run_main(prog, main, argv=None):
    """Run a front end's main(argv) and exit with its status.

    A BertTrtError (or an OSError: a file or device the system refused) that escapes main is told
    as `PROG: error: ...` and exits 2; any other exception is a bug and keeps its traceback. Ctrl-C is told as
    `PROG: interrupted` and exits 130 (128 + SIGINT, as shells report it), without a traceback.
    Warnings are one line each, `PROG: warning: ...`.
    Outputs are written to a temp file and renamed (helpers/files.py), so an interrupted run
    leaves nothing partial. A closed stdout (`| head`) ends quietly, as other command-line tools do.
    """
    warnings.formatwarning = lambda message, *_args, **_kwargs: f"{prog}: warning: {message}\n"
    try:
        status = main(argv)
    except KeyboardInterrupt:
        # In a terminal the cursor stands after the echoed ^C (or a prompt): start a fresh line.
        print(f"{chr(10) if sys.stderr.isatty() else ''}{prog}: interrupted", file=sys.stderr)
        status = 130
    except BertTrtError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        status = 2
    except BrokenPipeError:
        # The reader went away: point stdout at /dev/null so the interpreter's final flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 141  # 128 + SIGPIPE, what a shell reports for a command cut off by `| head`
    except OSError as error:  # the machine's answer about a file or device (missing, full, no permission)
        print(f"{prog}: error: {describe_os_error(error)}", file=sys.stderr)
        status = 2
    sys.exit(status)


def describe_os_error(error):
    """An OSError as "FILE: what the system said", or its own text when it names no file."""
    if error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)


class OptionError(BertTrtError, ValueError):
    """A command-line option out of its range, or one that contradicts another."""


class InputError(BertTrtError, ValueError):
    """An input (a file, a passage, a question) that holds nothing usable; the message says what to give."""


def check_range(flag, value, minimum=None, maximum=None):
    """Raise OptionError unless the number given to `flag` is finite and within [minimum, maximum].

    Given means given: 0 is checked like any other value, never taken for "not set"; None (the
    option left out) passes.
    """
    if value is None:
        return
    if value != value or value in (float("inf"), float("-inf")):
        raise OptionError(f"{flag} must be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise OptionError(f"{flag} must be {minimum} or more, got {value}")
    if maximum is not None and value > maximum:
        raise OptionError(f"{flag} must be {maximum} or less, got {value}")
