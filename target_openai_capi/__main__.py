"""`python -m target_openai_capi`."""

from target_openai_capi.cli import main

main()
