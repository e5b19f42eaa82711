"""Ray's exceptions, under Ray's names.

A task that raises fails with RayTaskError carrying the remote traceback (with the node and
worker it ran on). As in Ray, the error raised by get() is also an instance of the remote
exception's own class (a class made on the fly that derives from both), so `except ValueError`
catches a remote ValueError.
"""


class RayError(Exception):
    """The base of rayc's errors."""


class RayTaskError(RayError):
    """A task or actor method raised an exception."""

    def __init__(self, function_name="", traceback_str="", cause=None, where=""):
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = cause
        self.where = where
        super().__init__(self._text())

    def _text(self):
        return (f"{type(self.cause).__name__ if self.cause else 'Error'} in {self.function_name} "
                f"({self.where}):\n{self.traceback_str}")

    def __str__(self):
        return self._text()

    def as_instanceof_cause(self):
        """This error as an instance of both RayTaskError and the cause's class."""
        cause_cls = type(self.cause) if self.cause is not None else None
        if cause_cls is None or issubclass(RayTaskError, cause_cls) or cause_cls.__module__ == "builtins" and \
                cause_cls in (KeyboardInterrupt, SystemExit):
            return self
        try:
            cls = type(f"RayTaskError({cause_cls.__name__})", (RayTaskError, cause_cls), {
                "__init__": lambda s, *a: None,
                "__str__": RayTaskError.__str__,
            })
            err = cls.__new__(cls)
        except TypeError:
            return self
        err.function_name, err.traceback_str = self.function_name, self.traceback_str
        err.cause, err.where = self.cause, self.where
        err.args = (self._text(),)
        return err


class GetTimeoutError(RayError, TimeoutError):
    """get() timed out."""


class TaskCancelledError(RayError):
    """The task was cancelled."""


class RayActorError(RayError):
    """The actor died (or could not be created)."""


class ActorDiedError(RayActorError):
    """The actor died."""


class ActorUnavailableError(RayActorError):
    """The actor is temporarily unavailable."""


class ObjectLostError(RayError):
    """Every copy of the object was lost."""


class OwnerDiedError(ObjectLostError):
    """The owner of the object died."""


class WorkerCrashedError(RayError):
    """The worker running the task died."""


class ObjectStoreFullError(RayError):
    """The object store is full."""


class OutOfMemoryError(RayError):
    """The task's worker was killed by its node's memory monitor: the node was low on memory."""


class RaySystemError(RayError):
    """An error of rayc itself."""


class PlacementGroupSchedulingError(RayError):
    """A placement group could not be placed."""
