"""The SDK's standard target tests, with the target pointed at a live sandbox."""

from __future__ import annotations

import pytest
from conftest import API_KEY, PIXEL_ID
from singer_sdk.testing import get_target_test_class

from target_openai_capi.sandbox import start_sandbox
from target_openai_capi.target import TargetOpenAICapi

# The standard suite builds its config when the class is made, so the sandbox starts here
# (on a free port) and stops with the module.
_SANDBOX = start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID})

StandardTargetTests = get_target_test_class(
    TargetOpenAICapi,
    config={
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": _SANDBOX.url,
        # The suite expects the SDK's exceptions on bad input (record before schema, missing
        # key property, invalid schema): that is this target's `fail` mode. Its streams have
        # no event fields, so none is mapped; mapping is covered by the other test modules.
        "on_rejected": "fail",
    },
)


class TestTargetOpenAICapi(StandardTargetTests):  # type: ignore[misc,valid-type]
    """Standard target tests."""

    @pytest.fixture(scope="class")
    @classmethod
    def resource(cls):
        yield _SANDBOX
        _SANDBOX.stop()
