"""What each response status leads to: the one place that knows what statuses mean.

Policy by status, decided in `action_for` and nowhere else:
- 2xx: every event in the request accepted.
- 400/422: the API fails the whole request for one bad event. When the error body names events
  of the request (`param: "events[3]"`, as the live API does), exactly those are rejected with
  the server's messages and the rest is sent again in one request: one bad event in 1,000 costs
  one extra request. When the body names none, names an event the request does not have, or the
  rest fails again, the request is split in halves and both halves are sent, recursively, until
  each bad event is rejected alone: about 2*log2(n) requests for one bad event in n.
- 413: split in halves the same way; one event that is too large alone is rejected.
- 401/403: AuthError (403 `unknown pid`: UnknownPixelError, naming the pixel id); 404:
  NotFoundError. Fatal: no new batch starts, in-flight ones may finish.
- 408/429/5xx (not 501/505) and network errors: the same request is retried with backoff,
  honouring Retry-After, until policy.max_attempts or policy.max_total_seconds (both counted
  per request, from its first attempt) run out; then RetriesExhausted, fatal.
- A 400/422 whose body is not the API's error shape (an HTML page from a proxy), one whose
  `param` names a field of the request rather than an event (`pid`, `integration_source`,
  `validate_only`: at once, not after splitting 1,000 events down to single ones), or a batch
  whose every event is refused alone with one message that names no event: RefusedWholesale,
  fatal; such refusals are not about events, so none is rejected.
- Any other status (3xx, 409, 418, 501, ...): UnexpectedResponse, fatal. Deliberately not
  treated like 400: a status with no documented meaning is more likely a wrong api_url or an
  API change than a bad event, and bisecting would then reject every event of the run one by
  one. Stopping costs a rerun; nothing is lost because STATE does not advance.
"""

from __future__ import annotations

import enum

from target_openai_capi.delivery.retry import is_retryable_status


class Action(enum.Enum):
    """What to do with a response."""

    ACCEPT = "accept"
    RETRY = "retry"
    BISECT = "bisect"  # some event is bad: split until it is alone
    SPLIT = "split"  # the request is too large: split until it fits
    AUTH = "auth"
    NOT_FOUND = "not_found"
    UNEXPECTED = "unexpected"


def action_for(status: int) -> Action:
    """Turn a status into an action: the one place that knows what statuses mean."""
    if 200 <= status <= 299:
        return Action.ACCEPT
    if status in (400, 422):
        return Action.BISECT
    if status == 413:
        return Action.SPLIT
    if status in (401, 403):
        return Action.AUTH
    if status == 404:
        return Action.NOT_FOUND
    if is_retryable_status(status):
        return Action.RETRY
    return Action.UNEXPECTED
