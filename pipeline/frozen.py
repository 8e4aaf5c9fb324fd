"""The base of every typed settings section (the run config's sections and the source configs).

Frozen: a section can be shared by threads, hashed and pickled to Dask workers as it is. Strict: a key
that the section does not define is an error naming the key, never silently ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
