"""Beam's local DirectRunner inspecting each DoFn class's state and timer specs once, not for every bundle
(issue 5's rate), going around Beam.

Beam 2.77's DirectRunner asks ``userstate.get_dofn_specs`` whether a ParDo has state or timers each time it
schedules a bundle for it, when it starts the bundle, and again when it builds the bundle's DoFnRunner. The
answer comes from ``inspect.signature`` of every method of the DoFn: 16 % of the runner's only worker thread in a
py-spy profile of a Pub/Sub run. The runner starts each bundle with a fresh (pickled and unpickled) copy of the
DoFn, so ``cache_dofn_specs`` keeps the answer per DoFn class: the specs are the defaults of its methods'
parameters, fixed when the class is defined (Beam's GroupIntoBatches makes a new class for each use). Other
runners inspect a DoFn once per bundle processor, so the cache, though patched into Beam's ``userstate`` module
for the whole process, only saves time on the DirectRunner.
"""
from __future__ import annotations

import weakref
from typing import Any


def cache_dofn_specs() -> None:
    """Patches ``userstate.get_dofn_specs`` and the DirectRunner's own reference to it (idempotent)."""
    from apache_beam.runners.direct import transform_evaluator
    from apache_beam.transforms import userstate

    if getattr(userstate.get_dofn_specs, "cached_specs", False):
        return
    inspect_specs = userstate.get_dofn_specs
    specs_by_class: weakref.WeakKeyDictionary[type, tuple[set, set]] = weakref.WeakKeyDictionary()

    def cached_get_dofn_specs(dofn: Any) -> tuple[set, set]:
        specs = specs_by_class.get(type(dofn))
        if specs is None:
            specs = specs_by_class[type(dofn)] = inspect_specs(dofn)
        return specs

    cached_get_dofn_specs.cached_specs = True
    # userstate's own is_stateful_dofn and validate_stateful_dofn (which the runner's DoFnRunner calls for every
    # bundle) look the name up in their module; transform_evaluator imported it by name.
    userstate.get_dofn_specs = cached_get_dofn_specs
    transform_evaluator.get_dofn_specs = cached_get_dofn_specs
