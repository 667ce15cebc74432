"""One module per ``bench`` command: ``add_parser(subparsers)`` declares its arguments, ``main(args, console)``
runs it (importing what it needs only then) and returns the exit code."""

COMMANDS = ("run", "reproduce", "study", "table", "rank", "check", "cost", "plot", "list", "plugins", "artifacts")
