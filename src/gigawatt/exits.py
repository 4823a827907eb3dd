"""The exit status of every `gigawatt` command, in one place for the modules that define them.

0: success. 1: the command ran and failed (a state store down, a file that cannot be written).
2: bad usage, or an input file (policy, demand, fleet, catalog) that cannot be used.
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
