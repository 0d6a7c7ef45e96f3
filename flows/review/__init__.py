"""The review web app: `restorium review` (flows.cli_review) serves it on an archive."""
