"""Typed failures raised by stores; callers map them to HTTP codes or dead-letter reasons."""


class StoreError(Exception):
    """Base class for domain failures a store reports (infrastructure errors propagate as they are)."""


class NotFound(StoreError):
    """The addressed flow, source, object or segment does not exist."""


class Conflict(StoreError):
    """The write contradicts what is stored (an id that exists already, an overlap)."""


class MediaNotFound(NotFound):
    """No bytes are stored under the object key."""


class MediaUnavailable(StoreError):
    """The media store cannot be reached or is failing (timeouts, 5xx); the same call may succeed later."""
