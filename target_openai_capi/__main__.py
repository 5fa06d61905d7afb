"""`python -m target_openai_capi`."""

from target_openai_capi.target import main

main()
