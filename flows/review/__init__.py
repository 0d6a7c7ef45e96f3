"""The review web app: `restorium review` (flows.cli.review) serves it on an archive."""
