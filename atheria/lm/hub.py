"""Whether `model.pretrained` can be loaded here: a local folder, a model in the Hugging Face cache, or the hub in
reach. Asked before any work, because transformers retries an unreachable hub for about a minute."""
from __future__ import annotations

import os
from typing import Optional

from atheria.errors import ConfigError, one_line

PROBE_TIMEOUT_S = 5.0


def hub_unreachable() -> Optional[str]:
    """Why the hub (HF_ENDPOINT) cannot be reached, from one HEAD request with a short timeout; None when it answers
    (any HTTP status)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.is_offline_mode():
        return "HF_HUB_OFFLINE is set"
    try:
        get_session().head(constants.ENDPOINT, timeout=PROBE_TIMEOUT_S)
    except Exception as exc:  # any failure to get an answer: DNS, refused, timeout, proxy, offline mode
        return f"{constants.ENDPOINT}: {one_line(exc, 120)}"
    return None


def check_pretrained(pretrained: Optional[str]) -> None:
    """Refuse in one line a `model.pretrained` hub name that is neither in the local cache nor reachable (or is no
    valid name at all); a local folder, a cached model (then loaded offline) and null (a random GPT-2) pass."""
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    if not pretrained or os.path.isdir(pretrained):
        return
    accepted = ("accepted: model.pretrained=null for a randomly initialised GPT-2, or a local model folder "
                "(a hub name once the hub is in reach)")
    try:
        cached = isinstance(try_to_load_from_cache(pretrained, "config.json"), str)
    except HFValidationError:
        raise ConfigError(f"model.pretrained={pretrained!r} is neither a local model folder nor a hub model name; "
                          f"{accepted}") from None
    why = hub_unreachable()
    if why and cached:  # work from the cache, as HF_HUB_OFFLINE=1 would: transformers retries each missing file
        constants.HF_HUB_OFFLINE = True  # for a minute otherwise (read by huggingface_hub.is_offline_mode)
    elif why:
        raise ConfigError(f"model.pretrained={pretrained!r} is not in the local Hugging Face cache and the hub "
                          f"cannot be reached ({why}); {accepted}")
