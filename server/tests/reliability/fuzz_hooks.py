"""Schemathesis hooks (SCHEMATHESIS_HOOKS=fuzz_hooks): half the generated `userId` and
`invitationId` values, in paths and in bodies, are swapped for ids that exist in the fuzzed
clinic (FUZZ_USER_IDS, FUZZ_INVITATION_IDS, comma-separated), so the fuzzer reaches the
handlers' real work (update, revoke, reactivate, resend) and not only their 404s."""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

_IDS = {
    "userId": [i for i in os.environ.get("FUZZ_USER_IDS", "").split(",") if i],
    "invitationId": [i for i in os.environ.get("FUZZ_INVITATION_IDS", "").split(",") if i],
}


def _with_real_ids(values: Any) -> st.SearchStrategy[Any]:
    if not isinstance(values, dict):
        return st.just(values)
    names = [n for n in values if _IDS.get(n)]
    if not names:
        return st.just(values)
    real = st.fixed_dictionaries({n: st.sampled_from(_IDS[n]) for n in names}).map(
        lambda ids: {**values, **ids}
    )
    return st.one_of(st.just(values), real)


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> st.SearchStrategy[Any]:
    return _with_real_ids(path_parameters)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    return _with_real_ids(body)
