"""Work that is the same for every visitor, done once per model: scan checks keyed by the file's content, the
library cases' checks, the PNGs sent to the browser. One instance per loaded model (brainscan.app.ui.ModelHolder),
so a new model starts empty. No Streamlit here.

A class of 30 opening the same case or sample costs one model call, not 30. Entries are whole results (pixels,
heatmaps), so the cache is bounded by count; the oldest unused entry goes first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

MAX_ENTRIES = 24  # a 512 px slice's result is about 4 MB: at most about 100 MB for the whole server


class SharedResults:
    """A bounded LRU map from a key to a computed value; concurrent requests for one key wait for the single
    computation instead of repeating it. ``computed`` counts the computations (for tests and the cost probe)."""

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self.computed = 0
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._values:  # computed by another session while this one waited
                    self._values.move_to_end(key)
                    return self._values[key]
            value = compute()  # an exception leaves nothing behind: the next request tries again
            with self._lock:
                self.computed += 1
                self._values[key] = value
                while len(self._values) > self.max_entries:
                    self._values.popitem(last=False)
                self._key_locks.pop(key, None)
        return value

    def __len__(self) -> int:
        return len(self._values)
