"""What the command lines of the front ends share."""
import argparse


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
