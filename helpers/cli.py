"""What the command lines of the front ends share."""
import argparse

from helpers.errors import InputError

EXIT_COMMANDS = ("exit", "quit")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """-h text that names each option's default: "(default: X)", or "(default: none)" for an option
    that is unset unless given, where the help does not say it already. Required options, positionals
    and flags (off unless given) need none. Descriptions and epilogs keep their line breaks."""

    def _get_help_string(self, action):
        text = action.help or ""
        if not needs_default(action) or "default" in text or "required" in text:
            return text
        value = "none" if action.default in (None, []) else "%(default)s"
        return f"{text} (default: {value})".lstrip()


def needs_default(action):
    """Whether -h must name this option's default: every option but required ones and plain flags."""
    if not action.option_strings or action.required or action.default is argparse.SUPPRESS:
        return False
    # store_true and store_false flags do nothing unless given (store_false's default True is the
    # value of its destination, not something the flag turns on); --x/--no-x pairs do name theirs.
    return not (action.nargs == 0 and (action.default is False or isinstance(action, argparse._StoreFalseAction)))


def read_text(path, what):
    """A UTF-8 text file (a passage, questions), without the byte-order mark some editors write first."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the {what} file {path}: {e}") from None
    if "\0" in text:  # UTF-16 or binary; the NULs would end up inside words and answers
        raise InputError(f"the {what} file {path} holds NUL bytes (character {text.index(chr(0))}); "
                         "save it as UTF-8 text")
    return text


def prompted_questions(prompt="Question (or 'exit'): "):
    """The questions typed at the prompt, until exit or quit or the end of input; empty lines are skipped."""
    while True:
        try:
            question = input(prompt).strip()
        except EOFError:
            return
        if question.lower() in EXIT_COMMANDS:
            return
        if question:
            yield question
