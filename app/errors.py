"""What callsync refuses, and why: the errors its operations raise for the person who asked.

    CallsyncError        the CLI prints its message and exits with 2
    ├── NotFound         no such agency, sync job, campaign ...      (the API: 404)
    ├── Conflict         its state forbids it: a job already ended   (the API: 409)
    └── InvalidInput     the input cannot be used: a leads file with bad lines

Programming errors (a KeyError, an IndexError) are none of these, so they are never mistaken
for a refusal.
"""

from __future__ import annotations


class CallsyncError(Exception):
    """An operation refused; the message says why, in words for the person who asked."""


class NotFound(CallsyncError):
    """What the operation names does not exist."""


class Conflict(CallsyncError):
    """What the operation names is in a state that forbids it."""


class InvalidInput(CallsyncError):
    """The input cannot be used as it is; the message names each fault."""
